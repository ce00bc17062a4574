"""GhostNetV2 (Tang et al., NeurIPS 2022): Ghost modules with DFC (decoupled fully connected) attention."""
from mindspore import nn, ops

from .ghostnet import GhostModule, GhostNet
from .layers import Sequential, batch_norm, conv2d


class GhostModuleV2(GhostModule):
    """Ghost module gated by DFC attention computed at half resolution.

    ``short_conv`` = conv kxk (stride) + BN -> depthwise (1,5) + BN -> depthwise (5,1) + BN, applied to
    ``avg_pool(x, 2, 2)``; the sigmoid gate is nearest-upsampled to the ghost output and multiplied in.
    """

    def __init__(self, inp, oup, kernel_size=1, ratio=2, dw_size=3, stride=1, relu=True, attention=True):
        super().__init__(inp, oup, kernel_size, ratio, dw_size, stride, relu)
        self.attention = attention
        if attention:
            self.short_conv = Sequential([
                conv2d(inp, oup, kernel_size, stride), batch_norm(oup),
                conv2d(oup, oup, (1, 5), groups=oup), batch_norm(oup),
                conv2d(oup, oup, (5, 1), groups=oup), batch_norm(oup),
            ])
            self.pool = ops.AvgPool(kernel_size=2, strides=2)
            self.gate = nn.Sigmoid()
            self.reshape = ops.Reshape()
            self.cat_h = ops.Concat(axis=2)
            self.cat_w = ops.Concat(axis=3)
            self.cat_h2 = ops.Concat(axis=3)
            self.cat_w2 = ops.Concat(axis=5)

    def upsample_nearest(self, g, out_h, out_w):
        """Nearest upsampling of the half-resolution gate back to (out_h, out_w), as PyTorch's ``interpolate``.

        With ``h = out_h // 2`` (floor pooling) PyTorch picks source row ``floor(i * h / out_h)``: every row twice,
        and the first once more when ``out_h`` is odd. Written with Reshape/Concat because MindSpore 2.10 cannot
        export its nearest-resize ops to ONNX.
        """
        _, c, h, w = g.shape
        g = self.reshape(g, (-1, c, h, 1, w, 1))
        g = self.cat_w2((g, g))
        g = self.cat_h2((g, g))
        g = self.reshape(g, (-1, c, 2 * h, 2 * w))
        if out_h % 2:
            g = self.cat_h((g[:, :, :1], g))
        if out_w % 2:
            g = self.cat_w((g[:, :, :, :1], g))
        return g

    def construct(self, x):
        out = self.ghost(x)
        if not self.attention:
            return out
        res = self.gate(self.short_conv(self.pool(x)))
        return out * self.upsample_nearest(res, out.shape[2], out.shape[3])


class GhostNetV2(GhostNet):
    """GhostNetV2: GhostNet's table; every block from the third on (layer index > 1) has DFC attention in ghost1."""

    min_input_size = 64  # the DFC branch pools the last 2x2 feature map once more

    @staticmethod
    def make_module(inp, oup, relu, layer_idx):
        return GhostModuleV2(inp, oup, relu=relu, attention=layer_idx > 1)
