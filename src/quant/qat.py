"""Turning any float network built from known layers into its quantization-aware (fake-quant) network.

The float network is rebuilt in place, reusing its parameters, from its traced dataflow (:mod:`.plan`): every
conv / dense + BN (+ activation) becomes a :class:`~.fold.QuantConv` (BN folded, int8 weights), and every other
computing layer (residual add, gate product, average pool, lone BN or activation) its quantized form from
:mod:`.layers`, each with the output quantizer an int8 runtime has at that place. A concat's inputs share its grid,
so the concat (and any channel slice, flatten, pad or upsampling after it) is exact on int8 data; hard-sigmoid and
sigmoid gates use the fixed [0, 1] grid; the network input is quantized and its logits are float. Nothing here
knows a model family: a new network made of these layers quantizes, exports and runs int8 as it is.

:class:`QuantScheme` holds the choices; its vector is stored in the network (``quant_control.scheme``), so a QAT
checkpoint alone says how to rebuild the network that loads it.
"""
from dataclasses import dataclass

from mindspore import nn, ops

from ..errors import ConfigError, DataError
from ..models import create_model, load_checkpoint_strict
from ..models.layers import replace_cell, switch_to_deploy, sync_parameter_names
from ..models.trace import INPUT, trace
from . import QuantError
from .fake_quant import W_QMAX, ActQuant, GateQuant, QuantControl
from .fold import QuantConv
from .layers import QuantAct, QuantAdd, QuantConcat, QuantLayer, QuantMul, QuantNorm, QuantPool
from .plan import FLOAT_UNITS, plan

KEEP_FLOAT = ("first_conv", "classifier", "depthwise")  # layers that may stay float (mixed precision)
MARKER = "quant_control.scheme"  # the parameter that makes a checkpoint a QAT checkpoint


@dataclass(frozen=True)
class QuantScheme:
    """How a network is quantized. ``keep_float``: layers kept in float (any of :data:`KEEP_FLOAT`)."""

    per_channel: bool = True
    keep_float: tuple = ()
    observer_decay: float = 0.99
    quant_delay: int = 0

    def __post_init__(self):
        unknown = sorted(set(self.keep_float) - set(KEEP_FLOAT))
        if unknown:
            raise QuantError(f"quant_keep_float: unknown layer kind(s) {', '.join(unknown)}; "
                             f"choose from {', '.join(KEEP_FLOAT)}")
        if not 0.0 <= self.observer_decay < 1.0:
            raise QuantError(f"qat_observer_decay must be in [0, 1), got {self.observer_decay}")
        if self.quant_delay < 0:
            raise QuantError(f"qat_quant_delay must be >= 0 steps, got {self.quant_delay}")
        object.__setattr__(self, "keep_float", tuple(k for k in KEEP_FLOAT if k in self.keep_float))

    def vector(self):
        """``[per_channel, first_conv float, classifier float, depthwise float]`` as 0/1."""
        return [float(self.per_channel)] + [float(k in self.keep_float) for k in KEEP_FLOAT]

    @classmethod
    def from_vector(cls, vector, **kw):
        vector = [bool(round(float(v))) for v in vector]
        return cls(per_channel=vector[0], keep_float=tuple(k for k, on in zip(KEEP_FLOAT, vector[1:]) if on), **kw)

    @classmethod
    def from_config(cls, cfg):
        """The scheme of a training (QAT) or export (PTQ) configuration."""
        keep = cfg.get("quant_keep_float") or ()
        return cls(per_channel=bool(cfg.get("quant_per_channel", True)),
                   keep_float=tuple([keep] if isinstance(keep, str) else keep),
                   observer_decay=float(cfg.get("qat_observer_decay", 0.99)),
                   quant_delay=int(cfg.get("qat_quant_delay", 0)))

    def describe(self):
        kept = ", ".join(self.keep_float) or "none"
        return f"int8 weights {'per channel' if self.per_channel else 'per tensor'}, uint8 activations; float: {kept}"


