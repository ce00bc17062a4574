"""Turning a float GhostNet / RepGhostNet / GhostNetV2 into its quantization-aware (fake-quant) network.

The float network is rebuilt in place, reusing its parameters: every conv + BN (+ ReLU) becomes a
:class:`~.fold.QuantConv` (BN folded, int8 weights), and every block gets the activation quantizers an int8
runtime has, at the same places:

- stem: the input image and the stem output; head: the pooled features, ``conv_head`` (+ReLU); the classifier
  has int8 weights and float logits.
- Ghost module: one quantizer for the primary output, the cheap output and their concat, so the concat (and the
  channel slice) is exact on int8 data; GhostNetV2 adds its pooled input, each DFC conv, the sigmoid gate (fixed
  [0, 1] grid) and the gated product.
- Bottleneck: the stride-2 depthwise conv, each shortcut conv and the residual add; SE: pooled input, reduce conv,
  the hard-sigmoid gate (fixed [0, 1] grid) and the product.
- RepGhostNet is quantized in its deployed (fused) form: a train-form network is re-parameterized first (QAT
  before fusion quantizes a weight the deployed net never has; QARepVGG).

:class:`QuantScheme` holds the choices; its vector is stored in the network (``quant_control.scheme``), so a QAT
checkpoint alone says how to rebuild the network that loads it.
"""
from dataclasses import dataclass

from mindspore import nn, ops

from ..models.ghostnet import GhostModule, GhostNet
from ..models.ghostnetv2 import GhostModuleV2
from ..models.layers import ConvBnAct, GhostBottleneck, SqueezeExcite
from ..models.repghost import RepGhostModule, RepGhostNet, reparameterize
from . import QuantError
from .fake_quant import W_QMAX, ActQuant, GateQuant, QuantControl
from .fold import QuantConv, QuantDense

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


class QuantPool(nn.Cell):
    """A pooling op followed by its activation quantizer."""

    def __init__(self, pool, out_quant):
        super().__init__()
        self.pool = pool
        self.out_quant = out_quant

    def output_quant(self):
        return self.out_quant

    def construct(self, x):
        return self.out_quant(self.pool(x))


class QuantGhostModule(nn.Cell):
    """Ghost module with one quantizer shared by the primary output, the cheap output and their concat."""

    def __init__(self, module, build, src):
        super().__init__()
        self.oup = module.oup
        self.needs_slice = module.needs_slice
        self.out_quant = build.act()
        self.primary_conv = build.conv_seq(module.primary_conv, src, out_quant=False)
        self.cheap_operation = build.conv_seq(module.cheap_operation, self.out_quant, out_quant=False)
        self.concat = ops.Concat(axis=1)

    def output_quant(self):
        return self.out_quant

    def ghost(self, x):
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(self.out_quant.quantize(x1))
        out = self.out_quant(self.concat((x1, x2)))
        if self.needs_slice:
            out = out[:, :self.oup]
        return out

    def construct(self, x):
        return self.ghost(x)


class QuantGhostModuleV2(QuantGhostModule):
    """GhostNetV2's module: the quantized ghost output times the quantized DFC-attention gate, quantized."""

    upsample_nearest = GhostModuleV2.upsample_nearest  # the float module's exact upsampling, shared

    def __init__(self, module, build, src):
        super().__init__(module, build, src)
        self.attention = module.attention
        if self.attention:
            self.pool = QuantPool(module.pool, build.act())
            convs, bns = module.short_conv[0::2], module.short_conv[1::2]
            layers, prev = [], self.pool.out_quant
            for conv, bn in zip(convs, bns):
                layers.append(build.conv(conv, prev, bn))
                prev = layers[-1].out_quant
            self.short_conv = nn.SequentialCell(layers)
            self.gate = module.gate
            self.gate_quant = GateQuant(build.control)
            self.out_quant_mul = build.act()
            for name in ("reshape", "cat_h", "cat_w", "cat_h2", "cat_w2"):
                setattr(self, name, getattr(module, name))

    def output_quant(self):
        return self.out_quant_mul if self.attention else self.out_quant

    def construct(self, x):
        out = self.ghost(x)
        if not self.attention:
            return out
        gate = self.gate_quant(self.gate(self.short_conv(self.pool(x))))
        return self.out_quant_mul(out * self.upsample_nearest(gate, out.shape[2], out.shape[3]))


