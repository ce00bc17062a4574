"""The quantized forms of the layers networks are built from, each with its int8 ONNX nodes next to its
``construct``.

Every quantized layer (:class:`QuantLayer`) is a float op, an optional activation and the quantizer of its output,
exactly as an int8 runtime computes it: the op on dequantized inputs, the activation in float, one rounding onto
the output grid. ``write_onnx(g, inputs, node)`` writes the same computation as QDQ nodes that onnxruntime fuses
into its int8 kernels (``QLinearConv``, ``QLinearAdd``, ``QLinearMul``, ``QLinearGlobalAveragePool``,
``QLinearAveragePool``, ``QLinearSigmoid``). Data movement (concat, slice, flatten, pad, max-pool, subsampling,
upsampling) is exact on int8 data: it keeps its input's grid and is written on the uint8 tensors
(:data:`MOVES`). :mod:`.fold` adds convolutions and dense layers; :mod:`.qat` decides which layer gets which form.
"""
import mindspore as ms
import numpy as np
from mindspore import nn, ops

from ..models.layers import GlobalAvgPool
from ..models.ops import ChannelPad, ChannelSlice, Concat, NearestUpsample, Subsample
from . import QuantError
from .fake_quant import ACT_QMAX, ACT_QMIN, W_QMAX, GateQuant, requantize_gemmlowp, round_half_even
from .int8_graph import Value, to_numpy

ACTIVATIONS = (None, "relu", "relu6", "hard_sigmoid", "hard_swish", "sigmoid")
ADD_SHIFT = 20  # bits an int8 add shifts its inputs left by before rescaling them (gemmlowp, TFLite, Lite)
SIXTH = np.float32(1.0 / 6.0)  # hard-swish multiplies by it in the Cell and in ONNX: the same float32 rounding


def onnx_activation(g, y, act, hint):
    """The float activation ``act`` of float tensor ``y`` as ONNX nodes, with the same ops as the Cell."""
    if act == "relu":
        return g.node("Relu", [y], hint + "_relu")
    if act == "sigmoid":
        return g.node("Sigmoid", [y], hint + "_sigmoid")
    if act == "clip01":  # a hard-sigmoid whose +3 and /6 are folded into the layer before
        return g.node("Clip", [y, g.const(np.float32(0.0), "zero"), g.const(np.float32(1.0), "one")], hint + "_clip")
    if act in ("relu6", "hard_sigmoid", "hard_swish"):
        x = y if act == "relu6" else g.node("Add", [y, g.const(np.float32(3.0), "three")], hint + "_add3")
        r = g.node("Clip", [x, g.const(np.float32(0.0), "zero"), g.const(np.float32(6.0), "six")], hint + "_relu6")
        if act == "relu6":
            return r
        if act == "hard_sigmoid":
            return g.node("Div", [r, g.const(np.float32(6.0), "six")], hint + "_hsig")
        gate = g.node("Mul", [r, g.const(SIXTH, "sixth")], hint + "_hsig")
        return g.node("Mul", [y, gate], hint + "_hswish")
    return y


