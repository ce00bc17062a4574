"""ONNX graph passes applied after MindSpore's ONNX export, so every path that starts from our float ONNX (the file
itself, the ``.ms`` conversion, int8 QDQ quantization) gets the same lean graph.

MindSpore 2.10 writes the graph op for op: a BatchNormalization after every Conv, the hard sigmoid as Add/Clip/Div and
the squeeze-excite pool as ReduceMean, none of which onnxruntime's NCHWc layout handles. And Ghost networks have
channel counts (8, 12, 20, 36, 60, 100, ...) that are not multiples of the 16-channel blocks of onnxruntime's NCHWc
kernels (AVX-512; 8 on AVX2), so every Ghost concat and every depthwise conv on such a tensor falls back to NCHW
with a layout reorder on each side: ~100 reorders in GhostNet 1.0x, in the ONNX exported by PyTorch as in ours.

Passes (:func:`optimize` runs them in this order; each keeps the results up to float rounding):

- :func:`fold_batch_norms`: Conv -> BatchNormalization becomes one Conv.
- :func:`fuse_hard_sigmoids`: Add(3) -> Clip(0, 6) -> Div(6) becomes one HardSigmoid(alpha=1/6, beta=0.5).
- :func:`global_pools`: ReduceMean over H and W (keepdims) becomes GlobalAveragePool, which NCHWc runs in place.
- :func:`align_channels`: pads channel counts with zero channels to multiples of ``block``, so that every Conv,
  Concat and Add stays in the blocked layout. A zero channel has zero weights in and out, so results are exact.

The int8 (QDQ) graphs of :mod:`src.quant` get :func:`align_channels` too, for a different reason with the same
cure: onnxruntime's int8 conv kernels (MLAS) take their fast symmetric VNNI path only for a depthwise conv of a
multiple of 16 channels and a dense conv of >= 16 outputs with input and output channels multiples of 4; other
widths take a generic kernel 2-3x slower per MAC (docs/benchmarks.md, "int8 vs float"). The aligner reads an int8
weight through its DequantizeLinear and treats activation QuantizeLinear/DequantizeLinear as channel-wise;
:func:`pad_conv_inputs` pads the image's 3 channels to 4 for the stem.

onnxruntime folds BatchNormalization itself at session creation but leaves the rest, and no tool in our dependencies
(onnx, onnxruntime) pads channels, hence these few hand-written passes on plain ``onnx`` protos and NumPy.
"""
import functools

import numpy as np

from src.extras import optional_module

FEATURE = "writing ONNX files"
onnx = optional_module("onnx", FEATURE)
helper = optional_module("onnx.helper", FEATURE)
numpy_helper = optional_module("onnx.numpy_helper", FEATURE)

# MLAS (onnxruntime's CPU kernels) runs an int8 QLinearConv with its symmetric AVX-512-VNNI kernels only at these
# widths (``MlasConvSymPackWSize``); other widths take a generic kernel 2-3x slower per output (docs/benchmarks.md,
# "int8 vs float")
MLAS_DEPTHWISE_MULTIPLE, MLAS_DENSE_MULTIPLE, MLAS_DENSE_MIN = 16, 4, 16

UNARY = {"Relu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh", "LeakyRelu", "Identity",
         "GlobalAveragePool", "GlobalMaxPool", "AveragePool", "MaxPool"}
ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum"}