class QuantRepGhostModule(nn.Cell):
    """Deployed RepGhost module: primary conv+BN(+ReLU), fused depthwise conv with bias (+ReLU), both quantized."""

    def __init__(self, module, build, src):
        super().__init__()
        if module.has_fusion:
            raise QuantError("RepGhost modules are quantized in their deployed form; re-parameterize first")
        self.primary_conv = build.conv_seq(module.primary_conv, src)
        self.cheap_operation = build.conv(module.cheap_operation, self.primary_conv.out_quant,
                                          act="relu" if isinstance(module.relu, nn.ReLU) else None)

    def output_quant(self):
        return self.cheap_operation.out_quant

    def construct(self, x):
        return self.cheap_operation(self.primary_conv(x))


class QuantSqueezeExcite(nn.Cell):
    """SE: quantized pooled input, reduce conv (+ReLU), expand conv + hard-sigmoid on the [0, 1] grid, product."""

    def __init__(self, se, build):
        super().__init__()
        self.pool = QuantPool(se.pool, build.act())
        self.conv_reduce = build.conv(se.conv_reduce, self.pool.out_quant, act="relu")
        self.conv_expand = build.conv(se.conv_expand, self.conv_reduce.out_quant, act="hard_sigmoid", gate=True)
        self.out_quant = build.act()

    def output_quant(self):
        return self.out_quant

    def construct(self, x):
        return self.out_quant(x * self.conv_expand(self.conv_reduce(self.pool(x))))


class QuantBottleneck(nn.Cell):
    """Ghost bottleneck with the residual add quantized."""

    def __init__(self, block, build, src):
        super().__init__()
        self.ghost1 = build.module(block.ghost1, src)
        prev = self.ghost1.output_quant()
        self.has_dw = block.has_dw
        if self.has_dw:
            self.conv_dw = build.conv(block.conv_dw, prev, block.bn_dw)
            prev = self.conv_dw.out_quant
        self.has_se = block.has_se
        if self.has_se:
            self.se = QuantSqueezeExcite(block.se, build)
            prev = self.se.out_quant
        self.ghost2 = build.module(block.ghost2, prev)
        self.use_shortcut = block.use_shortcut
        self.identity_shortcut = block.identity_shortcut
        if self.use_shortcut and not self.identity_shortcut:
            s = block.shortcut
            first = build.conv(s[0], src, s[1])
            self.shortcut = nn.SequentialCell([first, build.conv(s[2], first.out_quant, s[3])])
        if self.use_shortcut:
            self.out_quant = build.act()

    def output_quant(self):
        return self.out_quant if self.use_shortcut else self.ghost2.output_quant()

    def construct(self, x):
        out = self.ghost1(x)
        if self.has_dw:
            out = self.conv_dw(out)
        if self.has_se:
            out = self.se(out)
        out = self.ghost2(out)
        if not self.use_shortcut:
            return out
        if self.identity_shortcut:
            return self.out_quant(out + x)
        return self.out_quant(out + self.shortcut(x))


class _Builder:
    """Makes the quantized layers of one network (shared control and scheme). ``src`` arguments are the quantizer
    of a layer's input (None: a float input), which sets the int32 grid of the layer's bias."""

    def __init__(self, scheme, control):
        self.scheme = scheme
        self.control = control

    def act(self):
        return ActQuant(self.control, self.scheme.observer_decay)

    def conv(self, conv, src, bn=None, act=None, out_quant=True, gate=False):
        depthwise = conv.group > 1 and conv.group == conv.in_channels
        quantize = not (depthwise and "depthwise" in self.scheme.keep_float)
        out = (GateQuant(self.control) if gate else self.act()) if out_quant else None
        return QuantConv(conv, bn, act, self.control, quantize, self.scheme.per_channel, out_quant=out,
                         input_quant=src)

    def conv_seq(self, seq, src, out_quant=True):
        """A ``Sequential(conv, bn[, ReLU])`` of the float model."""
        return self.conv(seq[0], src, seq[1], "relu" if len(seq) > 2 else None, out_quant)

    def module(self, module, src):
        if isinstance(module, GhostModuleV2):
            return QuantGhostModuleV2(module, self, src)
        if isinstance(module, GhostModule):
            return QuantGhostModule(module, self, src)
        if isinstance(module, RepGhostModule):
            return QuantRepGhostModule(module, self, src)
        raise QuantError(f"no quantized form of {type(module).__name__}")

    def block(self, block, src):
        if isinstance(block, GhostBottleneck):
            return QuantBottleneck(block, self, src)
        if isinstance(block, ConvBnAct):
            return self.conv(block.conv, src, block.bn1, "relu")
        raise QuantError(f"no quantized form of {type(block).__name__}")


