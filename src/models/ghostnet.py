"""GhostNet (Han et al., CVPR 2020): the Ghost module and the stage-table-driven network all families share."""
import math
from functools import partial

from mindspore import nn

from .layers import (ConvBnAct, GhostBottleneck, GlobalAvgPool, Sequential, SqueezeExcite, batch_norm, conv2d, conv_bn,
                     make_divisible, record_paths)
from .ops import ChannelSlice, Concat

# Rows are [kernel, mid (expansion) channels, out channels, se_ratio, stride]; one inner list per reference stage
# group, so that parameter paths (``blocks.<i>.<j>``) match the PyTorch reference.
GHOSTNET_CFGS = [
    [[3, 16, 16, 0, 1]],
    [[3, 48, 24, 0, 2]],
    [[3, 72, 24, 0, 1]],
    [[5, 72, 40, 0.25, 2]],
    [[5, 120, 40, 0.25, 1]],
    [[3, 240, 80, 0, 2]],
    [[3, 200, 80, 0, 1], [3, 184, 80, 0, 1], [3, 184, 80, 0, 1], [3, 480, 112, 0.25, 1], [3, 672, 112, 0.25, 1]],
    [[5, 672, 160, 0.25, 2]],
    [[5, 960, 160, 0, 1], [5, 960, 160, 0.25, 1], [5, 960, 160, 0, 1], [5, 960, 160, 0.25, 1]],
]
# The same table without squeeze-excite (the MindSpore zoo's ``ghostnet_nose_1x``).
GHOSTNET_NOSE_CFGS = [[[k, mid, c, 0, s] for k, mid, c, _, s in stage] for stage in GHOSTNET_CFGS]


class GhostModule(nn.Cell):
    """Ghost module: a primary conv makes ``ceil(oup / ratio)`` intrinsic maps, a cheap depthwise conv makes the
    ghosts; output = ``concat(primary, cheap)[:, :oup]`` (the slice only exists when it removes channels).

    ``relu`` switches the activation (``act_layer``) after both convs on; ``padding`` (``pad_mode``, ``padding``,
    ``dilation`` of ``nn.Conv2d``) replaces the primary conv's symmetric ``k // 2`` padding.
    """

    def __init__(self, inp, oup, kernel_size=1, ratio=2, dw_size=3, stride=1, relu=True, layer_idx=0,
                 act_layer=nn.ReLU, padding=None):
        super().__init__()
        if ratio < 2:
            raise ValueError(f"GhostModule ratio must be >= 2, got {ratio}")
        if dw_size % 2 != 1:
            raise ValueError(f"GhostModule dw_size must be odd, got {dw_size}")
        self.oup = oup
        init_chs = math.ceil(oup / ratio)
        new_chs = init_chs * (ratio - 1)
        self.needs_slice = init_chs + new_chs != oup
        act_layer = act_layer if relu else None
        self.primary_conv = conv_bn(inp, init_chs, kernel_size, stride, act_layer=act_layer, **(padding or {}))
        self.cheap_operation = conv_bn(init_chs, new_chs, dw_size, 1, groups=init_chs, act_layer=act_layer)
        self.concat = Concat(axis=1)
        if self.needs_slice:
            self.slice = ChannelSlice(oup)

    def ghost(self, x):
        """The module's output before any attention gate."""
        x1 = self.primary_conv(x)
        out = self.concat(x1, self.cheap_operation(x1))
        if self.needs_slice:
            out = self.slice(out)
        return out

    def construct(self, x):
        return self.ghost(x)


