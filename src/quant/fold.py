"""Convolution and dense layers with BatchNorm folded in and int8 (fake-quantized) weights.

A deployed int8 convolution has one weight and one bias: BN must be folded into the conv *before* its weight is
quantized, or QAT trains a weight that the deployed model never uses. Training follows Krishnamoorthi (2018) /
PyTorch's ``ConvBn2d``: the folded weight ``w * gamma / sqrt(running_var + eps)`` is fake-quantized, the conv output
is divided by the same factor and normalised with the batch statistics (which are tracked as usual) until BN is
frozen; frozen or in evaluation, the output is exactly the deployed ``conv(x, q(w_folded)) + b_folded``.
"""
from mindspore import nn, ops

from .fake_quant import INT32_BOUND, fake_quant_weight, quantize_weight, round_half_even

ACTIVATIONS = (None, "relu", "hard_sigmoid")


def fold_bn(weight, bn):
    """``(weight * s, beta - mean * s, s)`` with ``s = gamma / sqrt(running_var + eps)`` per output channel."""
    factor = bn.gamma / ops.sqrt(bn.moving_variance + bn.eps)
    return weight * factor.reshape(-1, 1, 1, 1), bn.beta - bn.moving_mean * factor, factor


def int32_bias(bias, input_quant, w_scale, offset=0.0):
    """``bias`` on the int32 grid of an int8 layer, ``s_in * s_w`` (what an int8 runtime adds to the int32
    accumulator): ``round((bias + offset) / (s_in * s_w)) * s_in * s_w - offset``, saturated to the int32 range
    (a channel with near-zero weights and a large bias exceeds it). ``offset`` is rounded with the bias when the
    runtime folds it in (the +3 of a hard-sigmoid). Straight-through gradient."""
    step = input_quant.qparams()[0] * w_scale
    snapped = ops.clip(round_half_even((bias + offset) / step), -INT32_BOUND, INT32_BOUND) * step - offset
    return bias + ops.stop_gradient(snapped - bias)


