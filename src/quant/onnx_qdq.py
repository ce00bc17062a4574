"""Writing a QAT network as a QDQ ONNX model with int8 weights, which onnxruntime runs with int8 kernels.

MindSpore 2.10's ONNX exporter writes opset 11 and no QuantizeLinear/DequantizeLinear, and per-channel
DequantizeLinear needs opset 13, so the graph is written here with the ``onnx`` helper API, layer by layer from the
QAT cells (:mod:`.qat`), with the quantization parameters the cells use. The graph is lean on purpose:

- every conv reads a DequantizeLinear of an int8-grid tensor, has int8 weights (per-channel DequantizeLinear),
  an int32 bias at scale ``s_in * s_w`` and is followed by QuantizeLinear, so onnxruntime fuses it to
  ``QLinearConv``; a ReLU before a zero-point-0 QuantizeLinear and the hard-sigmoid clip before the [0, 1] gate
  grid are fused away by onnxruntime as well (the grid saturates exactly there);
- data movement stays on uint8 tensors (the Ghost concat and channel slice, flatten, GhostNetV2's upsampling),
  with no requantization: the concat's inputs share one grid;
- adds, products, pools and the sigmoid read DequantizeLinear and end in QuantizeLinear (``QLinearAdd``,
  ``QLinearMul``, ``QLinearGlobalAveragePool``, ``QLinearAveragePool``, ``QLinearSigmoid``); the classifier is a
  Gemm with int8 weights and float logits (``QGemm``).
"""
import mindspore as ms
import numpy as np

from src.deploy.onnx_graph import helper, numpy_helper, onnx

from ..models.layers import GlobalAvgPool
from .fake_quant import ACT_QMIN, INT32_BOUND, W_QMAX, GateQuant
from .qat import QuantBottleneck, QuantGhostModule, QuantGhostModuleV2, QuantRepGhostModule

OPSET = 13  # per-channel DequantizeLinear (axis) needs >= 13
IR_VERSION = 7  # the IR of opset 13: readable by older runtimes and converters
FLAVOURS = ("onnxruntime", "lite")  # int8 weight initializers, or float weights for MindSpore Lite 2.0's parser


def _np(x):
    return x.asnumpy() if hasattr(x, "asnumpy") else np.asarray(x)


class Value:
    """A tensor of the graph: ``name`` float, or uint8 ``name`` on the grid ``(scale, zero_point)``."""

    def __init__(self, name, scale=None, zero_point=None):
        self.name, self.scale, self.zero_point = name, scale, zero_point
        self.dequantized = None

    @property
    def quantized(self):
        return self.scale is not None


