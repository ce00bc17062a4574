"""The int8 arithmetic as plain MindSpore ops, the activation observers and the shared QAT state.

MindSpore 2.10's ``FakeQuant*`` primitives are not implemented on CPU, so quantization is written with ordinary ops
and a straight-through estimator (``x + stop_gradient(q(x) - x)``); it runs unchanged on CPU, GPU and Ascend.

Scheme: weights int8 symmetric on [-63, 63] per output channel (or per tensor); activations 8-bit asymmetric per
tensor on the uint8 grid [0, 255] (a range always containing 0, so 0 is exact and a ReLU output has zero point 0).
Weights use 7 bits of magnitude because onnxruntime's int8 kernels on x86 CPUs without VNNI (AVX2: most AMD EPYC
before Zen 4, Intel before Ice Lake) add pairs of uint8 x int8 products in int16 (``vpmaddubsw``) and saturate
above 32767: with weights up to 127 an AVX2 machine computed another function (a QAT checkpoint's int8 ONNX agreed
with its Cell on 92% of 64 images, max logit difference 9.4 of 13.1, under ``qemu-x86_64 -cpu Haswell``; 100% on
this VNNI machine). 2 x 255 x 63 < 32767, so the file computes the same on every x86 CPU, VNNI or not, and on
ARM (onnxruntime's own remedy, ``reduce_range``, is the same 7-bit weight grid).
Rounding is half to even (``ops.round``), as onnxruntime's QuantizeLinear and int8 kernels round. Exact ties
are not rare: calibrated ranges make scales ratios of grid values, so products and sums land on k + 0.5 (measured:
0.16% of one SE product's elements); rounding them up (``floor(x + 0.5)``) made the Cell and onnxruntime differ
there. ``ops.round``'s ONNX export problem does not matter: the int8 ONNX graph is written by :mod:`.onnx_qdq`.
MindSpore Lite 2.0 requantizes another way, gemmlowp's (:func:`requantize_gemmlowp`); the layers compute that
instead once their ``lite_rounding`` is set (the Cell a ``.ms`` is verified against).
"""
import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops

ACT_QMIN, ACT_QMAX = 0, 255  # activations: uint8 grid
W_QMAX = 63  # weights: int8 symmetric [-63, 63], see the module docstring
MIN_SCALE = 1e-8  # a constant (all-zero) tensor still gets a valid scale
GATE_SCALE = 1.0 / ACT_QMAX  # fixed grid of gates in [0, 1] (hard-sigmoid, sigmoid outputs)
INT32_BOUND = 2.0 ** 31 - 128  # largest float32 that fits int32: an int8 layer's bias saturates there


def round_half_even(x):
    """Nearest integer, ties to even (``ops.round``; NumPy's ``np.rint``)."""
    return ops.round(x)


def _round_q31(ab):
    """gemmlowp's SaturatingRoundingDoublingHighMul after the product ``ab`` (exact in float64): ``ab / 2^31``
    rounded, halves up for ``ab >= 0`` and towards zero below."""
    # one constant per operation: MindSpore makes a Python float a float32 tensor, and 2^30 - 1 is not one
    return ops.select(ab >= 0, ops.floor((ab + 2.0 ** 30) / 2.0 ** 31), -ops.floor((2.0 ** 30 - ab - 1.0) / 2.0 ** 31))


def _divide_by_pot(x, shift):
    """gemmlowp's RoundingDivideByPOT: integer ``x / 2^shift``, ties away from zero."""
    base = ops.floor(x / 2.0 ** shift)
    threshold = ops.floor((2.0 ** shift - 1.0) / 2.0) + ops.cast(x < 0, ms.float64)
    return base + ops.cast(x - base * 2.0 ** shift > threshold, ms.float64)


