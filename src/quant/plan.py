"""Which quantized layer each layer of a float network becomes, read from its dataflow (no family knowledge).

From the :class:`~src.models.trace.Trace` of one forward pass:

- a convolution or dense layer absorbs the BatchNorm that alone reads it and the activation that alone reads that
  (one int8 layer with BN folded); a residual add or a lone BatchNorm absorbs its activation the same way;
- every layer that computes (conv/dense, add, product, average pool, lone BN or activation) gets an output grid;
  hard-sigmoid and sigmoid outputs get the fixed [0, 1] gate grid;
- data movement keeps its input's grid; a concat joins its inputs' grids into one (the concat is then exact on
  int8 data) and observes that grid's range; the layer making the network output keeps a float output.

A layer the quantizer has no form for, a tensor computed outside any layer, or one layer instance called at
several places that need different forms is refused with the layer's path.
"""
from dataclasses import dataclass, field

from mindspore import nn

from ..models.layers import GlobalAvgPool, HardSigmoid, HardSwish
from ..models.ops import Add, Concat, Mul
from ..models.trace import INPUT
from . import QuantError
from .layers import check_move, is_move

CONVS = (nn.Conv2d, nn.Dense)
NORMS = (nn.BatchNorm2d, nn.BatchNorm1d)
POOLS = (GlobalAvgPool, nn.AvgPool2d)
BINARY = {Add: "add", Mul: "mul"}
ACTS = ((nn.ReLU, "relu"), (nn.ReLU6, "relu6"), (HardSigmoid, "hard_sigmoid"), (HardSwish, "hard_swish"),
        (nn.Sigmoid, "sigmoid"))
GATES = ("hard_sigmoid", "sigmoid")  # outputs in [0, 1]: the fixed gate grid
FLOAT_UNITS = (HardSigmoid, HardSwish)  # activations built from other cells, traced as one layer
KNOWN = ("Conv2d, Dense, BatchNorm, ReLU, ReLU6, HardSigmoid, HardSwish, Sigmoid, GlobalAvgPool, AvgPool2d, "
         "MaxPool2d, Add, Mul, Concat, ChannelSlice, ChannelPad, Subsample, NearestUpsample, Flatten, Dropout, "
         "Identity")


def act_name(cell):
    return next((name for t, name in ACTS if isinstance(cell, t)), None)


def kind_of(cell):
    """``conv``, ``norm``, ``act``, ``pool``, ``add``, ``mul``, ``concat`` or ``move``; None when unknown."""
    if isinstance(cell, CONVS):
        return "conv"
    if isinstance(cell, NORMS):
        return "norm"
    if act_name(cell):
        return "act"
    if isinstance(cell, POOLS):
        return "pool"
    if isinstance(cell, Concat):
        return "concat"
    if is_move(cell):
        return "move"
    return next((kind for t, kind in BINARY.items() if isinstance(cell, t)), None)


@dataclass
class Op:
    """One quantized layer: ``node`` (its float layer) and the BN / activation nodes it absorbs."""
    node: object
    kind: str
    bn: object = None
    act_node: object = None
    observe: bool = True
    round_in: bool = False
    grid: int = None
    absorbed: list = field(default_factory=list)

    @property
    def act(self):
        return act_name(self.act_node.cell) if self.act_node is not None else (
            act_name(self.node.cell) if self.kind == "act" else None)

    @property
    def tail(self):
        """The node whose output is this layer's output."""
        return self.act_node or self.bn or self.node


@dataclass
class Plan:
    """The quantized layers in forward order, the grid of every node's output (None: float), the observer of
    every grid, which grids are gates, and whether the network input is quantized."""
    ops: list
    grid_of: dict
    gates: set
    input_grid: int
    output: object


class _Grids:
    """Union-find over grid ids."""

    def __init__(self):
        self.parent = []

    def new(self):
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, g):
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def union(self, a, b):
        self.parent[self.find(b)] = self.find(a)


def _fuse(tr, node, op):
    """Absorb the BN (convs) and then the activation that alone read ``node``'s output."""
    tail = node
    if op.kind == "conv":
        nxt = tr.sole_consumer(tail)
        if nxt is not None and kind_of(nxt.cell) == "norm":
            op.bn = tail = nxt
    if op.kind in ("conv", "norm", "add"):
        nxt = tr.sole_consumer(tail)
        if nxt is not None and kind_of(nxt.cell) == "act" and act_name(nxt.cell) != "sigmoid":
            op.act_node = nxt  # a sigmoid stays its own layer: QLinearSigmoid after the int8 conv
    op.absorbed = [n for n in (op.bn, op.act_node) if n is not None]


