"""Convolution and dense layers with BatchNorm folded in and int8 (fake-quantized) weights.

A deployed int8 convolution has one weight and one bias: BN must be folded into the conv *before* its weight is
quantized, or QAT trains a weight that the deployed model never uses. Training follows Krishnamoorthi (2018) /
PyTorch's ``ConvBn2d``: the folded weight ``w * gamma / sqrt(running_var + eps)`` is fake-quantized, the conv output
is divided by the same factor and normalised with the batch statistics (which are tracked as usual) until BN is
frozen; frozen or in evaluation, the output is exactly the deployed ``conv(x, q(w_folded)) + b_folded``.
"""
import numpy as np
from mindspore import nn, ops

from .fake_quant import INT32_BOUND, fake_quant_weight, quantize_weight, round_half_even
from .int8_graph import Value, to_numpy
from .layers import QuantLayer

LITE_FUSED = (None, "relu", "hard_sigmoid")  # activations whose conv ``lite_rounding`` computes as Lite does (a clamp)


def fold_bn(weight, bn, bias=None):
    """``(weight * s, beta + (bias - mean) * s, s)`` with ``s = gamma / sqrt(running_var + eps)`` per output
    channel (``bias`` None: no bias)."""
    factor = bn.gamma / ops.sqrt(bn.moving_variance + bn.eps)
    shift = -bn.moving_mean if bias is None else bias - bn.moving_mean
    return weight * factor.reshape((-1,) + (1,) * (weight.ndim - 1)), bn.beta + shift * factor, factor


def int32_bias(bias, input_quant, w_scale, offset=0.0):
    """``bias`` on the int32 grid of an int8 layer, ``s_in * s_w`` (what an int8 runtime adds to the int32
    accumulator): ``round((bias + offset) / (s_in * s_w)) * s_in * s_w - offset``, saturated to the int32 range
    (a channel with near-zero weights and a large bias exceeds it). ``offset`` is rounded with the bias when the
    runtime folds it in (the +3 of a hard-sigmoid). Straight-through gradient."""
    step = input_quant.qparams()[0] * w_scale
    snapped = ops.clip(round_half_even((bias + offset) / step), -INT32_BOUND, INT32_BOUND) * step - offset
    return bias + ops.stop_gradient(snapped - bias)