def requantize_gemmlowp(acc, multiplier):
    """``acc * multiplier`` rounded to an integer as MindSpore Lite 2.0's int8 kernels do it (gemmlowp's, as TFLite's):
    the multiplier is a Q31 integer ``m`` times ``2^-shift``, the product is rounded once to ``2^-shift`` of a step
    and again to the step, so an output lands one step from the exact rounding when it lies within ``2^-(shift+1)``
    of a half step (on 13% of one GhostNetV3 depthwise conv's outputs, multiplier 0.16). Hand-written: no library
    has it. ``acc``: the integer accumulator as float64; ``multiplier``: positive float64 scalar (from the float32
    scales as Lite computes it: :meth:`.layers.QuantLayer.requantized`). Exact while ``|acc| < 2^22``; equal to an
    int64 gemmlowp (``tests/test_quant.py``), whose outputs matched Lite 2.0's convs, products and pools bit for bit."""
    exponent = ops.floor(ops.log2(multiplier)) + 1.0
    exponent = exponent + ops.cast(multiplier * ops.pow(2.0, -exponent) >= 1.0, ms.float64)  # log2 rounding
    exponent = exponent - ops.cast(multiplier * ops.pow(2.0, -exponent) < 0.5, ms.float64)
    m = ops.floor(multiplier * ops.pow(2.0, 31.0 - exponent) + 0.5)  # gemmlowp's QuantizeMultiplier
    overflow = ops.cast(m >= 2.0 ** 31, ms.float64)
    m, exponent = m - overflow * 2.0 ** 30, exponent + overflow
    left, right = ops.maximum(exponent, 0.0), ops.maximum(-exponent, 0.0)
    return _divide_by_pot(_round_q31(acc * ops.pow(2.0, left) * m), right)


def act_qparams(lo, hi):
    """Scale and zero point of the uint8 grid covering ``[min(lo, 0), max(hi, 0)]``."""
    lo = ops.minimum(lo, 0.0)
    hi = ops.maximum(hi, 0.0)
    scale = ops.maximum((hi - lo) / (ACT_QMAX - ACT_QMIN), MIN_SCALE)
    zero_point = ops.clip(round_half_even(-lo / scale) + ACT_QMIN, ACT_QMIN, ACT_QMAX)
    return scale, zero_point


def fake_quant(x, scale, zero_point, qmin, qmax):
    """Quantize to the integer grid and back: ``(clip(round(x / scale) + zp, qmin, qmax) - zp) * scale``."""
    q = ops.clip(round_half_even(x / scale) + zero_point, qmin, qmax)
    return (q - zero_point) * scale


def straight_through(x, xq, lo, hi):
    """``xq`` forward; gradient 1 where ``x`` rounds onto the grid ``[lo, hi]`` (so within half a step of it,
    as PyTorch's fake quant), 0 where it is clipped."""
    half = (hi - lo) / (2 * (ACT_QMAX - ACT_QMIN))
    inside = ops.clip(x, lo - half, hi + half)
    return inside + ops.stop_gradient(xq - inside)


def weight_scale(w, per_channel=True):
    """Symmetric int8 scale of a weight: ``max |w| / W_QMAX`` per output channel (axis 0) or over the tensor."""
    absw = ops.abs(w)
    if per_channel:
        absw = absw.reshape(w.shape[0], -1).max(axis=1)
    else:
        absw = absw.max()
    return ops.maximum(absw / W_QMAX, MIN_SCALE)


def quantize_weight(w, per_channel=True):
    """``(int8 values as float, scale)`` of a weight; ``values * scale`` (broadcast on axis 0) is its fake quant."""
    scale = weight_scale(w, per_channel)
    s = scale.reshape((-1,) + (1,) * (w.ndim - 1)) if per_channel else scale
    return ops.clip(round_half_even(w / s), -W_QMAX, W_QMAX), scale


def fake_quant_weight(w, per_channel=True):
    """(weight on its int8 grid, its scale); straight-through gradient (the symmetric range covers every value, so
    nothing is clipped)."""
    values, scale = quantize_weight(w, per_channel)
    s = scale.reshape((-1,) + (1,) * (w.ndim - 1)) if per_channel else scale
    return w + ops.stop_gradient(values * s - w), scale


class QuantControl(nn.Cell):
    """The state every quantizer of one network shares: training steps seen, observers on/off, BN frozen or not,
    and the scheme (so a checkpoint says how its network was quantized).

    Flags are Parameters, not Python attributes, so switching them (epoch hooks) needs no graph recompile.
    """

    def __init__(self, scheme_vector, quant_delay=0):
        super().__init__()
        self.step = Parameter(Tensor(0.0, ms.float32), name="step", requires_grad=False)
        self.observing = Parameter(Tensor(1.0, ms.float32), name="observing", requires_grad=False)
        self.bn_frozen = Parameter(Tensor(0.0, ms.float32), name="bn_frozen", requires_grad=False)
        self.scheme = Parameter(Tensor(np.asarray(scheme_vector, np.float32)), name="scheme", requires_grad=False)
        self.quant_delay = float(quant_delay)
        self.delayed = quant_delay > 0  # without a delay, training graphs have no switch at all

    def quantizing(self):
        """1.0 once ``quant_delay`` training steps have passed, else 0.0 (fake quant off, observers on)."""
        return ops.cast(self.step >= self.quant_delay, ms.float32)

    def select(self, quantized, original):
        """In training: ``quantized`` once the quant delay has passed, ``original`` before."""
        if not self.delayed:
            return quantized
        on = self.quantizing()
        return on * quantized + (1.0 - on) * original

    def tick(self):
        """Count one training step."""
        return ops.assign_add(self.step, Tensor(1.0, ms.float32))