class Graph:
    """Nodes and initializers of the model being written; names are unique and readable."""

    def __init__(self, flavour="onnxruntime"):
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {FLAVOURS}, got {flavour!r}")
        self.flavour = flavour
        self.nodes, self.initializers, self.count = [], [], 0

    def unique(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, array, hint):
        name = self.unique(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, hint, **attrs):
        out = self.unique(hint)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def model(self, name, input_shape, output_shape, output="logits"):
        """The checked ``ModelProto`` of these nodes: float input ``input`` and float output ``output`` (dims
        may be names or None)."""
        graph = helper.make_graph(
            self.nodes, name, [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, input_shape)],
            [helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, output_shape)], self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ghostnet-quant")
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model

    def quantize(self, name, scale, zero_point, hint):
        """QuantizeLinear of float ``name`` onto the uint8 grid (scale, zero point)."""
        scale, zero_point = np.float32(scale), np.uint8(zero_point)
        q = self.node("QuantizeLinear", [name, self.const(scale, hint + "_scale"),
                                         self.const(zero_point, hint + "_zp")], hint + "_q")
        return Value(q, scale, zero_point)

    def quantize_with(self, name, quantizer, hint):
        scale, zero_point = quantizer.qparams()
        return self.quantize(name, float(_np(scale)), int(_np(zero_point)), hint)

    def move(self, op, values, extra, hint, **attrs):
        """A data-movement op (Concat, Slice, Reshape) on quantized ``values`` sharing one grid, with constant
        ``extra`` inputs; exact on int8 data. onnxruntime: the op runs on the uint8 tensors. Lite: its converter
        only keeps an op int8 when the op's output carries quantization parameters, so the op reads the float
        tensors and is followed by a QuantizeLinear onto the same grid."""
        first = values[0]
        if self.flavour == "lite":
            out = self.node(op, [self.float(v) for v in values] + extra, hint, **attrs)
            return self.quantize(out, first.scale, first.zero_point, hint)
        return Value(self.node(op, [v.name for v in values] + extra, hint, **attrs), first.scale, first.zero_point)

    def ints(self, values, hint):
        """An int64 constant (shapes, slice bounds)."""
        return self.const(np.array(values, np.int64), hint)

    def float(self, value):
        """The float tensor of ``value``: one DequantizeLinear per quantized tensor, shared by its consumers."""
        if not value.quantized:
            return value.name
        if value.dequantized is None:
            value.dequantized = self.node("DequantizeLinear", [value.name, self.const(value.scale, "s"),
                                                               self.const(value.zero_point, "zp")], "dq")
        return value.dequantized

    def weight(self, values, scale, hint, axis):
        """The float weight ``values * scale`` (int8 ``values``, per-channel vector or per-tensor scalar ``scale``)
        as the graph reads it.

        onnxruntime: an int8 initializer and a DequantizeLinear (``axis`` for per-channel scales). MindSpore Lite
        2.0's ONNX parser keeps only the first scale of a QuantizeLinear and none of a DequantizeLinear, so its
        graph holds the float weight with a per-tensor QuantizeLinear/DequantizeLinear pair (a per-channel weight
        is re-quantized per tensor: ``max |w| / W_QMAX``) and the converter stores it as int8.
        """
        if self.flavour == "lite":
            weight = values * (scale.reshape((-1,) + (1,) * (values.ndim - 1)) if np.ndim(scale) else scale)
            tensor_scale = np.float32(np.abs(weight).max() / W_QMAX) or np.float32(1.0)
            q = self.quantize(self.const(weight.astype(np.float32), hint + "_w"), tensor_scale, 128, hint + "_w")
            return self.float(q), None
        attrs = {"axis": axis} if np.ndim(scale) > 0 else {}
        name = self.node("DequantizeLinear", [self.const(values.astype(np.int8), hint + "_w"),
                                              self.const(scale.astype(np.float32), hint + "_ws"),
                                              self.const(np.zeros(np.shape(scale), np.int8), hint + "_wzp")],
                         hint + "_wdq", **attrs)
        return name, scale

    def bias(self, bias, x, w_scale, hint, int32=True, offset=0.0, divisor=1.0):
        """The bias of an int8 conv / Gemm, rounded exactly as :func:`.fold.int32_bias` rounds it in the Cell:
        int32 values at scale ``s_in * s_w`` (what ``QLinearConv`` / ``QGemm`` take) or, with ``int32=False``
        (Lite), the same numbers in float. ``offset`` is rounded with the bias and ``divisor`` divides the result
        (a hard-sigmoid's +3 and /6). A float input or float weight keeps the float bias."""
        if bias is None:
            return None
        offset = np.float32(offset)
        if not x.quantized or w_scale is None:
            return self.const(((bias + offset) / divisor).astype(np.float32), hint + "_b")
        step = (np.float32(x.scale) * np.broadcast_to(w_scale, bias.shape)).astype(np.float32)
        values = np.clip(np.rint((bias + offset) / step), -INT32_BOUND, INT32_BOUND)  # as fold.int32_bias
        if not int32:
            return self.const((values * step / divisor).astype(np.float32), hint + "_b")
        return self.node("DequantizeLinear", [self.const(values.astype(np.int32), hint + "_bq"),
                                              self.const((step / divisor).astype(np.float32), hint + "_bs"),
                                              self.const(np.zeros(bias.shape, np.int32), hint + "_bzp")],
                         hint + "_bdq", axis=0)


