"""Parameter-free operations as Cells: residual add, product, channel concat/slice/pad, subsampling, upsampling.

Written as Cells rather than inline in a ``construct`` so that every computation of a network is a layer: the
dataflow tracer (:mod:`.trace`) sees them, and the quantizer (``src/quant``) gives each its int8 form without
knowing the network (PyTorch's ``FloatFunctional`` plays the same role). Only primitive-instance ops are used
(``mindspore.rewrite``, used by AMP O1, rejects the functional forms).
"""
from mindspore import nn, ops


class Add(nn.Cell):
    """``a + b`` (residual connections)."""

    def construct(self, a, b):
        return a + b


class Mul(nn.Cell):
    """``a * b`` (attention and squeeze-excite gates)."""

    def construct(self, a, b):
        return a * b


class Concat(nn.Cell):
    """``concat((a, b), axis)``."""

    def __init__(self, axis=1):
        super().__init__()
        self.axis = axis
        self.op = ops.Concat(axis=axis)

    def construct(self, a, b):
        return self.op((a, b))


class ChannelSlice(nn.Cell):
    """The first ``stop`` channels (NCHW)."""

    def __init__(self, stop):
        super().__init__()
        self.stop = stop

    def construct(self, x):
        return x[:, :self.stop]


class ChannelPad(nn.Cell):
    """Zero channels added before (``before``) and after (``after``) the existing ones (NCHW)."""

    def __init__(self, before, after):
        super().__init__()
        self.before, self.after = before, after
        self.pad = ops.Pad(((0, 0), (before, after), (0, 0), (0, 0)))

    def construct(self, x):
        return self.pad(x)


class Subsample(nn.Cell):
    """``x[:, :, ::stride, ::stride]``, written as a 1x1 average pool with that stride (the same values): the
    gradient of MindSpore 2.10's strided slice fails on CPU in PyNative mode ("StridedSliceGrad ... memory out of
    bounds") and took ~50 s per ResNet-20 step in GRAPH mode."""

    def __init__(self, stride):
        super().__init__()
        self.stride = stride
        self.pool = ops.AvgPool(kernel_size=1, strides=stride)

    def construct(self, x):
        return self.pool(x)


class NearestUpsample(nn.Cell):
    """Nearest upsampling of a half-resolution map ``x`` to the height and width of ``like``, as PyTorch's
    ``interpolate(mode="nearest")`` does it.

    With ``h = out_h // 2`` (floor pooling) PyTorch picks source row ``floor(i * h / out_h)``: every row twice, and
    the first once more when ``out_h`` is odd. Written with Reshape/Concat because MindSpore 2.10 cannot export its
    nearest-resize ops to ONNX.
    """

    def __init__(self):
        super().__init__()
        self.reshape = ops.Reshape()
        self.cat_h = ops.Concat(axis=2)
        self.cat_w = ops.Concat(axis=3)
        self.cat_h2 = ops.Concat(axis=3)
        self.cat_w2 = ops.Concat(axis=5)

    def construct(self, x, like):
        _, c, h, w = x.shape
        out_h, out_w = like.shape[2], like.shape[3]
        x = self.reshape(x, (-1, c, h, 1, w, 1))
        x = self.cat_w2((x, x))
        x = self.cat_h2((x, x))
        x = self.reshape(x, (-1, c, 2 * h, 2 * w))
        if out_h % 2:
            x = self.cat_h((x[:, :, :1], x))
        if out_w % 2:
            x = self.cat_w((x[:, :, :, :1], x))
        return x