class Graph:
    """A mutable view of an ONNX graph: nodes in order, initializers as NumPy arrays, fresh-name generation."""

    def __init__(self, model):
        self.model = model
        self.inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.nodes = []
        for node in model.graph.node:  # Constant nodes become initializers: one way to read every constant
            if node.op_type == "Constant" and attribute(node, "value") is not None:
                self.inits[node.output[0]] = numpy_helper.to_array(attribute(node, "value"))
            else:
                self.nodes.append(node)
        self.outputs = {o.name for o in model.graph.output}
        self._count = 0

    def const(self, name):
        """The value of an initializer (or None)."""
        return self.inits.get(name)

    def add_const(self, stem, value):
        """A new initializer holding ``value``; returns its name."""
        name = self.fresh(stem)
        self.inits[name] = np.asarray(value)
        return name

    def fresh(self, stem):
        """A tensor name not used yet."""
        self._count += 1
        return f"{stem}__opt{self._count}"

    def consumers(self):
        """``{tensor: [nodes reading it]}``."""
        users = {}
        for node in self.nodes:
            for name in node.input:
                users.setdefault(name, []).append(node)
        return users

    def producers(self):
        """``{tensor: node writing it}``."""
        return {out: node for node in self.nodes for out in node.output}

    def single_use(self, name, users):
        """True when ``name`` feeds exactly one node and is not a graph output (so it can be fused away)."""
        return len(users.get(name, [])) == 1 and name not in self.outputs

    def commit(self):
        """Write nodes and the initializers still in use back into the model; stale shape annotations go."""
        graph = self.model.graph
        used = {name for node in self.nodes for name in node.input}
        del graph.node[:]
        graph.node.extend(self.nodes)
        del graph.initializer[:]
        graph.initializer.extend(numpy_helper.from_array(np.ascontiguousarray(v).reshape(np.shape(v)), k)  # 0-d stays
                                 for k, v in self.inits.items() if k in used)
        del graph.value_info[:]
        return self.model


def attribute(node, name, default=None):
    """The value of attribute ``name`` of ``node`` (or ``default``)."""
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _scalar(graph, name, value):
    const = graph.const(name)
    return const is not None and const.size == 1 and np.isclose(float(const.reshape(())), value)


def fold_batch_norms(model):
    """Fold every BatchNormalization that follows a Conv (and is its only reader) into the Conv. Returns the count."""
    graph = Graph(model)
    users, makers = graph.consumers(), graph.producers()
    removed = []
    for bn in graph.nodes:
        conv = makers.get(bn.input[0]) if bn.op_type == "BatchNormalization" else None
        if conv is None or conv.op_type != "Conv" or len(bn.output) != 1 or not graph.single_use(bn.input[0], users):
            continue
        params = [graph.const(name) for name in (conv.input[1], *bn.input[1:5])]
        if any(p is None for p in params):
            continue
        weight, gamma, beta, mean, var = (p.astype(np.float64) for p in params)
        scale = gamma / np.sqrt(var + attribute(bn, "epsilon", 1e-5))
        bias = graph.const(conv.input[2]).astype(np.float64) if len(conv.input) > 2 else np.zeros_like(mean)
        stem = conv.input[1]
        _set(conv.input, [conv.input[0],
                          graph.add_const(stem, (weight * scale.reshape(-1, 1, 1, 1)).astype(np.float32)),
                          graph.add_const(stem + "_bias", ((bias - mean) * scale + beta).astype(np.float32))])
        conv.output[0] = bn.output[0]
        removed.append(bn)
    graph.nodes = [n for n in graph.nodes if all(n is not r for r in removed)]
    graph.commit()
    return len(removed)


def fuse_hard_sigmoids(model):
    """Replace ``Div(Clip(Add(x, 3), 0, 6), 6)`` (or ``Mul(..., 1/6)``) by ``HardSigmoid(x)``. Returns the count."""
    graph = Graph(model)
    users = graph.consumers()
    fused, drop = 0, set()
    for add in list(graph.nodes):
        if add.op_type != "Add" or not _scalar(graph, add.input[1], 3.0) or not graph.single_use(add.output[0], users):
            continue
        clip = users[add.output[0]][0]
        if (clip.op_type != "Clip" or len(clip.input) != 3 or not _scalar(graph, clip.input[1], 0.0)
                or not _scalar(graph, clip.input[2], 6.0) or not graph.single_use(clip.output[0], users)):
            continue
        div = users[clip.output[0]][0]
        if not ((div.op_type == "Div" and _scalar(graph, div.input[1], 6.0))
                or (div.op_type == "Mul" and _scalar(graph, div.input[1], 1.0 / 6.0))):
            continue
        node = helper.make_node("HardSigmoid", [add.input[0]], [div.output[0]], alpha=1.0 / 6.0, beta=0.5,
                                name=graph.fresh("HardSigmoid"))
        graph.nodes[graph.nodes.index(div)] = node
        drop.update((id(add), id(clip)))
        fused += 1
    graph.nodes = [n for n in graph.nodes if id(n) not in drop]
    graph.commit()
    return fused