def _conv(g, layer, x, hint, out=None):
    """A :class:`QuantConv`: [input quantizer] -> Conv (int8 or float weight) -> activation -> output quantizer
    (``out``, default the layer's own; None: float output).

    A ReLU before a zero-point-0 grid and the hard-sigmoid clip before the [0, 1] gate grid change nothing (the
    grid saturates exactly there), so they are not written: the conv feeds its QuantizeLinear directly."""
    if layer.has_in_quant:
        x = g.quantize_with(x.name, layer.in_quant, hint + "_in")
    out = out if out is not None else (layer.out_quant if layer.has_out_quant else None)
    weight, bias = (None if t is None else _np(t) for t in layer.folded())
    conv = layer.conv
    gate = 6.0 if layer.act == "hard_sigmoid" else 1.0  # relu6(y + 3) / 6 == clip(y / 6 + 0.5, 0, 1)
    w_scale = onnx_scale = None
    if layer.quantize:
        values, w_scale = (_np(t) for t in layer.int8_weight())
        w, onnx_scale = g.weight(values, w_scale / np.float32(gate), hint, axis=0)
    else:
        w = g.const((weight / gate).astype(np.float32), hint + "_w")
    kh, kw = conv.kernel_size
    b = g.bias(bias, x if layer.int_bias else Value(x.name), w_scale, hint, onnx_scale is not None,
               3.0 if gate != 1.0 else 0.0, gate)
    y = g.node("Conv", [g.float(x), w] + ([b] if b else []), hint, kernel_shape=[kh, kw],
               strides=list(conv.stride), dilations=list(conv.dilation), pads=[kh // 2, kw // 2, kh // 2, kw // 2],
               group=conv.group)
    qparams = None if out is None else tuple(float(_np(t)) for t in out.qparams())
    if layer.act == "relu" and (qparams is None or qparams[1] != ACT_QMIN):
        y = g.node("Relu", [y], hint + "_relu")
    elif layer.act == "hard_sigmoid" and not isinstance(out, GateQuant):
        y = g.node("Clip", [y, g.const(np.float32(0.0), "zero"), g.const(np.float32(1.0), "one")], hint + "_hsig")
    return Value(y) if out is None else g.quantize(y, *qparams, hint + "_out")


def _pool(g, layer, x, hint, channels, size):
    """The average pool of ``x`` (``channels`` maps of side ``size``) onto the layer's output grid: global, or
    GhostNetV2's 2x2 with stride 2.

    Lite flavour: a depthwise conv whose weights are all 1/k² (int8 W_QMAX at scale 1/(W_QMAX k²), so exactly the
    mean), because MindSpore Lite 2.0's int8 average pooling misses the output grid when it differs from the input
    grid or the map is large (measured on the same int8 inputs as onnxruntime: 40-88% of outputs off, by up to 254
    steps; all at 28x28), while its int8 convs are within one step on < 2% of outputs."""
    glob = isinstance(layer.pool, GlobalAvgPool)
    if g.flavour == "lite":
        k = size if glob else 2
        values = np.full((channels, 1, k, k), W_QMAX, np.float32)
        w, _ = g.weight(values, np.float32(1.0 / (W_QMAX * k * k)), hint, axis=0)
        y = g.node("Conv", [g.float(x), w], hint, kernel_shape=[k, k], strides=[k, k], group=channels)
    elif glob:
        y = g.node("GlobalAveragePool", [g.float(x)], hint)
    else:
        y = g.node("AveragePool", [g.float(x)], hint, kernel_shape=[2, 2], strides=[2, 2])
    return g.quantize_with(y, layer.out_quant, hint + "_out")


def _ghost(g, m, x, hint):
    x1q = _conv(g, m.primary_conv, x, hint + "_primary", out=m.out_quant)
    x2q = _conv(g, m.cheap_operation, x1q, hint + "_cheap", out=m.out_quant)
    out = g.move("Concat", [x1q, x2q], [], hint + "_concat", axis=1)
    if m.needs_slice:
        out = g.move("Slice", [out], [g.ints([0], "start"), g.ints([m.oup], "end"), g.ints([1], "axis")],
                     hint + "_slice")
    return out


def _upsample_nearest(g, gate, channels, h, w, out_h, out_w, hint):
    """GhostNetV2's nearest upsampling of the quantized gate, the same Reshape/Concat steps as the float module."""
    x = g.move("Reshape", [gate], [g.ints([-1, channels, h, 1, w, 1], "shape")], hint + "_r1")
    x = g.move("Concat", [x, x], [], hint + "_dup_w", axis=5)
    x = g.move("Concat", [x, x], [], hint + "_dup_h", axis=3)
    x = g.move("Reshape", [x], [g.ints([-1, channels, 2 * h, 2 * w], "shape")], hint + "_r2")
    for axis, odd in ((2, out_h % 2), (3, out_w % 2)):
        if odd:
            first = g.move("Slice", [x], [g.ints([0], "start"), g.ints([1], "end"), g.ints([axis], "axis")],
                           hint + "_first")
            x = g.move("Concat", [first, x], [], hint + "_odd", axis=axis)
    return x


def _ghost_v2(g, m, x, hint, size):
    out = _ghost(g, m, x, hint)
    if not m.attention:
        return out
    a = _pool(g, m.pool, x, hint + "_pool", m.short_conv[0].conv.in_channels, size)
    for i, layer in enumerate(m.short_conv):
        a = _conv(g, layer, a, f"{hint}_short{i}")
    gate = g.quantize_with(g.node("Sigmoid", [g.float(a)], hint + "_sigmoid"), m.gate_quant, hint + "_gate")
    gate = _upsample_nearest(g, gate, m.oup, size // 2, size // 2, size, size, hint + "_up")
    y = g.node("Mul", [g.float(out), g.float(gate)], hint + "_mul")
    return g.quantize_with(y, m.out_quant_mul, hint + "_mul_out")


def _se(g, se, x, hint, size):
    s = _pool(g, se.pool, x, hint + "_pool", se.conv_reduce.conv.in_channels, size)
    s = _conv(g, se.conv_reduce, s, hint + "_reduce")
    s = _conv(g, se.conv_expand, s, hint + "_expand")
    return g.quantize_with(g.node("Mul", [g.float(x), g.float(s)], hint + "_mul"), se.out_quant, hint + "_out")


def _module(g, m, x, hint, size):
    if isinstance(m, QuantGhostModuleV2):
        return _ghost_v2(g, m, x, hint, size)
    if isinstance(m, QuantGhostModule):
        return _ghost(g, m, x, hint)
    if isinstance(m, QuantRepGhostModule):
        return _conv(g, m.cheap_operation, _conv(g, m.primary_conv, x, hint + "_primary"), hint + "_cheap")
    raise TypeError(f"no ONNX writer for {type(m).__name__}")


def _side_after(block, size):
    """Feature-map side after ``block``: its depthwise conv (present only with stride 2) halves it, rounding up."""
    return -(-size // 2) if getattr(block, "has_dw", False) else size


def _bottleneck(g, b, x, hint, size):
    out = _module(g, b.ghost1, x, hint + "_ghost1", size)
    if b.has_dw:
        out = _conv(g, b.conv_dw, out, hint + "_dw")
    if b.has_se:
        out = _se(g, b.se, out, hint + "_se", _side_after(b, size))
    out = _module(g, b.ghost2, out, hint + "_ghost2", size)
    if not b.use_shortcut:
        return out
    short = x
    if not b.identity_shortcut:
        for i, layer in enumerate(b.shortcut):
            short = _conv(g, layer, short, f"{hint}_short{i}")
    y = g.node("Add", [g.float(out), g.float(short)], hint + "_add")
    return g.quantize_with(y, b.out_quant, hint + "_out")


def _classifier(g, layer, x, hint):
    """Flatten + Gemm with int8 weights and float logits (``QGemm``).

    MindSpore Lite 2.0 cannot run an int8-weight matmul with a float output (its fp32 kernel fails to pack the
    weight), so its graph flattens the dequantized features and keeps the classifier's weight as the float values
    of its int8 grid: the same numbers, multiplied in float."""
    dense = layer.dense
    bias = _np(dense.bias) if dense.has_bias else None
    values, w_scale = (_np(t) for t in layer.int8_weight()) if layer.quantize else (_np(dense.weight), None)
    onnx_scale = None
    if g.flavour == "lite":
        flat = Value(g.node("Flatten", [g.float(x)], hint + "_flatten", axis=1))
        w = g.const((values * w_scale.reshape(-1, 1) if w_scale is not None else values).astype(np.float32),
                    hint + "_w")
    else:
        flat = Value(g.node("Flatten", [x.name], hint + "_flatten", axis=1), x.scale, x.zero_point)
        if w_scale is not None:
            w, onnx_scale = g.weight(values, w_scale, hint, axis=0)
        else:
            w = g.const(values.astype(np.float32), hint + "_w")
    b = g.bias(bias, x if layer.int_bias else Value(x.name), w_scale, hint, onnx_scale is not None)
    return g.node("Gemm", [g.float(flat), w] + ([b] if b else []), hint, transB=1)


def build_model(net, image_size, batch_size=1, dynamic_batch=False, flavour="onnxruntime"):
    """The QDQ ONNX ``ModelProto`` of QAT network ``net`` (eval mode) for ``image_size`` inputs; ``flavour``
    ``lite`` writes the weights the way MindSpore Lite 2.0's converter reads them (see :meth:`Graph.weight`)."""
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)  # parameters are read through eager ops
    try:
        g = Graph(flavour)
        x = _conv(g, net.conv_stem, Value("input"), "stem")
        size = -(-image_size // 2)  # feature-map side after the stride-2 stem (GhostNetV2's upsampling needs it)
        for i, stage in enumerate(net.blocks):
            for j, block in enumerate(stage):
                hint = f"b{i}_{j}"
                if isinstance(block, QuantBottleneck):
                    x = _bottleneck(g, block, x, hint, size)
                else:
                    x = _conv(g, block, x, hint)
                size = _side_after(block, size)
        x = _pool(g, net.global_pool, x, "pool", net.conv_head.conv.in_channels, size)
        x = _conv(g, net.conv_head, x, "head")
        logits = _classifier(g, net.classifier, x, "classifier")
        g.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits"))
    finally:
        ms.set_context(mode=mode)
    batch = "batch" if dynamic_batch else batch_size
    return g.model("ghostnet_int8", [batch, 3, image_size, image_size], [batch, net.num_classes])