class QuantLayer(nn.Cell):
    """Base of the quantized layers: activation ``act`` (one of :data:`ACTIVATIONS`) and output quantizer
    ``out_quant`` (None: float output, the network's logits).

    A concat's inputs share the concat's grid, which the concat observes and rounds onto (``observe=False`` for
    the layers feeding it: their output stays float in the Cell, so the concat rounds each value once, with the
    range it has just observed); ``round_in``, that shared quantizer, rounds the first input of any other layer
    reading such an output (a Ghost module's cheap conv). The int8 graph is the same either way: the producer's
    QuantizeLinear.

    ``lite_rounding`` (off; :func:`.lite.use_lite_arithmetic` sets it): in evaluation, convs, products and pools
    round onto their output grid as MindSpore Lite 2.0 does (:func:`.fake_quant.requantize_gemmlowp`), which needs
    the grids of their inputs, ``in_quants`` (held in a tuple: not registered, so parameter names do not change).
    """

    def __init__(self, act=None, out_quant=None, observe=True, round_in=None, in_quants=()):
        super().__init__()
        self.in_quants = tuple(in_quants)
        self.inputs_on_grids = bool(self.in_quants) and all(q is not None for q in self.in_quants)
        self.lite_rounding = False
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {ACTIVATIONS}, got {act!r}")
        self.act = act
        self.out_quant = out_quant
        self.has_out_quant = out_quant is not None
        self.observe = observe
        self.round_in = round_in
        self.has_round_in = round_in is not None
        self.relu = nn.ReLU()
        self.relu6 = nn.ReLU6()
        self.sigmoid = nn.Sigmoid()

    def activation(self, y):
        if self.act == "relu":
            return self.relu(y)
        if self.act == "relu6":
            return self.relu6(y)
        if self.act == "hard_sigmoid":
            return self.relu6(y + 3.0) / 6.0
        if self.act == "hard_swish":
            return y * (self.relu6(y + 3.0) * SIXTH)
        if self.act == "sigmoid":
            return self.sigmoid(y)
        return y

    def lite_ready(self):
        """True when this layer computes Lite's rounding now: ``lite_rounding``, evaluation, a quantized output and
        the grids of its inputs."""
        return self.lite_rounding and not self.training and self.has_out_quant and self.inputs_on_grids

    def requantized(self, acc, acc_scales, relu=False):
        """Lite's int8 output: integer accumulator ``acc`` at the product of ``acc_scales`` onto the output grid with
        gemmlowp's rounding; ``relu`` clamps at the zero point (Lite's fused activation). As in Lite, the scales
        multiply in float32 and the product is divided by the output scale in float64 (with the product in float64,
        all outputs of a QAT GhostNetV3 conv whose accumulator was 1057 landed one step below Lite's)."""
        scale, zero_point = self.out_quant.qparams()
        acc_scale = acc_scales[0]
        for s in acc_scales[1:]:
            acc_scale = acc_scale * s
        multiplier = ops.cast(acc_scale, ms.float64) / ops.cast(scale, ms.float64)
        q = ops.cast(requantize_gemmlowp(ops.cast(acc, ms.float64), multiplier), ms.float32) + zero_point
        q = ops.clip(q, ACT_QMIN, ACT_QMAX)
        if relu:
            q = ops.maximum(q, zero_point)
        return (q - zero_point) * scale

    def on_grid(self, x, index):
        """``(x / s, s)``: input ``index`` as integers ``q - zero point`` of its grid, and that grid's scale."""
        scale = self.in_quants[index].qparams()[0]
        return round_half_even(x / scale), scale

    def rounded(self, x):
        """The first input on its (shared) grid when it comes float from a layer feeding a concat."""
        return self.round_in.quantize(x) if self.has_round_in else x

    def finish(self, y):
        """Activation, then the output quantizer (none for a layer feeding a concat: see the class)."""
        y = self.activation(y)
        if not self.has_out_quant or not self.observe:
            return y
        return self.out_quant(y)

    def write_output(self, g, y, hint, act=None):
        """Float tensor ``y`` through the activation (``act`` overrides it) onto the output grid (a float Value
        without ``out_quant``). A ReLU before a zero-point-0 grid and the clip of a hard-sigmoid before the
        [0, 1] gate grid change nothing (the grid saturates exactly there), so they are not written: onnxruntime
        then fuses the op with its QuantizeLinear."""
        act = self.act if act is None else act
        if not self.has_out_quant:
            return Value(onnx_activation(g, y, act, hint))
        scale, zero_point = (float(to_numpy(t)) for t in self.out_quant.qparams())
        saturates = (act == "relu" and zero_point == ACT_QMIN) or (
            act == "clip01" and isinstance(self.out_quant, GateQuant))
        if not saturates:
            y = onnx_activation(g, y, act, hint)
        return g.quantize(y, scale, zero_point, hint + "_out")


class QuantAdd(QuantLayer):
    """Residual add (+ activation), quantized: ``QLinearAdd``."""

    def __init__(self, op, act=None, out_quant=None, observe=True, round_in=None, in_quants=()):
        super().__init__(act, out_quant, observe, round_in, in_quants)
        self.op = op

    def construct(self, a, b):
        a = self.rounded(a)
        if self.lite_ready() and self.act in (None, "relu"):
            return self.lite_add(a, b)
        return self.finish(self.op(a, b))

    def lite_add(self, a, b):
        """Lite's int8 add (gemmlowp's, as TFLite's): each input shifted left by 20 bits and rescaled to twice the
        larger input scale, the sum requantized onto the output grid. The Cell's float32 sum lands a step off Lite's
        near half steps (0.04% of one QAT GhostNetV3 add's outputs)."""
        (qa, sa), (qb, sb) = self.on_grid(a, 0), self.on_grid(b, 1)
        twice = ops.cast(ops.maximum(sa, sb), ms.float64) * 2.0
        shifted = [requantize_gemmlowp(ops.cast(q, ms.float64) * 2.0 ** ADD_SHIFT, ops.cast(s, ms.float64) / twice)
                   for q, s in ((qa, sa), (qb, sb))]
        return self.requantized(shifted[0] + shifted[1], (ops.cast(twice / 2.0 ** ADD_SHIFT, ms.float32),),
                                relu=self.act == "relu")

    def write_onnx(self, g, inputs, node, hint):
        return self.write_output(g, g.node("Add", [g.float(v) for v in inputs], hint), hint)