def quantize_network(net, scheme):
    """Turn the float ``net`` (a :class:`GhostNet` or subclass) into its QAT network, in place; returns it.

    A train-form RepGhostNet is re-parameterized first. Parameters are reused (a loaded float checkpoint carries
    over) and renamed to their new paths.
    """
    if not isinstance(net, GhostNet):
        raise QuantError(f"quantization supports GhostNet, RepGhostNet and GhostNetV2, not {type(net).__name__}")
    if net.act_layer is not nn.ReLU:  # the quantized layers fuse ReLU; another activation would be replaced silently
        raise QuantError(f"quantization supports ReLU networks; {type(net).__name__} uses "
                         f"{net.act_layer.__name__}")
    if any(isinstance(c, (QuantConv, QuantControl)) for _, c in net.cells_and_names()):
        raise QuantError("the network is already quantization-aware")
    if isinstance(net, RepGhostNet):
        reparameterize(net)
    control = QuantControl(scheme.vector(), scheme.quant_delay)
    build = _Builder(scheme, control)
    children = list(net.name_cells().items())
    for name, _ in children:  # the control goes first, so its parameters are named quant_control.*
        delattr(net, name)
    net.quant_control = control
    for name, cell in children:
        setattr(net, name, cell)
    in_quant = None if "first_conv" in scheme.keep_float else build.act()
    net.conv_stem = QuantConv(net.conv_stem, net.bn1, "relu", control, in_quant is not None, scheme.per_channel,
                              in_quant=in_quant, out_quant=build.act(), count_steps=True, input_quant=in_quant)
    net.bn1 = nn.Identity()
    net.act1 = nn.Identity()
    src = net.conv_stem.out_quant
    for stage in net.blocks:
        for j, block in enumerate(list(stage)):
            stage[j] = build.block(block, src)
            src = stage[j].output_quant()
    net.global_pool = QuantPool(net.global_pool, build.act())
    net.conv_head = build.conv(net.conv_head, net.global_pool.out_quant, act="relu")
    net.act2 = nn.Identity()
    net.classifier = QuantDense(net.classifier, control, "classifier" not in scheme.keep_float, scheme.per_channel,
                                input_quant=net.conv_head.out_quant)
    for name, param in net.parameters_and_names():
        param.name = name
    return net


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
            f"[-{W_QMAX}, {W_QMAX}] (README: Quantization), so its int8 model differs slightly from the one "
            "trained; fine-tune it again (train.py --qat true --pretrained it) for the best int8 accuracy")


def load_qat_network(cfg, ckpt_file, params, record=None):
    """The QAT network (evaluation mode) of QAT checkpoint ``ckpt_file`` (its read ``params`` and ``record``).

    The checkpoint alone decides: its ``quant_control.scheme`` gives the scheme, and RepGhost networks are built in
    their deployed form. A checkpoint trained on the old weight grid is loaded with a warning."""
    from ..errors import DataError
    from ..models import create_model, load_checkpoint_strict, model_family

    if not is_qat_params(params):
        raise QuantError(f"{ckpt_file}: its record says QAT but it holds no quantization state; the file is corrupt")
    kwargs = {"deploy": True} if model_family(cfg.model) == "repghostnet" else {}
    net = quantize_network(create_model(cfg.model, num_classes=cfg.num_classes, dropout=cfg.dropout, **kwargs),
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
