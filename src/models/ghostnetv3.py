"""GhostNetV3 (Liu et al., 2024, arXiv 2404.11202): GhostNetV2's body with re-parameterizable Ghost modules.

In training, every conv of a Ghost module is the sum of three parallel conv+BN branches, plus a 1x1 conv+BN
"scale" branch and a BN "skip" (identity) branch for the cheap depthwise op; a strided bottleneck's depthwise conv
has three kxk branches and a 1x1 scale branch. Deployed, each is one biased conv (:mod:`.reparam`). Names follow
timm 1.0.31's ``GhostModuleV3`` / ``GhostBottleneckV3``, so its state dicts in either form map mechanically.
"""
import math

from mindspore import nn

from .ghostnet import GhostNet
from .ghostnetv2 import DFCAttention
from .layers import ConvBnAct, GhostBottleneck, Sequential, batch_norm, conv2d
from .ops import Concat
from .reparam import bn_arrays, fuse_branches, fused_conv

NUM_BRANCHES = 3  # parallel kxk conv branches per re-parameterizable conv (timm's ``num_conv_branches``)


def _branches(in_chs, out_chs, kernel_size, stride=1, groups=1):
    """``NUM_BRANCHES`` parallel conv+BN branches (no activation), named ``0``, ``1``, ``2``."""
    return Sequential([ConvBnAct(in_chs, out_chs, kernel_size, stride, act_layer=None, groups=groups)
                       for _ in range(NUM_BRANCHES)])


def _sum(branches, x):
    out = branches[0](x)
    for i in range(1, NUM_BRANCHES):
        out = out + branches[i](x)
    return out


def _branch_arrays(branch):
    """``(kernel, BN arrays)`` of one :class:`ConvBnAct` branch."""
    return branch.conv.weight.asnumpy(), bn_arrays(branch.bn1)


class GhostModuleV3(DFCAttention, nn.Cell):
    """Ghost module with re-parameterizable primary and cheap convs, and DFC attention when ``attention``.

    Train form: ``x1 = act(sum of 3 primary conv+BN)``, ``x2 = act(scale(x1) + skip(x1) + sum of 3 cheap
    depthwise conv+BN)``, output ``concat(x1, x2)`` (gated by the attention). Deploy form
    (:meth:`switch_to_deploy`): ``primary_conv`` and ``cheap_operation`` are each ``Sequential(biased conv, act)``.
    """

    def __init__(self, inp, oup, kernel_size=1, dw_size=3, stride=1, relu=True, attention=False, deploy=False):
        super().__init__()
        self.kernel_size, self.dw_size, self.stride = kernel_size, dw_size, stride
        self.init_chs = math.ceil(oup / 2)
        self.act_layer = nn.ReLU if relu else nn.Identity
        self.deploy = deploy
        if deploy:
            self.primary_conv = Sequential([conv2d(inp, self.init_chs, kernel_size, stride, bias=True),
                                            self.act_layer()])
            self.cheap_operation = Sequential([conv2d(self.init_chs, self.init_chs, dw_size, 1, self.init_chs,
                                                      bias=True), self.act_layer()])
        else:
            self.primary_rpr_conv = _branches(inp, self.init_chs, kernel_size, stride)
            self.primary_activation = self.act_layer()
            self.cheap_rpr_skip = batch_norm(self.init_chs)
            self.cheap_rpr_conv = _branches(self.init_chs, self.init_chs, dw_size, groups=self.init_chs)
            self.cheap_rpr_scale = ConvBnAct(self.init_chs, self.init_chs, 1, act_layer=None, groups=self.init_chs)
            self.cheap_activation = self.act_layer()
        self.concat = Concat(axis=1)
        self.attention = attention
        if attention:
            self.build_attention(inp, oup, kernel_size, stride)

    def ghost(self, x):
        """``(primary output, cheap output)`` in either form."""
        if self.deploy:
            x1 = self.primary_conv(x)
            return x1, self.cheap_operation(x1)
        x1 = self.primary_activation(_sum(self.primary_rpr_conv, x))
        x2 = self.cheap_rpr_scale(x1) + self.cheap_rpr_skip(x1) + _sum(self.cheap_rpr_conv, x1)
        return x1, self.cheap_activation(x2)

    def construct(self, x):
        x1, x2 = self.ghost(x)
        out = self.concat(x1, x2)
        if not self.attention:
            return out
        return self.attend(x, out)

    def switch_to_deploy(self):
        """Fold the primary and cheap branches into one biased conv each (idempotent)."""
        if self.deploy:
            return
        primary = self.primary_rpr_conv[0].conv
        kernel, bias = fuse_branches([_branch_arrays(b) for b in self.primary_rpr_conv], self.kernel_size)
        self.primary_conv = Sequential([fused_conv(primary.in_channels, self.init_chs, self.kernel_size,
                                                   self.stride, 1, kernel, bias), self.act_layer()])
        kernel, bias = fuse_branches([_branch_arrays(b) for b in [*self.cheap_rpr_conv, self.cheap_rpr_scale]],
                                     self.dw_size, identity_bn=bn_arrays(self.cheap_rpr_skip))
        self.cheap_operation = Sequential([fused_conv(self.init_chs, self.init_chs, self.dw_size, 1, self.init_chs,
                                                      kernel, bias), self.act_layer()])
        for name in ("primary_rpr_conv", "primary_activation", "cheap_rpr_skip", "cheap_rpr_conv", "cheap_rpr_scale",
                     "cheap_activation"):
            delattr(self, name)
        self.deploy = True


