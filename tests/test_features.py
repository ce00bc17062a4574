"""Backbone API: ``create_model(name, features_only=True, out_indices=...)`` for every family — shapes, strides,
channels, checkpoint loading, RepGhost deploy form, export to MINDIR/ONNX, and an SSD-style head that trains."""
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

from helpers import ROOT, images, randomize_state
from src.errors import ConfigError
from src.models import create_model, reparameterize

# name, kwargs, channels at strides 2, 4, 8, 16, 32 (the last stage at each stride; 32: the closing 1x1 conv)
FAMILIES = [
    ("ghostnet_050", {}, [8, 12, 20, 56, 480]),
    ("ghostnet_100_nose", {}, [16, 24, 40, 112, 960]),
    ("ghostnet_600m", {}, [28, 44, 72, 196, 1680]),
    ("repghostnet_050", {}, [8, 12, 20, 56, 480]),
    ("repghostnet_050", {"deploy": True}, [8, 12, 20, 56, 480]),
    ("ghostnetv2_100", {}, [16, 24, 40, 112, 960]),
    ("ghostnetv3_050", {}, [8, 12, 20, 56, 480]),
    ("ghostnetv3_050", {"deploy": True}, [8, 12, 20, 56, 480]),
]
SIZE = 64


@pytest.mark.parametrize("name,kwargs,channels", FAMILIES)
def test_feature_maps_at_strides_2_to_32(name, kwargs, channels):
    net = create_model(name, features_only=True, **kwargs)
    net.set_train(False)
    assert net.feature_info.channels() == channels
    assert net.feature_info.reduction() == [2, 4, 8, 16, 32]
    outs = net(images(2, SIZE))
    assert [tuple(o.shape) for o in outs] == [(2, c, SIZE // r, SIZE // r) for c, r in zip(channels, [2, 4, 8, 16, 32])]
    assert not [n for n, _ in net.parameters_and_names() if n.startswith(("conv_head", "classifier"))]


def test_last_map_is_forward_features_and_classifier_checkpoints_load(tmp_path):
    classifier = randomize_state(create_model("ghostnet_050", num_classes=10), seed=4)
    ckpt = str(tmp_path / "cls.ckpt")
    ms.save_checkpoint(classifier, ckpt)
    backbone = create_model("ghostnet_050", features_only=True, pretrained=ckpt)
    backbone.set_train(False)
    x = images(2, SIZE)
    np.testing.assert_array_equal(backbone(x)[-1].asnumpy(), classifier.forward_features(x).asnumpy())


def test_out_indices_select_maps_and_drop_later_stages():
    net = create_model("ghostnet_050", features_only=True, out_indices=(1, 3))
    assert net.feature_info.reduction() == [4, 16] and net.feature_info.module_name() == ["blocks.2", "blocks.6"]
    assert len(net.blocks) == 7  # blocks.7 ... blocks.9 are not needed for stride 16
    net.set_train(False)
    assert [o.shape for o in net(images(1, SIZE))] == [(1, 12, 16, 16), (1, 56, 4, 4)]


@pytest.mark.parametrize("kwargs,match", [
    ({"features_only": True, "out_indices": (5,)}, "out_indices must be increasing, distinct integers in 0..4"),
    ({"features_only": True, "out_indices": (3, 1)}, "got \\(3, 1\\)"),
    ({"features_only": True, "out_indices": ()}, "out_indices must be"),
    ({"out_indices": (1,)}, "out_indices needs features_only=True"),
])
def test_bad_out_indices_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        create_model("ghostnet_050", **kwargs)


def test_features_only_needs_a_ghostnet_family():
    with pytest.raises(ConfigError, match="features_only is not available for resnet56_cifar"):
        create_model("resnet56_cifar", features_only=True)


def test_repghost_backbone_reparameterizes(graph_mode):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = randomize_state(create_model("repghostnet_050", features_only=True), seed=5)
    x = images(2, SIZE)
    want = [o.asnumpy() for o in net(x)]
    reparameterize(net)
    assert not [n for n, _ in net.parameters_and_names() if ".fusion_bn." in n]
    ms.set_context(mode=ms.GRAPH_MODE)
    for got, ref in zip(net(x), want):
        assert np.abs(got.asnumpy() - ref).max() <= 1e-5


# ------------------------------------------------------------------ export

def test_mindir_round_trip(tmp_path):
    net = randomize_state(create_model("ghostnet_100_nose", features_only=True), seed=6)
    x = images(1, SIZE)
    want = [o.asnumpy() for o in net(x)]
    path = str(tmp_path / "backbone")
    ms.export(net, x, file_name=path, file_format="MINDIR")
    got = nn.GraphCell(ms.load(path + ".mindir"))(x)
    assert len(got) == 5
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.asnumpy(), w)


ONNX_SCRIPT = """
import sys, numpy as np, mindspore as ms
sys.path.insert(0, "tests")
from helpers import images, randomize_state
from src.models import create_model, reparameterize
ms.set_device("CPU")
name, path = sys.argv[1], sys.argv[2]
net = randomize_state(create_model(name, features_only=True), seed=7)
if name.startswith(("repghostnet", "ghostnetv3")):
    reparameterize(net)
x = images(1, 64)
np.savez(path + ".npz", *[o.asnumpy() for o in net(x)])
ms.onnx.export(net, x, file_name=path, input_names=["input"], output_names=[f"stride{r}" for r in net.feature_info.reduction()])
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", ["repghostnet_050", "ghostnetv2_100", "ghostnet_600m", "ghostnetv3_050"])
def test_onnx_round_trip(name, tmp_path):
    """One export per process: a second ONNX export in one MindSpore 2.10 process crashes (REFERENCE §2)."""
    ort = pytest.importorskip("onnxruntime")
    path = str(tmp_path / f"{name}.onnx")
    proc = subprocess.run([sys.executable, "-c", ONNX_SCRIPT, name, path], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    session = ort.InferenceSession(path)
    assert [o.name for o in session.get_outputs()] == ["stride2", "stride4", "stride8", "stride16", "stride32"]
    got = session.run(None, {"input": images(1, SIZE).asnumpy()})
    want = np.load(path + ".npz")
    for i, g in enumerate(got):
        ref = want[f"arr_{i}"]
        assert g.shape == ref.shape
        assert np.abs(g - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


# ------------------------------------------------------------------ an SSD-style detector on the backbone

NUM_CLASSES = 2  # + background
ANCHOR_SCALES = (1.5, 3.0)  # anchor side = scale * stride, one square anchor per scale and cell


def anchors(strides, size):
    """(A, 4) boxes (x1, y1, x2, y2) in the order the head emits them: level, row, column, scale."""
    boxes = []
    for stride in strides:
        n = size // stride
        for i in range(n):
            for j in range(n):
                cx, cy = (j + 0.5) * stride, (i + 0.5) * stride
                boxes += [[cx - s * stride / 2, cy - s * stride / 2, cx + s * stride / 2, cy + s * stride / 2]
                          for s in ANCHOR_SCALES]
    return np.array(boxes, np.float32)


def iou(boxes, box):
    lt, rb = np.maximum(boxes[:, :2], box[:2]), np.minimum(boxes[:, 2:], box[2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / (area(boxes) + area(box) - inter)


def scene(rng, size):
    """A noisy image with one rectangle whose colour channel is its class; returns (image, box, class)."""
    image = rng.normal(0.0, 0.3, (3, size, size)).astype(np.float32)
    w, h = rng.integers(14, 40, 2)
    x1, y1 = rng.integers(0, size - w), rng.integers(0, size - h)
    label = int(rng.integers(1, NUM_CLASSES + 1))
    image[label - 1, y1:y1 + h, x1:x1 + w] += 2.0
    return image, np.array([x1, y1, x1 + w, y1 + h], np.float32), label


def encode(anchor_boxes, box):
    """SSD box regression targets (variances 0.1 / 0.2)."""
    aw, ah = anchor_boxes[:, 2] - anchor_boxes[:, 0], anchor_boxes[:, 3] - anchor_boxes[:, 1]
    acx, acy = anchor_boxes[:, 0] + aw / 2, anchor_boxes[:, 1] + ah / 2
    w, h = box[2] - box[0], box[3] - box[1]
    return np.stack([(box[0] + w / 2 - acx) / aw / 0.1, (box[1] + h / 2 - acy) / ah / 0.1,
                     np.log(w / aw) / 0.2, np.log(h / ah) / 0.2], axis=1).astype(np.float32)


def targets(anchor_boxes, box, label):
    """Per-anchor class (0 = background) and box targets: IoU >= 0.5, and always the best anchor, are positive."""
    overlaps = iou(anchor_boxes, box)
    positive = overlaps >= 0.5
    positive[overlaps.argmax()] = True
    return np.where(positive, label, 0).astype(np.int32), encode(anchor_boxes, box)


class SSDHead(nn.Cell):
    """A 3x3 conv per feature map predicting class scores and box offsets for every anchor of every cell."""

    def __init__(self, channels):
        super().__init__()
        k = len(ANCHOR_SCALES)
        self.cls = nn.CellList([nn.Conv2d(c, k * (NUM_CLASSES + 1), 3, has_bias=True) for c in channels])
        self.box = nn.CellList([nn.Conv2d(c, k * 4, 3, has_bias=True) for c in channels])

    @staticmethod
    def flat(x, depth):
        n = x.shape[0]
        return ops.transpose(x, (0, 2, 3, 1)).reshape(n, -1, depth)

    def construct(self, features):
        cls = [self.flat(conv(f), NUM_CLASSES + 1) for conv, f in zip(self.cls, features)]
        box = [self.flat(conv(f), 4) for conv, f in zip(self.box, features)]
        return ops.concat(cls, axis=1), ops.concat(box, axis=1)


class MultiBoxLoss(nn.Cell):
    """Softmax cross-entropy over all anchors + smooth-L1 over the positive anchors (per positive)."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.smooth_l1 = nn.SmoothL1Loss(reduction="none")

    def construct(self, images, labels, boxes):
        scores, offsets = self.head(self.backbone(images))
        ce = ops.cross_entropy(scores.reshape(-1, NUM_CLASSES + 1), labels.reshape(-1))
        positive = ops.cast(labels > 0, ms.float32)
        reg = (self.smooth_l1(offsets, boxes).sum(-1) * positive).sum() / positive.sum()
        return ce + reg


@pytest.mark.slow
def test_ssd_head_on_the_backbone_trains():
    ms.set_seed(0)
    rng = np.random.default_rng(0)
    backbone = create_model("ghostnet_050", features_only=True, out_indices=(2, 3, 4))
    anchor_boxes = anchors(backbone.feature_info.reduction(), SIZE)
    batch = [scene(rng, SIZE) for _ in range(8)]
    labels, boxes = zip(*[targets(anchor_boxes, box, label) for _, box, label in batch])
    data = [ms.Tensor(np.stack(a)) for a in ([image for image, _, _ in batch], labels, boxes)]
    assert data[1].shape == (8, len(anchor_boxes)) == (8, 2 * (8 * 8 + 4 * 4 + 2 * 2))
    net = MultiBoxLoss(backbone, SSDHead(backbone.feature_info.channels()))
    step = nn.TrainOneStepCell(net, nn.Adam(net.trainable_params(), learning_rate=2e-3))
    step.set_train(True)
    losses = [float(step(*data).asnumpy()) for _ in range(5)]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.6 * losses[0], losses