class QuantMul(QuantAdd):
    """Product (gates), quantized: ``QLinearMul``."""

    def construct(self, a, b):
        a = self.rounded(a)
        if self.lite_ready() and self.act is None:
            (qa, sa), (qb, sb) = self.on_grid(a, 0), self.on_grid(b, 1)
            return self.requantized(qa * qb, (sa, sb))
        return self.finish(self.op(a, b))

    def write_onnx(self, g, inputs, node, hint):
        return self.write_output(g, g.node("Mul", [g.float(v) for v in inputs], hint), hint)


class QuantAct(QuantLayer):
    """A standalone activation (e.g. GhostNetV2's sigmoid gate: ``QLinearSigmoid``) onto its output grid."""

    def construct(self, x):
        return self.finish(self.rounded(x))

    def write_onnx(self, g, inputs, node, hint):
        if g.flavour == "lite" and self.act == "sigmoid" and self.has_out_quant:
            # float in the .ms: Lite 2.0's int8 sigmoid gives 0.5 for the top input code (255), whatever the grid
            # (measured: 0.1-0.3% of a random GhostNetV3's gates off by up to 59 steps); the gate grid is met at
            # the int8 consumer (the product), after the upsampling
            scale, zero_point = (float(to_numpy(t)) for t in self.out_quant.qparams())
            y = onnx_activation(g, g.float(inputs[0]), self.act, hint)
            return g.float_output(y, scale, zero_point, hint + "_out", float_first=True)
        return self.write_output(g, g.float(inputs[0]), hint)


class QuantNorm(QuantLayer):
    """A BatchNorm that follows no convolution (e.g. after a Ghost module's concat in a ghostified network)
    + activation, quantized. Training: batch statistics, as the float layer. Evaluation: ``x * scale + shift``
    per channel, the same two float operations the ONNX graph runs (so both round alike)."""

    def __init__(self, bn, act=None, out_quant=None, observe=True, round_in=None):
        super().__init__(act, out_quant, observe, round_in)
        self.bn = bn

    def affine(self):
        """Per-channel ``(scale, shift)`` of the BN with its running statistics."""
        bn = self.bn
        scale = bn.gamma / ops.sqrt(bn.moving_variance + bn.eps)
        return scale, bn.beta - bn.moving_mean * scale

    def _channels(self, v, ndim):
        return v.reshape((1, -1) + (1,) * (ndim - 2))

    def construct(self, x):
        x = self.rounded(x)
        if self.training:
            return self.finish(self.bn(x))
        scale, shift = self.affine()
        return self.finish(x * self._channels(scale, x.ndim) + self._channels(shift, x.ndim))

    def write_onnx(self, g, inputs, node, hint):
        shape = (1, -1) + (1,) * (len(node.shape) - 2)
        scale, shift = (to_numpy(t).astype(np.float32).reshape(shape) for t in self.affine())
        y = g.node("Mul", [g.float(inputs[0]), g.const(scale, hint + "_scale")], hint + "_mul")
        return self.write_output(g, g.node("Add", [y, g.const(shift, hint + "_shift")], hint), hint)


class QuantPool(QuantLayer):
    """Average pooling (global, or a k x k window), quantized: ``QLinearGlobalAveragePool`` /
    ``QLinearAveragePool``."""

    def __init__(self, pool, out_quant=None, observe=True, round_in=None, in_quants=()):
        super().__init__(None, out_quant, observe, round_in, in_quants)
        self.pool = pool
        self.is_global = isinstance(pool, GlobalAvgPool)

    def area(self, shape):
        """Pixels per output value: the window's, or the whole map's (global)."""
        return shape[2] * shape[3] if self.is_global else self.pool.kernel_size ** 2

    def construct(self, x):
        x = self.rounded(x)
        if self.lite_ready():  # the .ms's depthwise conv (see write_onnx): sums times W_QMAX at 1 / (W_QMAX k²)
            q, scale = self.on_grid(x, 0)
            area = self.area(x.shape)
            acc = round_half_even(self.pool(q) * area) * W_QMAX
            return self.requantized(acc, (scale, ms.Tensor(np.float32(1.0 / (W_QMAX * area)))))
        return self.finish(self.pool(x))

    def write_onnx(self, g, inputs, node, hint):
        """Lite flavour: a depthwise conv whose weights are all 1/k² (int8 W_QMAX at scale 1/(W_QMAX k²), so
        exactly the mean), because MindSpore Lite 2.0's int8 average pooling misses the output grid when it differs
        from the input grid or the map is large (measured on the same int8 inputs as onnxruntime: 40-88% of
        outputs off, by up to 254 steps; all at 28x28), while its int8 convs are within one step on < 2%."""
        x, (_, channels, height, width) = inputs[0], node.in_shapes[0]
        kernel = [height, width] if self.is_global else [self.pool.kernel_size] * 2
        stride = kernel if self.is_global else [self.pool.stride] * 2
        if g.flavour == "lite":
            values = np.full((channels, 1) + tuple(kernel), W_QMAX, np.float32)
            w, _ = g.weight(values, np.float32(1.0 / (W_QMAX * self.area(node.in_shapes[0]))), hint, axis=0)
            y = g.node("Conv", [g.float(x), w], hint, kernel_shape=kernel, strides=stride, group=channels)
        elif self.is_global:
            y = g.node("GlobalAveragePool", [g.float(x)], hint)
        else:
            y = g.node("AveragePool", [g.float(x)], hint, kernel_shape=kernel, strides=stride)
        out = self.write_output(g, y, hint)
        if self.is_global and len(node.shape) == 2:  # GlobalAvgPool(keep_dims=False)
            out = g.move("Flatten", [out], [], hint + "_flatten", axis=1)
        return out