class ActQuant(nn.Cell):
    """Per-tensor asymmetric 8-bit fake quantization of an activation with an EMA min/max observer.

    Training: the observed range moves towards each batch's min/max by ``1 - decay`` (while the control's
    ``observing`` flag is on), then the batch is fake-quantized with it (after the quant delay; straight-through
    gradient, zero outside the range). Evaluation: fixed range. Calibration (:mod:`.calibrate`, PyNative): the
    activations pass unquantized (``bypass``) and a forward hook records their ranges (:meth:`record`).
    """

    def __init__(self, control, decay=0.99):
        super().__init__()
        self.control = control
        self.decay = float(decay)
        self.fq_min = Parameter(Tensor(0.0, ms.float32), name="fq_min", requires_grad=False)
        self.fq_max = Parameter(Tensor(0.0, ms.float32), name="fq_max", requires_grad=False)
        self.bypass = False  # pass activations through unquantized (calibration and float reference runs)
        self.calib_method = "minmax"
        self.calib_batches = 0

    def qparams(self):
        """(scale, zero point) of the current range."""
        return act_qparams(self.fq_min, self.fq_max)

    def quantize(self, x):
        """Fake-quantize ``x`` with the current range (no observation)."""
        if self.bypass:
            return x
        scale, zero_point = self.qparams()
        xq = fake_quant(x, scale, zero_point, ACT_QMIN, ACT_QMAX)
        if not self.training:
            return xq
        lo = (ACT_QMIN - zero_point) * scale
        hi = (ACT_QMAX - zero_point) * scale
        return self.control.select(straight_through(x, xq, lo, hi), x)

    def observe(self, x):
        """Move the range towards the batch's min/max (EMA), gated by the control's ``observing`` flag."""
        x = ops.stop_gradient(x)
        gate = self.control.observing * (1.0 - self.decay)
        new_min = self.fq_min + gate * (x.min() - self.fq_min)
        new_max = self.fq_max + gate * (x.max() - self.fq_max)
        return ops.assign(self.fq_min, new_min), ops.assign(self.fq_max, new_max)

    def record(self, x):
        """One calibration batch (eager, called by :func:`.calibrate.calibrate`): global min/max (``minmax``) or
        the mean of per-batch extremes (``mean``) over the batches recorded since ``calib_batches`` was reset."""
        lo, hi = float(x.min().asnumpy()), float(x.max().asnumpy())
        n = self.calib_batches
        old_lo, old_hi = float(self.fq_min.asnumpy()), float(self.fq_max.asnumpy())
        if n and self.calib_method == "minmax":
            lo, hi = min(lo, old_lo), max(hi, old_hi)
        elif n:
            lo, hi = old_lo + (lo - old_lo) / (n + 1), old_hi + (hi - old_hi) / (n + 1)
        self.fq_min.set_data(Tensor(lo, ms.float32))
        self.fq_max.set_data(Tensor(hi, ms.float32))
        self.calib_batches = n + 1

    def construct(self, x):
        if self.bypass:
            return x
        if self.training:
            lo, hi = self.observe(x)
            x = ops.depend(x, lo)
            x = ops.depend(x, hi)
        return self.quantize(x)


class GateQuant(nn.Cell):
    """Fake quantization of a gate in [0, 1] on the fixed grid ``k / 255`` (zero point 0): hard-sigmoid and
    sigmoid outputs need no observer, and onnxruntime folds the clip of a hard-sigmoid into this grid."""

    def __init__(self, control):
        super().__init__()
        self.control = control
        self.bypass = False  # pass through unquantized (float reference runs)
        self.scale = Tensor(GATE_SCALE, ms.float32)  # float32, exactly the scale an int8 runtime gets
        self.zero_point = Tensor(0.0, ms.float32)

    def qparams(self):
        return self.scale, self.zero_point

    def construct(self, x):
        if self.bypass:
            return x
        xq = fake_quant(x, self.scale, self.zero_point, ACT_QMIN, ACT_QMAX)
        if not self.training:
            return xq
        return self.control.select(straight_through(x, xq, 0.0, 1.0), x)