class GhostBottleneckV3(GhostBottleneck):
    """GhostNet's bottleneck whose strided depthwise conv is re-parameterizable: train form ``dw_rpr_conv``
    (3 kxk conv+BN) + ``dw_rpr_scale`` (1x1 conv+BN, same stride); deploy form one biased ``conv_dw``."""

    def make_depthwise(self, chs, kernel_size, stride, deploy):
        self.dw_kernel_size, self.deploy = kernel_size, deploy
        if deploy:
            self.conv_dw = conv2d(chs, chs, kernel_size, stride, chs, bias=True)
        else:
            self.dw_rpr_conv = _branches(chs, chs, kernel_size, stride, groups=chs)
            self.dw_rpr_scale = ConvBnAct(chs, chs, 1, stride, act_layer=None, groups=chs)

    def depthwise(self, x):
        if self.deploy:
            return self.conv_dw(x)
        return self.dw_rpr_scale(x) + _sum(self.dw_rpr_conv, x)

    def switch_to_deploy(self):
        """Fold the depthwise branches into one biased conv (idempotent; nothing to do without a strided conv)."""
        if not self.has_dw or self.deploy:
            return
        conv = self.dw_rpr_scale.conv
        kernel, bias = fuse_branches([_branch_arrays(b) for b in [*self.dw_rpr_conv, self.dw_rpr_scale]],
                                     self.dw_kernel_size)
        self.conv_dw = fused_conv(conv.in_channels, conv.in_channels, self.dw_kernel_size, self.stride,
                                  conv.in_channels, kernel, bias)
        del self.dw_rpr_conv, self.dw_rpr_scale
        self.deploy = True


class GhostNetV3(GhostNet):
    """GhostNetV3: GhostNet's table and head; re-parameterizable modules and depthwise convs, DFC attention in the
    first ghost module of every block from the third on (layer index > 1), as GhostNetV2."""

    bottleneck = GhostBottleneckV3
    min_input_size = 64  # the DFC branch pools the last 2x2 feature map once more

    def __init__(self, width=1.0, num_classes=1000, dropout=0.2, in_channels=3, deploy=False):
        super().__init__(width, num_classes, dropout, in_channels, module_kw={"deploy": deploy}, deploy=deploy)

    @staticmethod
    def make_module(inp, oup, relu, layer_idx, deploy=False):
        return GhostModuleV3(inp, oup, relu=relu, attention=layer_idx > 1, deploy=deploy)