class QuantConv(QuantLayer):
    """A convolution or dense ``layer`` (+ its ``bn`` folded) (+ activation ``act``) with int8 weights, then the
    output quantizer (:class:`~.layers.QuantLayer`).

    ``in_quant`` quantizes the input (layers reading the network's image); ``input_quant`` is the quantizer that
    produced the input (the layer's own ``in_quant``, or the previous layer's output quantizer), whose scale sets
    the int32 grid of the bias; None for a float input. ``quantize=False`` keeps the weight in float (mixed
    precision). ``count_steps``: this layer runs once per forward pass (the first one), so it counts the training
    steps the quant delay is measured in.
    """

    def __init__(self, layer, bn=None, act=None, control=None, quantize=True, per_channel=True, in_quant=None,
                 out_quant=None, count_steps=False, input_quant=None, observe=True, round_in=None):
        super().__init__(act, out_quant, observe, round_in, in_quants=(input_quant,))
        self.layer = layer
        self.dense = isinstance(layer, nn.Dense)
        self.bn = bn
        self.has_bn = bn is not None
        self.has_bias = layer.has_bias
        self.control = control
        self.quantize = quantize
        self.per_channel = per_channel
        self.in_quant = in_quant
        self.has_in_quant = in_quant is not None
        self.input_quant = input_quant
        self.int_bias = input_quant is not None and quantize and (bn is not None or layer.has_bias)
        self.bias_offset = 3.0 if act == "hard_sigmoid" else 0.0
        self.count_steps = count_steps
        self.matmul = ops.MatMul(transpose_b=True)
        if bn is not None:
            self.bn_train = ops.BatchNorm(is_training=True, epsilon=bn.eps, momentum=0.0)

    def folded(self):
        """Float ``(weight, bias)`` of the deployed layer (BN folded with its running statistics; bias may be
        None)."""
        bias = self.layer.bias if self.has_bias else None
        if self.has_bn:
            weight, bias, _ = fold_bn(self.layer.weight, self.bn, bias)
            return weight, bias
        return self.layer.weight, bias

    def int8_weight(self):
        """``(int8 values as float, scale)`` of the folded weight (what an int8 runtime stores)."""
        return quantize_weight(self.folded()[0], self.per_channel)

    def _weight(self, weight):
        """(the weight the layer uses, its int8 scale): fake-quantized once quantization is on."""
        if not self.quantize:
            return weight, None
        wq, scale = fake_quant_weight(weight, self.per_channel)
        if not self.training:
            return wq, scale
        return self.control.select(wq, weight), scale

    def _bias(self, bias, w_scale):
        """The bias on the int32 grid once quantization is on (the float bias while it is off, or for a float
        weight: ``w_scale`` None)."""
        if not self.int_bias or w_scale is None:
            return bias
        snapped = int32_bias(bias, self.input_quant, w_scale, self.bias_offset)
        if not self.training:
            return snapped
        return self.control.select(snapped, bias)

    def _channels(self, v):
        """Per-output-channel vector ``v`` shaped to broadcast over the layer's output."""
        return v.reshape(1, -1) if self.dense else v.reshape(1, -1, 1, 1)

    def _apply(self, x, weight):
        return self.matmul(x, weight) if self.dense else self.layer.conv2d(x, weight)

    def _batch_norm(self, y, factor):
        """Training-mode BN of the unfolded output ``y / factor`` (+ the layer's own bias); updates the running statistics unless BN
        is frozen. The normalisation is MindSpore's fused kernel (momentum 0: it leaves the running statistics
        alone), 7x faster on CPU than the same arithmetic in separate ops; the statistics it uses are recomputed
        without gradient for the gated update."""
        bn = self.bn
        y = y / self._channels(factor)
        if self.has_bias:
            y = y + self._channels(self.layer.bias)
        out = self.bn_train(y, bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)[0]
        stats = ops.stop_gradient(y)
        axes = (0,) if self.dense else (0, 2, 3)
        mean = stats.mean(axis=axes)
        count = y.size // y.shape[1]
        var = ((stats * stats).mean(axis=axes) - mean * mean) * (count / max(count - 1, 1))  # unbiased
        live = (1.0 - self.control.bn_frozen) * bn.momentum
        out = ops.depend(out, ops.assign(bn.moving_mean, bn.moving_mean + live * (mean - bn.moving_mean)))
        new_var = bn.moving_variance + live * (var - bn.moving_variance)
        return ops.depend(out, ops.assign(bn.moving_variance, new_var))

    def construct(self, x):
        if self.training and self.count_steps:
            x = ops.depend(x, self.control.tick())
        if self.has_in_quant:
            x = self.in_quant(x)
        x = self.rounded(x)
        if self.has_bn:
            weight, bias, factor = fold_bn(self.layer.weight, self.bn, self.layer.bias if self.has_bias else None)
            weight, w_scale = self._weight(weight)
            y = self._apply(x, weight)
            folded = y + self._channels(self._bias(bias, w_scale))
            if self.training:
                frozen = self.control.bn_frozen
                y = frozen * folded + (1.0 - frozen) * self._batch_norm(y, factor)
            else:
                y = folded
        else:
            weight, w_scale = self._weight(self.layer.weight)
            y = self._apply(x, weight)
            if self.has_bias:
                y = y + self._channels(self._bias(self.layer.bias, w_scale))
        if self.lite_ready() and self.quantize and not self.dense and self.act in LITE_FUSED:
            return self.lite_output(y, w_scale)
        return self.finish(y)

    def lite_output(self, y, w_scale):
        """Lite's int8 conv: the accumulator (``y`` + a hard-sigmoid's 3, on the bias grid ``s_in * s_w``)
        requantized with gemmlowp's rounding; the .ms's weights carry the hard-sigmoid's 1/6 (see write_onnx)."""
        s_in = self.input_quant.qparams()[0]
        acc = round_half_even((y + self.bias_offset) / (s_in * w_scale))
        gate = 6.0 if self.act == "hard_sigmoid" else 1.0
        return self.requantized(acc, (s_in, w_scale / gate), relu=self.act == "relu")

    def write_onnx(self, g, inputs, node, hint):
        """``Conv`` (or ``Gemm``) on the dequantized input with int8 weights (per-channel DequantizeLinear) and an
        int32 bias at scale ``s_in * s_w``, followed by QuantizeLinear: onnxruntime fuses it to ``QLinearConv``
        (``QGemm``). A hard-sigmoid is folded into the weights and bias (``relu6(y + 3) / 6 == clip(y / 6 + 0.5,
        0, 1)``) so that only its clip remains, which the [0, 1] gate grid makes free."""
        x = inputs[0]
        if self.has_in_quant:
            x = g.quantize_with(x.name, self.in_quant, hint + "_in")
        weight, bias = (None if t is None else to_numpy(t) for t in self.folded())
        gate = 6.0 if self.act == "hard_sigmoid" else 1.0
        w_scale = onnx_scale = None
        if self.quantize:
            values, w_scale = (to_numpy(t) for t in self.int8_weight())
            if self.dense and g.flavour == "lite":  # Lite 2.0 cannot run an int8-weight matmul: the grid's values
                w = g.const((values * w_scale.reshape(-1, 1)).astype(np.float32), hint + "_w")
            else:
                w, onnx_scale = g.weight(values, w_scale / np.float32(gate), hint, axis=0)
        else:
            w = g.const((weight / gate).astype(np.float32), hint + "_w")
        b = g.bias(bias, x if self.int_bias else Value(x.name), w_scale, hint, onnx_scale is not None,
                   self.bias_offset, gate)
        if self.dense:  # Lite multiplies in float: it reads moved data (a flatten) without requantizing it
            source = x.float_source if g.flavour == "lite" and x.float_source else g.float(x)
            y = g.node("Gemm", [source, w] + ([b] if b else []), hint, transB=1)
        else:
            y = g.node("Conv", [g.float(x), w] + ([b] if b else []), hint, **self._conv_attrs(node))
        return self.write_output(g, y, hint, act="clip01" if self.act == "hard_sigmoid" else None)

    def _conv_attrs(self, node):
        """ONNX Conv attributes, with the padding of MindSpore's ``pad`` / ``same`` / ``valid`` modes."""
        conv = self.layer
        kh, kw = conv.kernel_size
        attrs = {"kernel_shape": [kh, kw], "strides": list(conv.stride)[-2:], "dilations": list(conv.dilation)[-2:],
                 "group": conv.group}
        if conv.pad_mode == "pad":
            p = conv.padding if isinstance(conv.padding, int) else None
            attrs["pads"] = [p, p, p, p] if p is not None else [conv.padding[0], conv.padding[2], conv.padding[1],
                                                                  conv.padding[3]]
        elif conv.pad_mode == "same":  # odd kernels at stride 1 (GhostNetV2's 1x5 / 5x1): symmetric k // 2
            attrs["pads"] = [kh // 2, kw // 2, kh // 2, kw // 2]
        return attrs