def is_qat_params(names):
    """True when parameter ``names`` (a dict or iterable) belong to a QAT network."""
    return any(name.endswith(MARKER) for name in names)


def is_qat_checkpoint(params, record=None):
    """The one QAT-checkpoint check: its record's form is ``qat`` or (files without a record) its parameters are
    a QAT network's."""
    return (record or {}).get("form") == "qat" or is_qat_params(params)


def scheme_of_params(params):
    """The :class:`QuantScheme` a QAT checkpoint's parameters were trained with."""
    key = next(name for name in params if name.endswith(MARKER))
    value = params[key]
    return QuantScheme.from_vector(value.asnumpy() if hasattr(value, "asnumpy") else value)


def _quantizers(plan, control, scheme):
    """One quantizer per grid: the fixed gate grid or an EMA-observed one."""
    grids = {g for g in plan.grid_of.values() if g is not None} | {op.grid for op in plan.ops if op.grid is not None}
    return {g: GateQuant(control) if g in plan.gates else ActQuant(control, scheme.observer_decay)
            for g in sorted(grids)}


def _twin(op, plan, quant, control, scheme, first):
    """The quantized layer of plan entry ``op``."""
    node, cell = op.node, op.node.cell
    out_quant = quant.get(op.grid)
    common = {"out_quant": out_quant, "observe": op.observe}
    if op.kind != "concat":
        common["round_in"] = quant[plan.grid_of[node.inputs[0]]] if op.round_in else None
    if op.kind == "conv":
        reads_input = INPUT in node.inputs
        depthwise = isinstance(cell, nn.Conv2d) and cell.group > 1 and cell.group == cell.in_channels
        quantize = not ((reads_input and "first_conv" in scheme.keep_float)
                        or (op is plan.output and "classifier" in scheme.keep_float)
                        or (depthwise and "depthwise" in scheme.keep_float))
        src = quant.get(plan.grid_of[node.inputs[0]])
        in_quant = src if reads_input else None
        return QuantConv(cell, op.bn.cell if op.bn else None, op.act, control, quantize, scheme.per_channel,
                         in_quant=in_quant, count_steps=first, input_quant=src, **common)
    if INPUT in node.inputs:
        raise QuantError(f"{node.path} ({type(cell).__name__}) reads the network input; quantization needs the "
                         "input to feed convolutions")
    if op.kind == "norm":
        return QuantNorm(cell, op.act, **common)
    if op.kind == "act":
        return QuantAct(op.act, **common)
    in_quants = tuple(quant.get(plan.grid_of[i]) for i in node.inputs)
    if op.kind == "pool":
        return QuantPool(cell, in_quants=in_quants, **common)
    if op.kind == "concat":
        return QuantConcat(cell, **common)
    return (QuantAdd if op.kind == "add" else QuantMul)(cell, op.act, in_quants=in_quants, **common)


def _trace_shape(net):
    """A small input every network accepts: its minimum size (at least 32 px), its first conv's channels."""
    conv = next(cell for _, cell in net.cells_and_names() if isinstance(cell, nn.Conv2d))
    size = max(32, getattr(net, "min_input_size", 32))
    return (1, conv.in_channels, size, size)


