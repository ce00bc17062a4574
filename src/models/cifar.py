"""VGG-16 and ResNet-56 for 32x32 inputs and their Ghost versions (GhostNet paper, Tables 3-4 on CIFAR-10).

VGG-16 is the CIFAR variant of Li et al. ("Pruning Filters for Efficient ConvNets", 15.0M weights / 313M FLOPs):
13 conv3x3+BN+ReLU with max-pooling, average pooling, Linear(512, 512)+BN+ReLU+Linear(512, classes); names mirror
its PyTorch code (``feature.<i>``, ``classifier.<i>``). ResNet-56 is He et al.'s CIFAR ResNet (0.85M / 125M): a
16-channel 3x3 stem, three stages of nine basic blocks (16, 32, 64 channels) with parameter-free "option A"
shortcuts (strided subsampling + zero channel padding), global average pooling, Linear(64, classes); names mirror
the common PyTorch port (``conv1``, ``layer<i>.<j>.conv1``, ``linear``). The Ghost versions are these networks
after :func:`~src.models.ghostify.ghostify` (every conv but the first; ratio s, cheap kernel d).
"""
from mindspore import nn

from .ghostify import ghostify
from .layers import GlobalAvgPool, Sequential, batch_norm, conv2d, record_paths
from .ops import Add, ChannelPad, Subsample

VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]


def pool_and_dropout(dropout):
    """Global average pool to (N, C) and dropout (0 disables): what both CIFAR nets put before their classifier."""
    return GlobalAvgPool(keep_dims=False), nn.Dropout(p=dropout) if dropout > 0 else nn.Identity()


class VGG(nn.Cell):
    """VGG for 32x32 inputs built from ``cfg`` (channels, ``"M"`` = 2x2 max-pool); 2x2 average pool at 32 px is
    written as a global average pool (the same there, and it keeps 512 features at other sizes)."""

    min_input_size = 16

    def __init__(self, cfg=VGG16_CFG, num_classes=10, dropout=0.0, in_channels=3):
        super().__init__()
        self.num_classes = num_classes
        layers, prev = [], in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [conv2d(prev, v, 3), batch_norm(v), nn.ReLU()]
                prev = v
        self.feature = Sequential(layers)
        self.pool, self.dropout = pool_and_dropout(dropout)
        self.classifier = Sequential([nn.Dense(prev, 512), nn.BatchNorm1d(512, momentum=0.9), nn.ReLU(),
                                      nn.Dense(512, num_classes)])
        record_paths(self)

    def construct(self, x):
        return self.classifier(self.dropout(self.pool(self.feature(x))))


class ShortcutA(nn.Cell):
    """He et al.'s option A shortcut: subsample by ``stride`` and zero-pad the new channels on both sides."""

    def __init__(self, in_chs, out_chs, stride):
        super().__init__()
        self.subsample = Subsample(stride)
        pad = (out_chs - in_chs) // 2
        self.pad = ChannelPad(pad, out_chs - in_chs - pad)

    def construct(self, x):
        return self.pad(self.subsample(x))


class BasicBlock(nn.Cell):
    """conv3x3(stride)+BN+ReLU -> conv3x3+BN -> + shortcut -> ReLU."""

    def __init__(self, in_chs, out_chs, stride=1):
        super().__init__()
        self.conv1 = conv2d(in_chs, out_chs, 3, stride)
        self.bn1 = batch_norm(out_chs)
        self.conv2 = conv2d(out_chs, out_chs, 3)
        self.bn2 = batch_norm(out_chs)
        self.relu = nn.ReLU()
        self.identity = stride == 1 and in_chs == out_chs
        if not self.identity:
            self.shortcut = ShortcutA(in_chs, out_chs, stride)
        self.add = Add()

    def construct(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(self.add(out, x if self.identity else self.shortcut(x)))


class ResNetCIFAR(nn.Cell):
    """ResNet-(6n+2) for 32x32 inputs: ``depth`` 20, 32, 44, 56, 110 (n = 3, 5, 7, 9, 18 blocks per stage)."""

    min_input_size = 4

    def __init__(self, depth=56, num_classes=10, dropout=0.0, in_channels=3):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2, got {depth}")
        self.num_classes = num_classes
        blocks = (depth - 2) // 6
        self.conv1 = conv2d(in_channels, 16, 3)
        self.bn1 = batch_norm(16)
        self.relu = nn.ReLU()
        prev = 16
        for i, (chs, stride) in enumerate(((16, 1), (32, 2), (64, 2)), start=1):
            setattr(self, f"layer{i}", Sequential([BasicBlock(prev if j == 0 else chs, chs, stride if j == 0 else 1)
                                                   for j in range(blocks)]))
            prev = chs
        self.pool, self.dropout = pool_and_dropout(dropout)
        self.linear = nn.Dense(prev, num_classes)
        record_paths(self)

    def construct(self, x):
        x = self.layer3(self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x))))))
        return self.linear(self.dropout(self.pool(x)))


def vgg16_cifar(num_classes=10, **kwargs):
    """VGG-16 for 32x32 inputs (14,987,722 parameters with 10 classes)."""
    return VGG(VGG16_CFG, num_classes, **kwargs)


def resnet56_cifar(num_classes=10, **kwargs):
    """ResNet-56 for 32x32 inputs (853,018 parameters with 10 classes)."""
    return ResNetCIFAR(56, num_classes, **kwargs)


def _ghost(net, ratio, dw_size):
    net.ghostify_report = ghostify(net, ratio, dw_size)
    return net


def ghost_vgg16_cifar(num_classes=10, ratio=2, dw_size=3, **kwargs):
    """Ghost-VGG-16: VGG-16 with every conv but the first as a Ghost module (ratio s, cheap kernel d)."""
    return _ghost(vgg16_cifar(num_classes, **kwargs), ratio, dw_size)


def ghost_resnet56_cifar(num_classes=10, ratio=2, dw_size=3, **kwargs):
    """Ghost-ResNet-56: ResNet-56 with every conv but the first as a Ghost module (ratio s, cheap kernel d)."""
    return _ghost(resnet56_cifar(num_classes, **kwargs), ratio, dw_size)


# the registry checks a requested input size on the builder, before building anything
for _builder, _cls in ((vgg16_cifar, VGG), (ghost_vgg16_cifar, VGG), (resnet56_cifar, ResNetCIFAR),
                       (ghost_resnet56_cifar, ResNetCIFAR)):
    _builder.min_input_size = _cls.min_input_size
