"""GhostNetV2 (Tang et al., NeurIPS 2022): Ghost modules with DFC (decoupled fully connected) attention."""
from mindspore import nn

from .ghostnet import GhostModule, GhostNet
from .layers import Sequential, batch_norm, conv2d
from .ops import Mul, NearestUpsample


class DFCAttention:
    """GhostNetV2's DFC attention, mixed into a ghost module (GhostNetV2, GhostNetV3): names as the reference's.

    ``short_conv`` = conv kxk (stride) + BN -> depthwise (1,5) + BN -> depthwise (5,1) + BN, applied to
    ``avg_pool(x, 2, 2)``; the sigmoid gate is nearest-upsampled to the module's output
    (:class:`~.ops.NearestUpsample`) and multiplied in.
    """

    def build_attention(self, inp, oup, kernel_size=1, stride=1):
        self.short_conv = Sequential([
            conv2d(inp, oup, kernel_size, stride), batch_norm(oup),
            conv2d(oup, oup, (1, 5), groups=oup), batch_norm(oup),
            conv2d(oup, oup, (5, 1), groups=oup), batch_norm(oup),
        ])
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)
        self.gate = nn.Sigmoid()
        self.upsample = NearestUpsample()
        self.mul = Mul()

    def attend(self, x, out):
        """``out`` (the module's output for input ``x``) gated by the attention of ``x``."""
        gate = self.gate(self.short_conv(self.pool(x)))
        return self.mul(out, self.upsample(gate, out))


class GhostModuleV2(DFCAttention, GhostModule):
    """Ghost module gated by DFC attention (:class:`DFCAttention`) computed at half resolution."""

    def __init__(self, inp, oup, kernel_size=1, ratio=2, dw_size=3, stride=1, relu=True, attention=True):
        super().__init__(inp, oup, kernel_size, ratio, dw_size, stride, relu)
        self.attention = attention
        if attention:
            self.build_attention(inp, oup, kernel_size, stride)

    def construct(self, x):
        out = self.ghost(x)
        if not self.attention:
            return out
        return self.attend(x, out)


class GhostNetV2(GhostNet):
    """GhostNetV2: GhostNet's table; every block from the third on (layer index > 1) has DFC attention in ghost1."""

    min_input_size = 64  # the DFC branch pools the last 2x2 feature map once more

    @staticmethod
    def make_module(inp, oup, relu, layer_idx):
        return GhostModuleV2(inp, oup, relu=relu, attention=layer_idx > 1)