def quantize_network(net, scheme):
    """Turn the float ``net`` into its QAT network, in place; returns it.

    Any network built from the layers :mod:`.plan` knows: re-parameterizable cells are switched to their deployed
    form first (QAT before fusion quantizes a weight the deployed net never has; QARepVGG), then every layer is
    replaced by its quantized form (:mod:`.layers`, :mod:`.fold`), read from one traced forward pass. Parameters
    are reused (a loaded float checkpoint carries over) and renamed to their new paths.
    """
    if any(isinstance(c, (QuantLayer, QuantControl)) for _, c in net.cells_and_names()):
        raise QuantError("the network is already quantization-aware")
    switch_to_deploy(net)
    try:
        tr = trace(net, _trace_shape(net), units=FLOAT_UNITS)
    except ConfigError as exc:
        raise QuantError(f"cannot quantize {type(net).__name__}: {exc}") from None
    steps = plan(tr, float_input="first_conv" in scheme.keep_float)
    control = QuantControl(scheme.vector(), scheme.quant_delay)
    children = list(net.name_cells().items())
    for name, _ in children:  # the control goes first, so its parameters are named quant_control.*
        delattr(net, name)
    net.quant_control = control
    for name, cell in children:
        setattr(net, name, cell)
    quant = _quantizers(steps, control, scheme)
    for i, op in enumerate(steps.ops):
        replace_cell(net, op.node.path, _twin(op, steps, quant, control, scheme, first=i == 0))
        for node in op.absorbed:
            replace_cell(net, node.path, nn.Identity())
    return sync_parameter_names(net)


def quantizers(net):
    """``[(path, ActQuant)]`` of a QAT network, each once, in forward order."""
    seen, out = set(), []
    for name, cell in net.cells_and_names():
        if isinstance(cell, ActQuant) and id(cell) not in seen:
            seen.add(id(cell))
            out.append((name, cell))
    return out


def set_observing(net, on):
    """Switch every observer of ``net`` on or off (frozen ranges)."""
    _control(net).observing.set_data(ops.ones((), net.quant_control.observing.dtype) * float(on))


def set_bn_frozen(net, frozen):
    """Freeze (use running statistics, stop updating them) or unfreeze every folded BN of ``net``."""
    _control(net).bn_frozen.set_data(ops.ones((), net.quant_control.bn_frozen.dtype) * float(frozen))


def _control(net):
    control = getattr(net, "quant_control", None)
    if control is None:
        raise QuantError("not a quantization-aware network")
    return control


def legacy_weight_grid_note(ckpt_file, record):
    """A warning for a QAT checkpoint trained before weights moved to [-W_QMAX, W_QMAX] (its record names no
    ``weight_qmax``), or None: its int8 model is no longer exactly the one it was trained as."""
    quant = (record or {}).get("quant") or {}
    if (record or {}).get("form") != "qat" or quant.get("weight_qmax") == W_QMAX:
        return None
    return (f"warning: {ckpt_file} was trained with int8 weights on [-127, 127]; this version quantizes weights on "
            f"[-{W_QMAX}, {W_QMAX}] (docs/quantization.md), so its int8 model differs slightly from the one "
            "trained; fine-tune it again (train.py --qat true --pretrained it) for the best int8 accuracy")


def load_qat_network(cfg, ckpt_file, params, record=None):
    """The QAT network (evaluation mode) of QAT checkpoint ``ckpt_file`` (its read ``params`` and ``record``).

    The checkpoint alone decides: its ``quant_control.scheme`` gives the scheme (re-parameterizable networks are
    rebuilt in their deployed form by :func:`quantize_network`). A checkpoint trained on the old weight grid is
    loaded with a warning."""
    if not is_qat_params(params):
        raise QuantError(f"{ckpt_file}: its record says QAT but it holds no quantization state; the file is corrupt")
    net = quantize_network(create_model(cfg.model, num_classes=cfg.num_classes, dropout=cfg.dropout),
                           scheme_of_params(params))
    try:
        load_checkpoint_strict(net, ckpt_file, params)
    except DataError as exc:
        raise QuantError(f"QAT checkpoint does not match --model {cfg.model} --num_classes {cfg.num_classes} "
                         f"(another architecture, width or class count?): {exc}") from None
    net.set_train(False)
    note = legacy_weight_grid_note(ckpt_file, record)
    if note:
        print(note)
    return net


def is_qat_network(net):
    """True for a network made by :func:`quantize_network`."""
    return isinstance(getattr(net, "quant_control", None), QuantControl)


def scheme_of_network(net):
    """The :class:`QuantScheme` of a QAT network (its weight and mixed-precision choices)."""
    return QuantScheme.from_vector(_control(net).scheme.asnumpy())
