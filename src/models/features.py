"""Backbone API: multi-scale feature maps of any GhostNet-family network, described as in timm.

``create_model(name, features_only=True, out_indices=(1, 2, 3, 4))`` returns a :class:`FeatureExtractor`: calling
it gives a tuple of (N, C_i, H / s_i, W / s_i) maps; ``feature_info.channels()`` and ``feature_info.reduction()``
give C_i and s_i, as timm's ``FeatureInfo`` does. This is what SSD/FPN-style detectors and segmentation heads
consume.
"""
from mindspore import nn, ops

from ..errors import ConfigError
from .layers import Sequential, record_paths


class FeatureInfo:
    """Channels, strides and module names of the selected feature maps (timm's ``FeatureInfo`` interface)."""

    def __init__(self, entries):
        self.info = [dict(e) for e in entries]

    def channels(self):
        return [e["num_chs"] for e in self.info]

    def reduction(self):
        return [e["reduction"] for e in self.info]

    def module_name(self):
        return [e["module"] for e in self.info]

    def __len__(self):
        return len(self.info)

    def __getitem__(self, index):
        return self.info[index]


class FeatureExtractor(nn.Cell):
    """The stem and block stages of a GhostNet-family ``net`` returning the maps chosen by ``out_indices``.

    ``out_indices`` index ``net.feature_info`` (the last stage at each stride: 0 -> 2, 1 -> 4, 2 -> 8, 3 -> 16,
    4 -> 32). Stages after the last selected one and the classification head are dropped. Parameter names stay those
    of the classifier (``conv_stem``, ``bn1``, ``blocks.<i>...``), so classification checkpoints load and RepGhost
    re-parameterization works unchanged.
    """

    def __init__(self, net, out_indices=None):
        super().__init__()
        levels = len(net.feature_info)
        out_indices = tuple(range(levels)) if out_indices is None else tuple(out_indices)
        if not out_indices or any(not isinstance(i, int) or not 0 <= i < levels for i in out_indices) \
                or list(out_indices) != sorted(set(out_indices)):
            raise ConfigError(f"out_indices must be increasing, distinct integers in 0..{levels - 1} "
                              f"(strides {[e['reduction'] for e in net.feature_info]}), got {out_indices}")
        self.out_indices = out_indices
        self.feature_info = FeatureInfo(net.feature_info[i] for i in out_indices)
        stage_ids = [int(name.split(".")[1]) for name in self.feature_info.module_name()]
        self.min_input_size = net.min_input_size
        self.conv_stem, self.bn1, self.act1 = net.conv_stem, net.bn1, net.act1
        self.blocks = Sequential(net.blocks.cell_list[:stage_ids[-1] + 1])
        self.take = tuple(i in stage_ids for i in range(stage_ids[-1] + 1))
        # Each returned map goes through an Identity: MindSpore 2.10's ONNX exporter renames a tensor that is both a
        # graph output and the input of later nodes to the output name but not in those nodes ("Node input '16' is
        # not a graph input ..."); a distinct output tensor avoids it.
        self.output = ops.Identity()
        record_paths(self)

    def construct(self, x):
        x = self.act1(self.bn1(self.conv_stem(x)))
        features = ()
        for i, stage in enumerate(self.blocks.cell_list):
            x = stage(x)
            if self.take[i]:
                features = features + (self.output(x),)
        return features