def global_pools(model):
    """Replace ReduceMean over axes (2, 3) of a 4-D tensor with keepdims by GlobalAveragePool. Returns the count."""
    graph = Graph(model)
    ranks = _shapes(model)
    count = 0
    for i, node in enumerate(graph.nodes):
        if (node.op_type == "ReduceMean" and len(node.input) == 1 and attribute(node, "keepdims", 1) == 1
                and sorted(a % 4 for a in attribute(node, "axes", [])) == [2, 3]
                and len(ranks.get(node.input[0], ())) == 4):
            graph.nodes[i] = helper.make_node("GlobalAveragePool", [node.input[0]], [node.output[0]], name=node.name)
            count += 1
    graph.commit()
    return count


def _shapes(model):
    """``{tensor: [dim or None, ...]}`` from ONNX shape inference (graph inputs, outputs and intermediates)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for info in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return shapes


class Layout:
    """Where the channels of a tensor sit once padded: real channel ``c`` is at position ``pos[c]`` of ``size``."""

    def __init__(self, pos, size):
        self.pos, self.size = np.asarray(pos, np.int64), int(size)

    @classmethod
    def identity(cls, channels):
        return cls(np.arange(channels), channels)

    def is_identity(self):
        return self.size == len(self.pos) and np.array_equal(self.pos, np.arange(self.size))

    def __eq__(self, other):
        return self.size == other.size and np.array_equal(self.pos, other.pos)

    def gather_from(self, source):
        """Gather indices that turn a tensor laid out as ``source`` into this layout (padding reads a real channel,
        so it stays finite; its value never matters)."""
        index = np.full(self.size, source.pos[0], np.int64)
        index[self.pos] = source.pos
        return index


class _Aligner:
    """Chooses a channel layout for every 4-D tensor and rewrites weights to match (see :func:`align_channels`).

    Tensors that must share a layout (the input and output of a depthwise conv or an activation, the operands of an
    Add or Mul) form one class. A class takes the layout a Concat or Slice in it produces (the concatenation or
    selection of its inputs' layouts), or, when it has none, its channels padded at the end. Convolutions with
    group 1 produce any layout (their weights are scattered into it); any other op gets its inputs back in the
    original channel order through a Gather.
    """

    def __init__(self, model, block):
        self.graph = Graph(model)
        self.block = block
        self.makers = self.graph.producers()
        self.params = {n.output[0] for n in self.graph.nodes if n.op_type == "DequantizeLinear"
                       and self.graph.const(n.input[0]) is not None}
        self.parent = {}
        self.order = {}
        self.layouts, self.natural_cache = {}, {}
        self.fixed = {}

    @functools.cached_property
    def shapes(self):
        """Inferred shapes of the model as given (inferred on first use: :func:`pad_conv_inputs` needs none)."""
        return _shapes(self.graph.model)

    def dequantized(self, name):
        """The DequantizeLinear that makes ``name`` from a constant (an int8 weight or int32 bias), or None."""
        return self.makers[name] if name in self.params else None

    def param(self, name):
        """A weight's values: the initializer, or the integers its DequantizeLinear reads (None if neither)."""
        dq = self.dequantized(name)
        return self.graph.const(dq.input[0] if dq is not None else name)

    def channels(self, name):
        """Channel count (dim 1) of a feature tensor of rank >= 3, else None."""
        if name in self.params:
            return None
        shape = self.shapes.get(name)
        return shape[1] if shape and len(shape) >= 3 and shape[1] else None

    def find(self, name):
        root = self.parent.setdefault(name, name)
        if root != name:
            root = self.parent[name] = self.find(root)
        return root

    def union(self, a, b):
        self.parent[self.find(a)] = self.find(b)

    def role(self, node):
        """How ``node`` relates the layouts of its inputs and outputs."""
        if node.op_type == "Conv":
            weight = self.param(node.input[1])
            if weight is None or weight.ndim != 4:
                return "barrier"
            group = attribute(node, "group", 1)
            if group == 1:
                return "mix"
            return "depthwise" if weight.shape[1] == 1 and weight.shape[0] == group else "barrier"
        if node.op_type in UNARY and len(node.output) == 1:
            return "same"
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            if node.output[0] in self.params:
                return "param"
            return "same" if all(self.graph.const(n) is not None and self.graph.const(n).size == 1
                                 for n in node.input[1:]) else "barrier"
        if node.op_type == "BatchNormalization" and len(node.output) == 1 and \
                all(self.graph.const(n) is not None for n in node.input[1:]):
            return "same"
        if node.op_type in ELEMENTWISE:
            return "same" if all(self.channel_operand(node, n) is not None for n in node.input) else "barrier"
        if node.op_type == "Concat":
            rank = len(self.shapes.get(node.output[0], ()))
            return "concat" if rank and attribute(node, "axis") % rank == 1 else "same"
        if node.op_type == "Slice":
            return "slice" if self.channel_slice(node) is not None else \
                "same" if self.spatial_slice(node) else "barrier"
        if node.op_type == "Reshape" and self.channel_reshape(node) is not None:
            return "reshape"
        return "barrier"

    def spatial_slice(self, node):
        """True when ``node`` slices with constant axes that do not include the batch or channel axis."""
        axes = self.graph.const(node.input[3]) if len(node.input) > 3 else None
        rank = len(self.shapes.get(node.input[0], ()))
        return axes is not None and rank >= 3 and all(int(a) % rank > 1 for a in axes.reshape(-1))

    def channel_reshape(self, node):
        """The target shape when a Reshape keeps the batch (-1 or 0) and channel axes and only regroups the
        others, else None."""
        target = self.graph.const(node.input[1])
        chans = self.channels(node.input[0])
        if target is None or target.ndim != 1 or len(target) < 3 or chans is None:
            return None
        return target if int(target[0]) in (-1, 0) and int(target[1]) == chans == self.channels(node.output[0]) \
            else None

    def channel_operand(self, node, name):
        """For an elementwise op: 'tensor' (same channels as the output), 'const' (scalar or per-channel constant),
        'broadcast' (a single channel) or None (anything else: the op becomes a barrier)."""
        out = self.channels(node.output[0])
        const = self.graph.const(name)
        if const is not None:
            if const.size == 1:
                return "broadcast"
            return "const" if const.ndim >= 3 and const.shape[-3] == out and const.size == out else None
        chans = self.channels(name)
        if chans == out:
            return "tensor"
        return "broadcast" if chans == 1 else None

    def channel_slice(self, node):
        """``(start, stop)`` when ``node`` slices only the channel axis with step 1 and constant bounds."""
        if len(node.input) < 4:
            return None
        starts, ends, axes = (self.graph.const(n) for n in node.input[1:4])
        steps = self.graph.const(node.input[4]) if len(node.input) > 4 else np.ones(1)
        channels = self.channels(node.input[0])
        if any(v is None or v.size != 1 for v in (starts, ends, axes, steps)) or channels is None:
            return None
        if int(axes.reshape(())) % 4 != 1 or int(steps.reshape(())) != 1:
            return None
        return tuple(range(channels)[int(starts.reshape(())):int(ends.reshape(()))][i] for i in (0, -1))

    def analyse(self):
        """Build the classes and note each class's fixed members (Concat/Slice/barrier outputs, graph inputs)."""
        for i, node in enumerate(self.graph.nodes):
            role = self.role(node)
            out = node.output[0] if node.output else None
            self.order[out] = i
            if role in ("depthwise", "same", "reshape"):
                for name in node.input:
                    if self.channels(name) and self.graph.const(name) is None and \
                            self.channels(name) == self.channels(out):
                        self.union(name, out)
            if role in ("concat", "slice", "barrier"):
                for name in node.output:
                    if self.channels(name):
                        self.fixed.setdefault(self.find(name), []).append((name, node, role))
        for value in self.model_inputs():
            if self.channels(value):
                self.order[value] = -1
                self.fixed.setdefault(self.find(value), []).append((value, None, "barrier"))
        regrouped = {}
        for members in self.fixed.values():
            for member in members:
                regrouped.setdefault(self.find(member[0]), []).append(member)
        self.fixed = regrouped

    def model_inputs(self):
        return [i.name for i in self.graph.model.graph.input if i.name not in self.graph.inits]

    def natural(self, name, node, role):
        """The layout ``node`` produces for ``name`` from its inputs' layouts."""
        key = name
        if key not in self.natural_cache:
            if role == "concat":
                layouts = [self.layout(n) for n in node.input]
                offsets = np.cumsum([0] + [l.size for l in layouts[:-1]])
                self.natural_cache[key] = Layout(np.concatenate([l.pos + o for l, o in zip(layouts, offsets)]),
                                                 sum(l.size for l in layouts))
            elif role == "slice":
                start, stop = self.channel_slice(node)
                source = self.layout(node.input[0])
                self.natural_cache[key] = Layout(source.pos[start:stop + 1], source.size)
            else:
                self.natural_cache[key] = Layout.identity(self.channels(name))
        return self.natural_cache[key]

    def layout(self, name):
        """The layout of tensor ``name``'s class (decided on first use)."""
        root = self.find(name)
        if root not in self.layouts:
            members = self.fixed.get(root, [])
            if members:
                # Prefer a Concat/Slice layout: converting a barrier output costs a gather of a (small) tensor,
                # converting a Concat output one of a full feature map.
                members = sorted(members, key=lambda m: (m[2] == "barrier", self.order.get(m[0], 0)))
                self.layouts[root] = self.natural(*members[0])
            else:
                channels = self.channels(name)
                self.layouts[root] = Layout(np.arange(channels), -(-channels // self.block) * self.block)
        return self.layouts[root]


def align_channels(model, block=16):
    """Pad the channel counts of 4-D tensors to multiples of ``block`` with zero channels (exact; see module doc).

    Returns the number of tensors whose layout changed (0: the model is untouched).
    """
    aligner = _Aligner(model, block)
    aligner.analyse()
    graph = aligner.graph
    changed = {}
    new_nodes = []
    restored = {}

    def restore(name):
        """``name`` in its original channel order (a Gather, made once per tensor)."""
        layout = aligner.layout(name)
        if layout.is_identity():
            return name
        if name not in restored:
            restored[name] = graph.fresh(name + "_restored")
            index = graph.add_const(name + "_index", layout.pos)
            new_nodes.append(helper.make_node("Gather", [name, index], [restored[name]], axis=1,
                                              name=graph.fresh("Gather")))
        return restored[name]

    def convert(name, natural, node):
        """Make ``node`` write ``name`` in its natural layout and gather it into its class layout."""
        target = aligner.layout(name)
        if natural == target:
            return None
        raw = graph.fresh(name + "_natural")
        node.output[list(node.output).index(name)] = raw
        index = graph.add_const(name + "_index", target.gather_from(natural))
        return helper.make_node("Gather", [raw, index], [name], axis=1, name=graph.fresh("Gather"))

    for node in graph.nodes:
        role = aligner.role(node)
        after = []
        if role in ("mix", "depthwise"):
            new_nodes.extend(_rewrite_conv(graph, node, aligner, role))
        elif role == "same" and node.op_type == "BatchNormalization":
            layout = aligner.layout(node.output[0])
            _set(node.input, [node.input[0], *(_scatter_const(graph, n, layout, fill) for n, fill in
                                               zip(node.input[1:], (0.0, 0.0, 0.0, 1.0)))])
        elif role == "same":
            for i, name in enumerate(node.input):
                if aligner.channel_operand(node, name) == "const" and aligner.channels(node.output[0]):
                    node.input[i] = _scatter_const(graph, name, aligner.layout(node.output[0]))
        elif role == "slice":
            node = helper.make_node("Identity", [node.input[0]], list(node.output), name=node.name)
        elif role == "reshape":
            target = aligner.channel_reshape(node).copy()
            target[1] = aligner.layout(node.output[0]).size
            node.input[1] = graph.add_const(node.input[1], target)
        if role in ("concat", "slice", "barrier"):
            if role == "barrier":
                _set(node.input, [restore(n) if aligner.channels(n) and graph.const(n) is None else n
                                  for n in node.input])
            for name in node.output:
                if aligner.channels(name):
                    natural = aligner.natural(name, node, role)
                    gather = convert(name, natural, node)
                    after += [gather] if gather is not None else []
        new_nodes.append(node)
        new_nodes.extend(after)
        for name in node.output:
            if aligner.channels(name) and not aligner.layout(name).is_identity():
                changed[name] = True
    graph.nodes = _without_unread_dequantize(graph, new_nodes)
    for output in model.graph.output:
        if aligner.channels(output.name) and not aligner.layout(output.name).is_identity():
            _restore_output(graph, output.name, aligner.layout(output.name))
    graph.commit()
    return len(changed)


def _restore_output(graph, name, layout):
    """Keep the graph output ``name`` in its original channel order: the graph works on an aligned copy."""
    internal = graph.fresh(name + "_aligned")
    for node in graph.nodes:
        _set(node.input, [internal if n == name else n for n in node.input])
        _set(node.output, [internal if n == name else n for n in node.output])
    index = graph.add_const(name + "_index", layout.pos)
    graph.nodes.append(helper.make_node("Gather", [internal, index], [name], axis=1, name=graph.fresh("Gather")))


def _set(field, values):
    """Replace the contents of a repeated protobuf field."""
    del field[:]
    field.extend(values)


def _scatter_const(graph, name, layout, fill=0.0):
    """A per-channel constant (shape ``[C]`` or ``[..., C, 1, 1]``) laid out as ``layout``, padding = ``fill``."""
    value = graph.const(name)
    shape = list(value.shape)
    shape[-3 if value.ndim >= 3 else -1] = layout.size
    out = np.full(layout.size, fill, value.dtype)
    out[layout.pos] = value.reshape(-1)
    return graph.add_const(name + "_aligned", out.reshape(shape))


def _rewrite_conv(graph, node, aligner, role):
    """Scatter a Conv's weights (and bias) into the layouts chosen for its input and output; returns the nodes that
    must come before it (an int8 conv's new DequantizeLinear nodes)."""
    weight = aligner.param(node.input[1])
    out_layout = aligner.layout(node.output[0])
    in_layout = aligner.layout(node.input[0]) if aligner.channels(node.input[0]) else None
    if role == "mix":
        in_size, in_pos = (in_layout.size, in_layout.pos) if in_layout else (weight.shape[1], np.arange(weight.shape[1]))
        new = np.zeros((out_layout.size, in_size, *weight.shape[2:]), weight.dtype)
        new[np.ix_(out_layout.pos, in_pos)] = weight
    else:
        new = np.zeros((out_layout.size, 1, *weight.shape[2:]), weight.dtype)
        new[out_layout.pos] = weight
        for attr in node.attribute:
            if attr.name == "group":
                attr.i = out_layout.size
    if new.shape == weight.shape and np.array_equal(new, weight):
        return []
    before = []
    inputs = [_param_as(graph, aligner, node.input[1], new, out_layout, before)]
    if len(node.input) > 2:
        bias = aligner.param(node.input[2])
        scattered = np.zeros(out_layout.size, bias.dtype)
        scattered[out_layout.pos] = bias
        inputs.append(_param_as(graph, aligner, node.input[2], scattered, out_layout, before))
    _set(node.input, [node.input[0], *inputs])
    return before


def _param_as(graph, aligner, name, value, layout, before):
    """``value`` in place of parameter ``name``: a new constant or, for an int8/int32 parameter, a new
    DequantizeLinear (appended to ``before``) of it, its per-channel scale and zero point laid out as ``layout``
    (padding: the first channel's scale, zero point 0)."""
    dq = aligner.dequantized(name)
    if dq is None:
        return graph.add_const(name, value)
    extras = []
    for extra, first in zip(dq.input[1:], (True, False)):
        v = graph.const(extra)
        if v.size > 1:
            out = np.full(layout.size, v.reshape(-1)[0] if first else 0, v.dtype)
            out[layout.pos] = v.reshape(-1)
            extra = graph.add_const(extra, out)
        extras.append(extra)
    out = graph.fresh(name)
    before.append(helper.make_node("DequantizeLinear", [graph.add_const(dq.input[0], value), *extras], [out],
                                   name=out, **{a.name: helper.get_attribute_value(a) for a in dq.attribute}))
    return out


def fast_int8_width(depthwise, out_chs, in_chs_per_group):
    """True when MLAS runs an int8 conv of these widths with its fast kernels: a depthwise conv of a multiple of
    16 channels, or a dense conv with >= 16 outputs and input and output channels multiples of 4."""
    if depthwise:
        return out_chs % MLAS_DEPTHWISE_MULTIPLE == 0
    return out_chs >= MLAS_DENSE_MIN and out_chs % MLAS_DENSE_MULTIPLE == 0 and \
        in_chs_per_group % MLAS_DENSE_MULTIPLE == 0


def pad_conv_inputs(model, multiple=MLAS_DENSE_MULTIPLE):
    """Give every int8 dense Conv whose input has a channel count not a multiple of ``multiple`` (the image's 3) its
    input through a uint8 Pad to the next multiple (zero-point values meet zero weights: exact), so MLAS takes its
    fast kernel (GhostNet 1.0x's stem: docs/benchmarks.md, "int8 vs float"). Returns the count."""
    aligner = _Aligner(model, 1)
    graph, count, nodes = aligner.graph, 0, []
    for node in graph.nodes:
        dq = aligner.makers.get(node.input[0]) if node.op_type == "Conv" else None
        weight = aligner.param(node.input[1]) if dq is not None else None
        if dq is None or dq.op_type != "DequantizeLinear" or weight is None or weight.ndim != 4 or \
                attribute(node, "group", 1) != 1 or weight.shape[1] % multiple == 0 or len(dq.input) < 3:
            nodes.append(node)
            continue
        extra = -weight.shape[1] % multiple
        padded = graph.fresh(dq.input[0] + "_pad")
        nodes.append(helper.make_node("Pad", [dq.input[0], graph.add_const("pads", np.array(
            [0, 0, 0, 0, 0, extra, 0, 0], np.int64)), dq.input[2]], [padded], mode="constant", name=padded))
        nodes.append(helper.make_node("DequantizeLinear", [padded, *dq.input[1:]], [padded + "_dq"],
                                      name=padded + "_dq"))
        wide = np.pad(weight, [(0, 0), (0, extra), (0, 0), (0, 0)])
        _set(node.input, [padded + "_dq", _param_as(graph, aligner, node.input[1], wide,
                                                    Layout.identity(weight.shape[0]), nodes), *node.input[2:]])
        nodes.append(node)
        count += 1
    graph.nodes = _without_unread_dequantize(graph, nodes)
    graph.commit()
    return count


def _without_unread_dequantize(graph, nodes):
    """``nodes`` without the DequantizeLinear nodes nobody reads any more (onnxruntime would still run them)."""
    used = {name for node in nodes for name in node.input} | graph.outputs
    return [n for n in nodes if n.op_type != "DequantizeLinear" or n.output[0] in used]


def optimize_qdq(model, block=MLAS_DEPTHWISE_MULTIPLE):
    """The passes for an int8 QDQ graph (:mod:`src.quant`): :func:`align_channels` (multiples of 16 also meet the
    dense-conv widths of :func:`fast_int8_width`) and :func:`pad_conv_inputs`; returns ``{pass: count}``."""
    report = {"tensors_aligned": align_channels(model, block), "conv_inputs_padded": pad_conv_inputs(model)}
    onnx.checker.check_model(model)
    return report


def optimize(model, block=16):
    """Run every pass on ``model`` in place; returns ``{pass: count}``. ``block=0`` skips channel alignment."""
    report = {"batch_norms_folded": fold_batch_norms(model), "hard_sigmoids_fused": fuse_hard_sigmoids(model),
              "global_pools": global_pools(model)}
    if block:
        report["tensors_aligned"] = align_channels(model, block)
    onnx.checker.check_model(model)
    return report