class QuantConcat(QuantLayer):
    """Concat of inputs on this layer's grid (exact on int8 data); observes the grid's range and rounds onto it."""

    def __init__(self, op, out_quant=None, observe=True):
        super().__init__(None, out_quant, observe)
        self.op = op

    def construct(self, a, b):
        return self.finish(self.op(a, b))

    def write_onnx(self, g, inputs, node, hint):
        return g.move("Concat", inputs, [], hint, axis=self.op.axis)


def _slice(g, x, starts, ends, axes, hint, steps=None):
    extra = [g.ints(starts, "start"), g.ints(ends, "end"), g.ints(axes, "axis")] + (
        [g.ints(steps, "step")] if steps else [])
    return g.move("Slice", [x], extra, hint)


def _write_pad(g, cell, inputs, node, hint):
    x = inputs[0]
    pads = g.ints([0, cell.before, 0, 0, 0, cell.after, 0, 0], "pads")
    fill = g.const(np.float32(0.0) if g.flavour == "lite" else np.uint8(x.zero_point), "fill")  # real 0 is exact
    return g.move("Pad", [x], [pads, fill], hint)


def _write_upsample(g, cell, inputs, node, hint):
    """The same Reshape/Concat steps as :class:`~src.models.ops.NearestUpsample`."""
    (_, c, h, w), (out_h, out_w) = node.in_shapes[0], node.shape[2:]
    x = g.move("Reshape", [inputs[0]], [g.ints([-1, c, h, 1, w, 1], "shape")], hint + "_r1")
    x = g.move("Concat", [x, x], [], hint + "_dup_w", axis=5)
    x = g.move("Concat", [x, x], [], hint + "_dup_h", axis=3)
    x = g.move("Reshape", [x], [g.ints([-1, c, 2 * h, 2 * w], "shape")], hint + "_r2")
    for axis, odd in ((2, out_h % 2), (3, out_w % 2)):
        if odd:
            x = g.move("Concat", [_slice(g, x, [0], [1], [axis], hint + "_first"), x], [], hint + "_odd", axis=axis)
    return x


# Data movement: (float cell type, writer(g, cell, inputs, node, hint)). Each keeps its input's grid.
MOVES = (
    (ChannelSlice, lambda g, cell, inputs, node, hint: _slice(g, inputs[0], [0], [cell.stop], [1], hint)),
    (Subsample, lambda g, cell, inputs, node, hint: _slice(
        g, inputs[0], [0, 0], [2 ** 31 - 1] * 2, [2, 3], hint, steps=[cell.stride] * 2)),
    (ChannelPad, _write_pad),
    (NearestUpsample, _write_upsample),
    (nn.Flatten, lambda g, cell, inputs, node, hint: g.move("Flatten", inputs, [], hint, axis=1)),
    (nn.MaxPool2d, lambda g, cell, inputs, node, hint: g.move(
        "MaxPool", inputs, [], hint, kernel_shape=[cell.kernel_size] * 2, strides=[cell.stride] * 2)),
)
MOVE_TYPES = tuple(t for t, _ in MOVES)
CONCATS = (Concat,)


def write_move(g, cell, inputs, node, hint):
    """The nodes of data-movement ``cell`` (one of :data:`MOVE_TYPES`) on quantized ``inputs``."""
    writer = next(w for t, w in MOVES if isinstance(cell, t))
    return writer(g, cell, inputs, node, hint)


def is_move(cell):
    """True for a data-movement layer: exact on int8 data, keeps its input's grid."""
    return isinstance(cell, MOVE_TYPES)


def check_move(cell, path):
    """Refuse a data-movement layer whose settings the int8 writer does not cover."""
    if isinstance(cell, nn.MaxPool2d) and (cell.pad_mode != "VALID" or not isinstance(cell.kernel_size, int)):
        raise QuantError(f"{path}: int8 max-pooling supports square kernels with pad_mode valid")
