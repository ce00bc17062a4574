"""The rest of the Ghost family: GhostNet-600M and the no-SE GhostNet against their zoo definitions, VGG-16 /
ResNet-56 and their Ghost versions against the paper's counts, and ``ghostify`` on networks it has never seen."""
import math

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from helpers import images, randomize_state
from src.errors import ConfigError
from src.models import GhostModule, create_model, ghostify, model_family
from src.models.layers import HardSwish
from src.models.trace import cell_macs
from src.tools.profile import totals


def trainable(net):
    return sum(int(p.size) for p in net.trainable_params())


def weights(net):
    """Conv/dense kernels and biases, no BatchNorm: what the paper's "weights" column counts."""
    return sum(int(p.size) for p in net.trainable_params() if not p.name.endswith((".gamma", ".beta")))


def cheap(macs):
    """MACs of the Ghost modules' depthwise cheap operations in a ``cell_macs`` result."""
    return sum(m for path, m in macs.items() if ".cheap_operation" in path)


# ------------------------------------------------------------------ GhostNet-600M

# Counted layer by layer from the zoo's research/cv/ghostnet/src/ghostnet600.py (mindspore-ai/models @331b74f):
# mid = _make_divisible(block input * exp_ratio, 8), out = _make_divisible(c * 1.75, 4), SE width
# _make_divisible(mid // 10, 8), closing 1x1 conv 1680, head 1400. Published: 11.9M parameters, 591M FLOPs.
ZOO_600M_MID = [32, 88, 136, 136, 216, 216, 432, 352, 352, 352, 840, 1176, 1176, 1176] + [1680] * 5
ZOO_600M_OUT = [28, 44, 44, 72, 72, 72, 140, 140, 140, 140, 196, 196, 196, 280] + [280] * 5
ZOO_600M_SE = [8, 8, 16, 16, 24, 24, 40, 32, 32, 32, 88, 120, 120, 120] + [168] * 5


@pytest.fixture(scope="module")
def net_600m():
    return create_model("ghostnet_600m")


def test_ghostnet_600m_widths_are_the_zoo_widths(net_600m):
    blocks = [net_600m.blocks[i][0] for i in range(19)]
    assert [b.ghost1.oup for b in blocks] == ZOO_600M_MID
    assert [b.ghost2.oup for b in blocks] == ZOO_600M_OUT
    assert [b.se.conv_reduce.out_channels for b in blocks] == ZOO_600M_SE
    assert net_600m.conv_stem.out_channels == 28
    assert net_600m.blocks[19][0].conv.out_channels == 1680 and net_600m.conv_head.out_channels == 1400
    # hard-swish everywhere GhostNet has ReLU; ReLU only inside the squeeze-excites
    acts = {name: type(cell) for name, cell in net_600m.cells_and_names() if isinstance(cell, (nn.ReLU, HardSwish))}
    assert {name for name, kind in acts.items() if kind is nn.ReLU} == {f"blocks.{i}.0.se.act1" for i in range(19)}
    assert acts["act1"] is acts["act2"] is acts["blocks.19.0.act1"] is acts["blocks.3.0.ghost1.cheap_operation.2"] \
        is HardSwish


def test_ghostnet_600m_counts_match_the_zoo_definition(net_600m):
    params, macs_224 = totals(net_600m, 224)
    assert params == 11_939_796  # published 11.9M
    assert macs_224 == 491_660_372
    # The published 591M is at the zoo Hub card's 240 px: 587.46M conv/dense MACs + 3.44M SE channel scalings.
    macs_240 = sum(cell_macs(net_600m, 240).values())
    assert macs_240 == 587_458_634
    assert macs_240 == pytest.approx(591e6, rel=0.01)


# ------------------------------------------------------------------ GhostNet without SE

@pytest.mark.parametrize("width", ["050", "100", "130"])
def test_nose_is_ghostnet_minus_its_squeeze_excites(width):
    full, nose = create_model(f"ghostnet_{width}"), create_model(f"ghostnet_{width}_nose")
    full_names = [n for n, _ in full.parameters_and_names()]
    assert [n for n, _ in nose.parameters_and_names()] == [n for n in full_names if ".se." not in n]
    se_params = sum(int(p.size) for p in full.trainable_params() if ".se." in p.name)
    assert trainable(nose) == trainable(full) - se_params
    full_macs = cell_macs(full, 64)
    assert cell_macs(nose, 64) == {k: v for k, v in full_macs.items() if ".se." not in k}
    assert model_family(f"ghostnet_{width}_nose") == "ghostnet_nose"