def _ops(tr):
    ops, absorbed = [], set()
    for node in tr.nodes:
        if node.index in absorbed:
            continue
        kind = kind_of(node.cell)
        if kind is None:
            raise QuantError(f"{node.path} ({type(node.cell).__name__}) has no int8 form; quantization knows "
                             f"{KNOWN}")
        if kind == "move":
            check_move(node.cell, node.path)
            continue
        op = Op(node, kind)
        _fuse(tr, node, op)
        absorbed.update(n.index for n in op.absorbed)
        ops.append(op)
    _check_single_use(tr, ops)
    return ops


def _check_single_use(tr, ops):
    """One layer instance called at several places is fine when it is data movement or absorbed everywhere;
    otherwise each call would need its own quantized layer."""
    calls, absorbed = {}, {n.index for op in ops for n in op.absorbed}
    for node in tr.nodes:
        calls.setdefault(id(node.cell), []).append(node)
    for nodes in calls.values():
        if len(nodes) > 1 and kind_of(nodes[0].cell) != "move" and not all(n.index in absorbed for n in nodes):
            raise QuantError(f"{nodes[0].path} ({type(nodes[0].cell).__name__}) is called at {len(nodes)} places; "
                             "quantization needs one layer instance per call")


def plan(tr, float_input=False):
    """The :class:`Plan` of trace ``tr``; ``float_input``: the network input stays float (first layers with
    float weights)."""
    ops = _ops(tr)
    grids, grid_of, gates = _Grids(), {}, set()
    input_grid = None if float_input else grids.new()
    grid_of[INPUT] = input_grid
    op_of = {op.node.index: op for op in ops}
    concat_ops = {}
    for node in tr.nodes:
        op = op_of.get(node.index)
        if op is None:
            if node.index not in grid_of:  # data movement: its input's grid
                grid_of[node.index] = _moved_grid(grid_of, node)
            continue
        if op.kind == "concat":
            sources = [grid_of[i] for i in node.inputs]
            if None in sources:
                raise QuantError(f"{node.path}: a concat of float tensors has no int8 form")
            for g in sources[1:]:
                grids.union(sources[0], g)
            op.grid = sources[0]
            concat_ops.setdefault(grids.find(op.grid), []).append(op)
        else:
            op.grid = grids.new()
            if op.act in GATES:
                gates.add(op.grid)
        for n in [node] + op.absorbed:
            grid_of[n.index] = op.grid
    return _finish(tr, ops, grids, grid_of, gates, input_grid, concat_ops)


def _moved_grid(grid_of, node):
    grid = grid_of[node.inputs[0]]
    if grid is None:
        raise QuantError(f"{node.path} ({type(node.cell).__name__}) moves a float tensor; int8 data movement needs a "
                         "quantized input")
    return grid


def _finish(tr, ops, grids, grid_of, gates, input_grid, concat_ops):
    """Resolve joined grids, pick each joined grid's observer (its last concat) and leave the output float."""
    grid_of = {k: (None if g is None else grids.find(g)) for k, g in grid_of.items()}
    gates = {grids.find(g) for g in gates}
    joined = {}  # keyed by the final roots: a later concat may have joined a grid after it was recorded
    for root, members in concat_ops.items():
        joined.setdefault(grids.find(root), []).extend(members)
    concat_ops = {root: sorted(members, key=lambda op: op.node.index) for root, members in joined.items()}
    for op in ops:
        op.grid = grids.find(op.grid)
        observers = concat_ops.get(op.grid)
        if observers:
            if op.grid in gates:
                raise QuantError(f"{op.node.path}: a concat of gate outputs has no int8 form")
            op.observe = op is observers[-1]
    _mark_rounding(tr, ops)
    output = next((op for op in ops if op.tail.index == tr.output), None)
    if output is not None and output.observe and not concat_ops.get(output.grid):
        output.grid = None  # float logits
        grid_of[tr.output] = None
    return Plan(ops, grid_of, gates, input_grid, output)


def _mark_rounding(tr, ops):
    """Layers feeding a concat keep a float output in the Cell (the concat rounds); any other layer reading such an
    output, directly or through data movement, rounds its first input onto the shared grid (``round_in``)."""
    tails = {op.tail.index: op for op in ops}
    floats = set()
    for node in tr.nodes:
        op = tails.get(node.index)
        if (op is not None and not op.observe) or (op is None and kind_of(node.cell) == "move"
                                                    and node.inputs[0] in floats):
            floats.add(node.index)
    for op in ops:
        if op.kind == "concat":
            continue
        inputs = op.node.inputs
        if any(i in floats for i in inputs[1:]):
            raise QuantError(f"{op.node.path}: its second input also feeds a concat; int8 supports that only "
                             "for the first input")
        op.round_in = inputs[0] in floats
