"""GhostNet-600M: the MindSpore model zoo's scaled GhostNet (``research/cv/ghostnet/src/ghostnet600.py``).

GhostNet's body with the zoo's changes: hard-swish everywhere GhostNet has ReLU (stem, ghost1, the closing 1x1 conv,
the head), squeeze-excite in every block with reduction 10 rounded to 8, mid widths set by an expansion ratio of the
block's *input* width (rounded to 8) instead of a fixed column, 3x3 kernels in the last stage, width multiplier
1.75, a 1x1 conv to ``make_divisible(960 * 1.75, 8) = 1680`` and a 1400-wide head. The shortcut is GhostNet's
(depthwise k x k + BN + 1x1 + BN when shapes change); only the zoo's parameter names differ
(:func:`src.convert.mapping.zoo_to_project_names` maps them).
"""
from functools import partial

from .ghostnet import GhostNet
from .layers import HardSwish, SqueezeExcite, make_divisible

# Rows are [kernel, expansion ratio of the block input, out channels, se_ratio, stride]; one block per stage, as
# the zoo's flat ``blocks.<i>``.
GHOSTNET_600M_CFGS = [[row] for row in [
    [3, 1, 16, 0.1, 1], [3, 3, 24, 0.1, 2],
    [3, 3, 24, 0.1, 1], [5, 3, 40, 0.1, 2],
    [3, 3, 40, 0.1, 1], [3, 3, 40, 0.1, 1], [3, 6, 80, 0.1, 2],
    [3, 2.5, 80, 0.1, 1], [3, 2.5, 80, 0.1, 1], [3, 2.5, 80, 0.1, 1], [3, 6, 112, 0.1, 1], [3, 6, 112, 0.1, 1],
    [3, 6, 112, 0.1, 1], [5, 6, 160, 0.1, 2],
    [3, 6, 160, 0.1, 1], [3, 6, 160, 0.1, 1], [3, 6, 160, 0.1, 1], [3, 6, 160, 0.1, 1], [3, 6, 160, 0.1, 1],
]]


class GhostNet600M(GhostNet):
    """GhostNet-600M (11.9M parameters / ~0.6 GMACs at 224 px in the zoo's description); ``width`` 1.75."""

    cfgs = GHOSTNET_600M_CFGS
    num_features = 1400
    act_layer = HardSwish
    se_layer = partial(SqueezeExcite, divisor=8)

    def __init__(self, width=1.75, num_classes=1000, dropout=0.2, in_channels=3):
        super().__init__(width, num_classes, dropout, in_channels)

    def block_widths(self, mid, out, in_chs):
        return make_divisible(in_chs * mid, 8), make_divisible(out * self.width, 4)

    def head_chs(self):
        return make_divisible(960 * self.width, 8)
