"""The int8 ONNX graph being written: QDQ nodes, int8 weight and int32 bias initializers, readable names.

Every quantized layer writes its own nodes through this API (``write_onnx`` next to its ``construct`` in
:mod:`.fold` and :mod:`.layers`); :mod:`.onnx_qdq` walks the network. Two flavours: ``onnxruntime`` (int8 weight
initializers, data movement on uint8 tensors) and ``lite`` (what MindSpore Lite 2.0's ONNX parser reads).
"""
import numpy as np

from src.deploy.onnx_graph import helper, numpy_helper, onnx

from .fake_quant import INT32_BOUND, W_QMAX

OPSET = 13  # per-channel DequantizeLinear (axis) needs >= 13
IR_VERSION = 7  # the IR of opset 13: readable by older runtimes and converters
FLAVOURS = ("onnxruntime", "lite")  # int8 weight initializers, or float weights for MindSpore Lite 2.0's parser


def to_numpy(x):
    return x.asnumpy() if hasattr(x, "asnumpy") else np.asarray(x)


class Value:
    """A tensor of the graph: ``name`` float, or uint8 ``name`` on the grid ``(scale, zero_point)``. ``make``
    writes the tensor when its name is first needed (Lite's requantization after data movement, see
    :meth:`Graph.move`); ``float_source`` is then the float tensor with the same values."""

    def __init__(self, name, scale=None, zero_point=None, make=None):
        self._name, self._make = name, make
        self.scale, self.zero_point = scale, zero_point
        self.dequantized = None
        self.float_source = None
        self.float_first = False  # Lite: data movement reads ``float_source`` (see :meth:`Graph.float_output`)

    @property
    def name(self):
        if self._name is None:
            self._name = self._make()
        return self._name

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
        return self.quantize(name, float(to_numpy(scale)), int(to_numpy(zero_point)), hint)

    def move(self, op, values, extra, hint, **attrs):
        """A data-movement op (Concat, Slice, Reshape) on quantized ``values`` sharing one grid, with constant
        ``extra`` inputs; exact on int8 data. onnxruntime: the op runs on the uint8 tensors. Lite: its converter
        only keeps an op int8 when the op's output carries quantization parameters, so the op reads the float
        tensors and is followed by a QuantizeLinear onto the same grid."""
        first = values[0]
        if self.flavour == "lite":  # the QuantizeLinear is written only for a consumer that reads the int8 tensor
            sources = [v.float_source if v.float_first else self.float(v) for v in values]
            value = self.float_output(self.node(op, sources + extra, hint, **attrs), first.scale, first.zero_point,
                                      hint)
            value.float_first = all(v.float_first for v in values)
            return value
        return Value(self.node(op, [v.name for v in values] + extra, hint, **attrs), first.scale, first.zero_point)

    def float_output(self, name, scale, zero_point, hint, float_first=False):
        """Lite: float tensor ``name`` on the grid ``(scale, zero_point)``, its QuantizeLinear written when a consumer
        first reads the int8 tensor. ``float_first``: data movement reads it in float too, so the op making it and
        the movement after it stay float in the ``.ms`` up to that consumer (Lite's converter makes an op int8 only
        when its output has quantization parameters)."""
        scale, zero_point = np.float32(scale), np.uint8(zero_point)
        value = Value(None, scale, zero_point, make=lambda: self.quantize(name, scale, zero_point, hint).name)
        value.float_source, value.float_first = name, float_first
        return value

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
        if self.flavour == "lite":  # a per-tensor scale is kept as it is: the Cell's requantization uses it
            weight = values * (scale.reshape((-1,) + (1,) * (values.ndim - 1)) if np.ndim(scale) else scale)
            tensor_scale = np.float32(scale if np.ndim(scale) == 0 else np.abs(weight).max() / W_QMAX) or np.float32(1)
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