class GhostNet(nn.Cell):
    """GhostNet v1 and the common body of the no-SE variant, GhostNet-600M, RepGhostNet and GhostNetV2.

    stem conv3x3/2 -> stage table of bottlenecks -> 1x1 ConvBnAct -> global pool -> conv_head 1x1 (1280, bias) ->
    act -> flatten -> dropout -> classifier. Subclasses change the table, the ghost module, the widths and the
    activation. ``feature_info`` (timm's convention) lists the last stage at each stride 2, 4, 8, 16, 32: what
    ``create_model(..., features_only=True)`` returns.
    """

    cfgs = GHOSTNET_CFGS
    min_input_size = 32  # total stride
    head_mult = 1  # final 1x1 conv width = make_divisible(last mid * width * head_mult)
    num_features = 1280  # conv_head width (not width-scaled)
    act_layer = nn.ReLU
    se_layer = SqueezeExcite
    bottleneck = GhostBottleneck

    def __init__(self, width=1.0, num_classes=1000, dropout=0.2, in_channels=3, module_kw=None, **block_kw):
        super().__init__()
        module_kw = module_kw or {}
        self.width = width
        self.num_classes = num_classes
        stem_chs = make_divisible(16 * width, 4)
        self.conv_stem = conv2d(in_channels, stem_chs, 3, 2)
        self.bn1 = batch_norm(stem_chs)
        self.act1 = self.act_layer()
        prev_chs, reduction = stem_chs, 2
        stages, stage_info = [], []
        layer_idx = 0
        for cfg in self.cfgs:
            layers = []
            for k, mid, c, se_ratio, s in cfg:
                mid_chs, out_chs = self.block_widths(mid, c, prev_chs)
                layers.append(self.bottleneck(prev_chs, mid_chs, out_chs, k, s, se_ratio,
                                                module=partial(self.make_module, **module_kw), layer_idx=layer_idx,
                                                se_layer=self.se_layer, **block_kw))
                prev_chs, reduction = out_chs, reduction * s
                layer_idx += 1
            stages.append(Sequential(layers))
            stage_info.append((prev_chs, reduction))
        out_chs = self.head_chs()
        stages.append(Sequential([ConvBnAct(prev_chs, out_chs, 1, act_layer=self.act_layer)]))
        stage_info.append((out_chs, reduction))
        self.blocks = Sequential(stages)
        self.feature_info = [{"num_chs": chs, "reduction": red, "module": f"blocks.{i}"}
                             for i, (chs, red) in enumerate(stage_info)
                             if i + 1 == len(stage_info) or stage_info[i + 1][1] != red]
        self.global_pool = GlobalAvgPool()
        self.conv_head = conv2d(out_chs, self.num_features, 1, bias=True)
        self.act2 = self.act_layer()
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(p=dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Dense(self.num_features, num_classes, weight_init="Normal", bias_init="zeros")
        record_paths(self)

    def block_widths(self, mid, out, in_chs):
        """(mid, out) channels of a table row at this width; ``in_chs`` is the block's input width."""
        del in_chs
        return make_divisible(mid * self.width, 4), make_divisible(out * self.width, 4)

    def head_chs(self):
        """Width of the 1x1 ConvBnAct that closes the block stack."""
        return make_divisible(self.cfgs[-1][-1][1] * self.width * self.head_mult, 4)

    def make_module(self, inp, oup, relu, layer_idx):
        """Ghost module factory used by :class:`GhostBottleneck`; subclasses return their own module type.
        ``layer_idx`` is the block's index in the whole table (GhostNetV2 gates attention on it)."""
        del layer_idx
        return GhostModule(inp, oup, relu=relu, act_layer=self.act_layer)

    def forward_features(self, x):
        """Feature map before pooling: (N, C, H/32, W/32)."""
        return self.blocks(self.act1(self.bn1(self.conv_stem(x))))

    def forward_head(self, x):
        """Pooled 1280-d embedding -> logits."""
        x = self.flatten(self.act2(self.conv_head(self.global_pool(x))))
        return self.classifier(self.dropout(x))

    def construct(self, x):
        return self.forward_head(self.forward_features(x))


class GhostNetNoSE(GhostNet):
    """GhostNet without squeeze-excite (se_ratio 0 in every row), the MindSpore zoo's ``ghostnet_nose``."""

    cfgs = GHOSTNET_NOSE_CFGS