class QuantConv(nn.Cell):
    """``conv`` (+ its ``bn`` folded) (+ ReLU or hard-sigmoid) with int8 weights, then ``out_quant``.

    ``in_quant`` quantizes the input (only the network's first layer has one); ``input_quant`` is the quantizer
    that produced the input (the layer's own ``in_quant``, or the previous layer's output quantizer), whose scale
    sets the int32 grid of the bias; None for a float input. ``quantize=False`` keeps the weight in float (mixed
    precision). ``count_steps``: this layer runs once per forward pass (the stem), so it counts the training steps
    the quant delay is measured in.
    """

    def __init__(self, conv, bn=None, act=None, control=None, quantize=True, per_channel=True, in_quant=None,
                 out_quant=None, count_steps=False, input_quant=None):
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {ACTIVATIONS}, got {act!r}")
        if bn is not None and conv.has_bias:
            raise ValueError("a conv followed by BN has no bias in these networks")
        self.conv = conv
        self.bn = bn
        self.has_bn = bn is not None
        self.has_bias = conv.has_bias
        self.act = act
        self.control = control
        self.quantize = quantize
        self.per_channel = per_channel
        self.in_quant = in_quant
        self.out_quant = out_quant
        self.has_in_quant = in_quant is not None
        self.has_out_quant = out_quant is not None
        self.input_quant = input_quant
        self.int_bias = input_quant is not None and quantize and (bn is not None or conv.has_bias)
        self.bias_offset = 3.0 if act == "hard_sigmoid" else 0.0
        self.count_steps = count_steps
        self.relu = nn.ReLU()
        self.relu6 = nn.ReLU6()
        if bn is not None:
            self.bn_train = ops.BatchNorm(is_training=True, epsilon=bn.eps, momentum=0.0)

    def output_quant(self):
        return self.out_quant

    def folded(self):
        """Float ``(weight, bias)`` of the deployed conv (BN folded with its running statistics; bias may be None)."""
        if self.has_bn:
            weight, bias, _ = fold_bn(self.conv.weight, self.bn)
            return weight, bias
        return self.conv.weight, (self.conv.bias if self.has_bias else None)

    def int8_weight(self):
        """``(int8 values as float, scale)`` of the folded weight (what an int8 runtime stores)."""
        return quantize_weight(self.folded()[0], self.per_channel)

    def _weight(self, weight):
        """(the weight the conv uses, its int8 scale): fake-quantized once quantization is on."""
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

    def _batch_norm(self, y, factor):
        """Training-mode BN of the unfolded conv output ``y / factor``; updates the running statistics unless BN
        is frozen. The normalisation is MindSpore's fused kernel (momentum 0: it leaves the running statistics
        alone), 7x faster on CPU than the same arithmetic in separate ops; the statistics it uses are recomputed
        without gradient for the gated update."""
        bn = self.bn
        y = y / factor.reshape(1, -1, 1, 1)
        out = self.bn_train(y, bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)[0]
        stats = ops.stop_gradient(y)
        mean = stats.mean(axis=(0, 2, 3))
        count = y.shape[0] * y.shape[2] * y.shape[3]
        var = ((stats * stats).mean(axis=(0, 2, 3)) - mean * mean) * (count / max(count - 1, 1))  # unbiased
        live = (1.0 - self.control.bn_frozen) * bn.momentum
        out = ops.depend(out, ops.assign(bn.moving_mean, bn.moving_mean + live * (mean - bn.moving_mean)))
        return ops.depend(out, ops.assign(bn.moving_variance, bn.moving_variance + live * (var - bn.moving_variance)))

    def _activation(self, y):
        if self.act == "relu":
            return self.relu(y)
        if self.act == "hard_sigmoid":
            return self.relu6(y + 3.0) / 6.0
        return y

    def construct(self, x):
        if self.training and self.count_steps:
            x = ops.depend(x, self.control.tick())
        if self.has_in_quant:
            x = self.in_quant(x)
        if self.has_bn:
            weight, bias, factor = fold_bn(self.conv.weight, self.bn)
            weight, w_scale = self._weight(weight)
            y = self.conv.conv2d(x, weight)
            folded = y + self._bias(bias, w_scale).reshape(1, -1, 1, 1)
            if self.training:
                frozen = self.control.bn_frozen
                y = frozen * folded + (1.0 - frozen) * self._batch_norm(y, factor)
            else:
                y = folded
        else:
            weight, w_scale = self._weight(self.conv.weight)
            y = self.conv.conv2d(x, weight)
            if self.has_bias:
                y = y + self._bias(self.conv.bias, w_scale).reshape(1, -1, 1, 1)
        y = self._activation(y)
        if self.has_out_quant:
            y = self.out_quant(y)
        return y


class QuantDense(nn.Cell):
    """``nn.Dense`` with int8 weights per output row (or float with ``quantize=False``) and its bias on the int32
    grid of ``input_quant`` (the quantizer of its input); float logits out."""

    def __init__(self, dense, control, quantize=True, per_channel=True, input_quant=None):
        super().__init__()
        self.dense = dense
        self.control = control
        self.quantize = quantize
        self.per_channel = per_channel
        self.input_quant = input_quant
        self.int_bias = input_quant is not None and quantize and dense.has_bias
        self.matmul = ops.MatMul(transpose_b=True)

    def int8_weight(self):
        return quantize_weight(self.dense.weight, self.per_channel)

    def construct(self, x):
        weight, bias, w_scale = self.dense.weight, self.dense.bias, None
        if self.quantize:
            wq, w_scale = fake_quant_weight(weight, self.per_channel)
            snapped = int32_bias(bias, self.input_quant, w_scale) if self.int_bias else bias
            if self.training:
                wq, snapped = self.control.select(wq, weight), self.control.select(snapped, bias)
            weight, bias = wq, snapped
        y = self.matmul(x, weight)
        if self.dense.has_bias:
            y = y + bias
        return y