def test_nose_100_parameter_count():
    assert trainable(create_model("ghostnet_100_nose")) == 3_678_640


# ------------------------------------------------------------------ VGG-16 / ResNet-56 and their Ghost versions

# REFERENCE §1 (GhostNet paper, CIFAR-10): weights, FLOPs.
PAPER = {"vgg16_cifar": (15.0e6, 313e6), "ghost_vgg16_cifar": (7.7e6, 158e6),
         "resnet56_cifar": (0.85e6, 125e6), "ghost_resnet56_cifar": (0.43e6, 63e6)}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_cifar_counts_match_the_paper(name):
    """Within 2% of the paper's weights (no BN) and FLOPs. The paper's Ghost FLOPs leave out the depthwise cheap
    operations (Ghost-ResNet-56 with them: 65.3M, +3.6%); the test measures both."""
    net = create_model(name, num_classes=10)
    paper_weights, paper_flops = PAPER[name]
    macs = cell_macs(net, 32)
    assert weights(net) == pytest.approx(paper_weights, rel=0.02)
    assert sum(macs.values()) - cheap(macs) == pytest.approx(paper_flops, rel=0.02)
    if not name.startswith("ghost"):
        return
    assert sum(macs.values()) == pytest.approx(paper_flops, rel=0.04)
    # cheap MACs = sum over modules of H*W * (ghost channels) * d*d; s = 2 makes out/2 ghost channels
    sizes = {"ghost_vgg16_cifar": [(32, 64)] + [(16, 128)] * 2 + [(8, 256)] * 3 + [(4, 512)] * 3 + [(2, 512)] * 3,
             "ghost_resnet56_cifar": [(32, 16)] * 18 + [(16, 32)] * 18 + [(8, 64)] * 18}[name]
    assert cheap(macs) == sum(hw * hw * (chs // 2) * 9 for hw, chs in sizes)


def test_plain_cifar_counts_exactly():
    """Hand-counted: VGG-16 13 convs (14,710,464) + BN (8,448) + 512-512-10 classifier with BN1d (268,810);
    ResNet-56 55 convs (848,304) + BN (4,064) + Linear(64, 10) (650), option-A shortcuts have no parameters."""
    vgg, resnet = create_model("vgg16_cifar", num_classes=10), create_model("resnet56_cifar", num_classes=10)
    assert totals(vgg, 32) == (14_987_722, 313_463_808)
    assert totals(resnet, 32) == (853_018, 125_485_696)


@pytest.mark.parametrize("ratio,dw_size", [(3, 3), (4, 1), (2, 5)])
def test_ghost_cifar_ratio_and_kernel(ratio, dw_size):
    net = create_model("ghost_resnet56_cifar", num_classes=10, ratio=ratio, dw_size=dw_size)
    module = net.layer2[1].conv1
    assert isinstance(module, GhostModule)
    init = math.ceil(32 / ratio)
    assert module.primary_conv[0].weight.shape == (init, 32, 3, 3)
    assert module.cheap_operation[0].weight.shape == (init * (ratio - 1), 1, dw_size, dw_size)
    assert len(net.ghostify_report.replaced) == 54
    net.set_train(False)
    assert net(images(2, 32)).shape == (2, 10)


# ------------------------------------------------------------------ ghostify on an unseen network

class PlainCNN(nn.Cell):
    """A network ghostify was not written for: every padding mode, a biased stride-2 conv, a depthwise conv,
    a dilated conv and channel counts that do not divide by the ratio."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, pad_mode="pad", padding=1)
        self.body = nn.SequentialCell([
            nn.Conv2d(16, 24, 3, stride=2, pad_mode="same", has_bias=True), nn.ReLU(),
            nn.Conv2d(24, 24, 3, group=24, pad_mode="same"),
            nn.Conv2d(24, 33, 5, pad_mode="valid"),
            nn.Conv2d(33, 40, 3, pad_mode="pad", padding=2, dilation=2)])
        self.head = nn.Conv2d(40, 10, 1, has_bias=True)
        self.mean = ms.ops.ReduceMean()

    def construct(self, x):
        return self.mean(self.head(self.body(self.stem(x))), (2, 3))


def ghost_params(cin, cout, k, ratio, d):
    """Parameters of a Ghost module replacing a k x k conv: primary conv + BN, depthwise cheap conv + BN."""
    init = math.ceil(cout / ratio)
    new = init * (ratio - 1)
    return cin * init * k * k + 2 * init + new * d * d + 2 * new


def test_ghostify_replaces_eligible_convs_and_keeps_shapes():
    net = PlainCNN()
    net.set_train(False)
    x = images(2, 31)
    body_shape = net.body(net.stem(x)).shape
    report = ghostify(net, ratio=3, dw_size=5, skip=("head",), image_size=31)
    assert report.replaced == ["body.0", "body.3", "body.4"]
    assert report.skipped == {"stem": "first convolution (sees the input image)", "body.2": "grouped/depthwise",
                              "head": "matches a skip pattern"}
    removed = (16 * 24 * 9 + 24) + 24 * 33 * 25 + 33 * 40 * 9
    added = ghost_params(16, 24, 3, 3, 5) + ghost_params(24, 33, 5, 3, 5) + ghost_params(33, 40, 3, 3, 5)
    assert report.params_after == report.params_before - removed + added == trainable(net)
    # output sizes 16x16 ('same', stride 2), 12x12 ('valid' 5x5), 12x12 (dilated): ghost channels 16, 22, 28
    assert report.cheap_macs == 25 * (16 * 16 * 16 + 12 * 12 * 22 + 12 * 12 * 28)
    assert report.macs_after < report.macs_before / 2
    assert "3 convolutions -> Ghost modules" in report.summary()
    net.set_train(False)
    assert net.body(net.stem(x)).shape == body_shape
    assert all(name == param.name for name, param in net.parameters_and_names())


def test_ghostified_network_trains_saves_and_runs_in_graph_mode(tmp_path, graph_mode):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = PlainCNN()
    ghostify(net, ratio=2, dw_size=3)
    net.set_train(True)
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    grad_fn = ms.value_and_grad(lambda x, y: loss_fn(net(x), y), None, net.trainable_params())
    loss, grads = grad_fn(images(4, 31), ms.Tensor(np.array([1, 2, 3, 4], np.int32)))
    assert np.isfinite(loss.asnumpy()) and all(np.abs(g.asnumpy()).max() > 0 for g in grads)
    randomize_state(net, seed=3)
    ckpt = str(tmp_path / "ghost.ckpt")
    ms.save_checkpoint(net, ckpt)
    x = images(2, 31)
    want = net(x).asnumpy()
    fresh = PlainCNN()
    ghostify(fresh, ratio=2, dw_size=3)
    ms.load_param_into_net(fresh, ms.load_checkpoint(ckpt), strict_load=True)
    fresh.set_train(False)
    ms.set_context(mode=ms.GRAPH_MODE)
    np.testing.assert_allclose(fresh(x).asnumpy(), want, atol=1e-5)


def test_ghostify_on_ghostnet_leaves_its_ghost_modules_alone():
    net = create_model("ghostnet_050", num_classes=10)
    report = ghostify(net, skip=("*.se.*",))
    shortcuts = [f"blocks.{i}.0.shortcut.2" for i in (1, 3, 5, 7)] + ["blocks.6.3.shortcut.2"]
    assert sorted(report.replaced) == sorted(shortcuts + ["blocks.9.0.conv", "conv_head"])
    assert not [n for n in report.replaced if "primary_conv" in n or "cheap_operation" in n]
    assert sum(r == "already inside a Ghost module" for r in report.skipped.values()) == 64
    net.set_train(False)
    assert net(images(2, 32)).shape == (2, 10)


@pytest.mark.parametrize("kwargs", [{"ratio": 1}, {"dw_size": 2}])
def test_ghostify_rejects_bad_hyperparameters_without_touching_the_net(kwargs):
    net = PlainCNN()
    names = [n for n, _ in net.parameters_and_names()]
    with pytest.raises(ValueError, match="ratio >= 2 and an odd dw_size"):
        ghostify(net, **kwargs)
    assert [n for n, _ in net.parameters_and_names()] == names


def test_ghostify_refuses_skip_patterns_that_match_nothing_without_touching_the_net():
    net = create_model("ghostnet_050", num_classes=10)
    names = [n for n, _ in net.parameters_and_names()]
    with pytest.raises(ConfigError, match=r"skip pattern\(s\) '2x', 'heda' match no convolution \(fnmatch on the "
                                          r"cell path; paths look like 'conv_head'\)"):
        ghostify(net, skip=("*.se.*", "2x", "heda"))
    assert [n for n, _ in net.parameters_and_names()] == names


def test_ghostify_needs_a_cell():
    with pytest.raises(ConfigError, match="^ghostify needs a MindSpore nn.Cell, got str$"):
        ghostify("not a net")
