"""Model specification: exact parameter counts, MACs, re-parameterization, shapes, GRAPH mode, AMP."""
import math
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest

from helpers import ROOT, images, randomize_state
from src.errors import DataError
from src.models import (GhostModule, RepGhostModule, create_model, list_models, load_checkpoint_strict,
                        make_divisible, model_family, reparameterize, reparameterize_params)
from src.tools.profile import profile_model

# The published reference: trainable parameters (1000 classes) and MACs at 224x224 (None: no exact figure published).
REFERENCE = {
    "ghostnet_050": (2_587_292, 42.3e6), "ghostnet_100": (5_182_508, 141.2e6), "ghostnet_130": (7_358_820, 227.0e6),
    "repghostnet_050": (2_313_968, 43.3e6), "repghostnet_058": (2_546_388, 59.8e6),
    "repghostnet_080": (3_278_968, 95.5e6), "repghostnet_100": (4_073_604, 142.4e6),
    "repghostnet_111": (4_539_984, 170.1e6), "repghostnet_130": (5_478_612, 231.1e6),
    "repghostnet_150": (6_575_336, 301.3e6), "repghostnet_200": (9_796_124, 515.9e6),
    "ghostnetv2_100": (6_156_908, 167e6), "ghostnetv2_130": (8_960_404, None), "ghostnetv2_160": (12_392_698, None),
}
DEPLOYED = {"repghostnet_050": 2_306_528, "repghostnet_058": 2_537_736, "repghostnet_080": 3_267_112,
            "repghostnet_100": 4_058_772, "repghostnet_111": 4_523_568, "repghostnet_130": 5_459_316,
            "repghostnet_150": 6_553_064, "repghostnet_200": 9_766_460}
REPGHOST = sorted(DEPLOYED)


def trainable(net):
    return sum(int(p.size) for p in net.trainable_params())


def total_macs(net):
    return sum(m for _, m in profile_model(net, 224).values())


# Registered in this file's REFERENCE, plus the models of tests/test_family.py and tests/test_ghostnetv3.py.
FAMILY_MODELS = ["ghostnet_050_nose", "ghostnet_100_nose", "ghostnet_130_nose", "ghostnet_600m", "vgg16_cifar",
                 "ghost_vgg16_cifar", "resnet56_cifar", "ghost_resnet56_cifar", "ghostnetv3_050", "ghostnetv3_100",
                 "ghostnetv3_130", "ghostnetv3_160"]


def test_registry_lists_every_published_width():
    assert list_models() == sorted([*REFERENCE, *FAMILY_MODELS])


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_parameter_count_and_macs_match_reference(name):
    params, macs = REFERENCE[name]
    net = create_model(name)
    assert trainable(net) == params
    if macs is not None:
        tolerance = 0.01 if name != "ghostnetv2_100" else 0.02  # the V2 figure is only given as "~167M"
        assert total_macs(net) == pytest.approx(macs, rel=tolerance)


@pytest.mark.parametrize("name", REPGHOST)
def test_deployed_repghost_parameter_count_and_macs(name):
    net = create_model(name, deploy=True)
    assert trainable(net) == DEPLOYED[name]
    assert total_macs(net) == pytest.approx(REFERENCE[name][1], rel=0.01)


def test_make_divisible_uses_reference_rounding():
    # 1.3x widths where "ceil to 4" would differ: 16*1.3=20.8 -> 20, 72*1.3=93.6 -> 92, 200*1.3=260 -> 260
    assert [make_divisible(v * 1.3) for v in (16, 72, 200, 184)] == [20, 92, 260, 240]
    assert make_divisible(8 * 0.5) == 4 and make_divisible(3.0) == 4


@pytest.mark.parametrize("oup,ratio,dw_size,sliced", [(16, 2, 3, False), (7, 2, 3, True), (10, 3, 5, True),
                                                        (12, 3, 5, False), (9, 4, 7, True)])
def test_ghost_module_channels_and_slice(oup, ratio, dw_size, sliced):
    module = GhostModule(5, oup, ratio=ratio, dw_size=dw_size)
    init = math.ceil(oup / ratio)
    assert module.needs_slice is sliced
    assert module.cheap_operation[0].weight.shape == (init * (ratio - 1), 1, dw_size, dw_size)
    module.set_train(False)
    out = module(images(2, 9, channels=5))
    assert out.shape == (2, oup, 9, 9)


@pytest.mark.parametrize("kwargs", [{"ratio": 1}, {"dw_size": 4}])
def test_ghost_module_rejects_bad_hyperparameters(kwargs):
    with pytest.raises(ValueError):
        GhostModule(4, 8, **kwargs)


def test_repghost_identity_branch_is_live():
    """The fusion BN branch changes the output, so the deploy-equivalence tests below are not vacuous."""
    module = randomize_state(RepGhostModule(4, 8))
    x = images(1, 8, channels=4)
    before = module(x).asnumpy()
    module.fusion_bn[0].gamma.set_data(module.fusion_bn[0].gamma * 0)
    module.fusion_bn[0].beta.set_data(module.fusion_bn[0].beta * 0)
    assert np.abs(module(x).asnumpy() - before).max() > 1e-2


@pytest.mark.parametrize("name", [n if n == "repghostnet_050" else pytest.param(n, marks=pytest.mark.slow)
                                  for n in REPGHOST])
def test_deploy_form_equals_train_form(name, tmp_path):
    train = randomize_state(create_model(name, num_classes=37), seed=1)
    x = images(2, 64)
    expected = train(x).asnumpy()
    assert np.abs(expected).max() > 0.5  # logits of realistic magnitude

    ckpt = str(tmp_path / "train.ckpt")
    ms.save_checkpoint(train, ckpt)
    deploy_params = reparameterize_params(ms.load_checkpoint(ckpt))
    deployed = create_model(name, num_classes=37, deploy=True)
    ms.load_param_into_net(deployed, deploy_params, strict_load=True)
    deployed.set_train(False)
    assert np.abs(deployed(x).asnumpy() - expected).max() <= 1e-5

    reparameterize(train)
    assert np.abs(train(x).asnumpy() - expected).max() <= 1e-5
    assert not any(".fusion_bn." in n for n, _ in train.parameters_and_names())
    assert trainable(train) == trainable(deployed)
    names = {n: p.name for n, p in train.parameters_and_names()}
    assert all(n == p for n, p in names.items())  # checkpoints of the converted net load by name
    assert set(names) == set(deploy_params)


def test_in_place_conversion_saves_a_loadable_deploy_checkpoint(tmp_path):
    net = reparameterize(randomize_state(create_model("repghostnet_050", num_classes=10)))
    ckpt = str(tmp_path / "deploy.ckpt")
    ms.save_checkpoint(net, ckpt)
    loaded = create_model("repghostnet_050", num_classes=10, deploy=True, pretrained=ckpt)
    loaded.set_train(False)
    x = images(1, 32)
    np.testing.assert_array_equal(loaded(x).asnumpy(), net(x).asnumpy())


@pytest.mark.parametrize("name,size", [("ghostnet_050", 32), ("repghostnet_050", 96), ("ghostnetv2_100", 64)])
@pytest.mark.parametrize("num_classes", [10, 37, 1000])
def test_forward_shapes(name, size, num_classes):
    net = create_model(name, num_classes=num_classes)
    net.set_train(False)
    assert net(images(2, size)).shape == (2, num_classes)


@pytest.mark.parametrize("name,size", [("ghostnet_100", 224), ("repghostnet_111", 160), ("ghostnetv2_130", 75)])
def test_forward_shapes_other_sizes(name, size):
    net = create_model(name, num_classes=10)
    net.set_train(False)
    assert net(images(1, size)).shape == (1, 10)
    assert net.forward_features(images(1, size)).shape[2:] == (math.ceil(size / 32),) * 2


def test_training_mode_forward_and_gradient():
    net = create_model("repghostnet_050", num_classes=10)
    net.set_train(True)
    loss_fn = ms.nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    labels = ms.Tensor(np.array([1, 3], np.int32))
    grad_fn = ms.value_and_grad(lambda x, y: loss_fn(net(x), y), None, net.trainable_params())
    loss, grads = grad_fn(images(2, 32), labels)
    assert np.isfinite(loss.asnumpy())
    assert len(grads) == len(net.trainable_params())
    assert all(np.isfinite(g.asnumpy()).all() for g in grads)


@pytest.mark.parametrize("name,size,kwargs", [("ghostnet_050", 32, {}), ("repghostnet_050", 32, {"deploy": True}),
                                              pytest.param("ghostnetv2_100", 64, {}, marks=pytest.mark.slow)])
def test_graph_mode_matches_pynative(name, size, kwargs, graph_mode):
    net = randomize_state(create_model(name, num_classes=10, **kwargs))
    x = images(2, size)
    graph_out = net(x).asnumpy()
    ms.set_context(mode=ms.PYNATIVE_MODE)
    assert graph_out.shape == (2, 10)
    assert np.abs(net(x).asnumpy() - graph_out).max() <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ghostnet_050", "repghostnet_050"])
def test_amp_o1_rewrite_succeeds_and_keeps_parameter_names(name):
    net = randomize_state(create_model(name, num_classes=10))
    x = images(2, 32)
    expected = net(x).asnumpy()
    amp = ms.amp.auto_mixed_precision(net, "O1")
    amp.set_train(False)
    out = amp(x).asnumpy()
    assert out.shape == (2, 10)
    assert np.abs(out - expected).max() < 0.05 * np.abs(expected).max()  # fp16 convs, fp32 elsewhere
    assert all(n == p.name for n, p in amp.parameters_and_names())


def test_unknown_model_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown model 'ghostnet_10'.*ghostnet_100.*Valid names: ghost_resnet56_cifar, ghost_vgg16_cifar, ghostnet_050"):
        create_model("ghostnet_10")


def test_strict_loading_reports_shape_mismatch_and_deploy_form(tmp_path):
    ckpt = str(tmp_path / "c10.ckpt")
    ms.save_checkpoint(create_model("repghostnet_050", num_classes=10), ckpt)
    with pytest.raises(ValueError, match=r"2 shape mismatches.*classifier.weight \(10, 1280\) vs model \(37, 1280\)") \
            as err:
        create_model("repghostnet_050", num_classes=37, pretrained=ckpt)
    assert "deploy-form" not in str(err.value)
    with pytest.raises(ValueError, match="train-form vs deploy-form"):
        create_model("repghostnet_050", num_classes=10, deploy=True, pretrained=ckpt)
    with pytest.raises(DataError, match="checkpoint not found"):
        load_checkpoint_strict(create_model("ghostnet_050"), str(tmp_path / "missing.ckpt"))


ONNX_SCRIPT = """
import sys, numpy as np, mindspore as ms
sys.path.insert(0, "tests")
from helpers import images, randomize_state
from src.errors import DataError
from src.models import create_model, reparameterize
ms.set_device("CPU")
name, size, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
net = randomize_state(create_model(name, num_classes=10))
if name.startswith("repghostnet"):
    reparameterize(net)
x = images(2, size)
np.save(path + ".npy", net(x).asnumpy())
ms.onnx.export(net, x, file_name=path)
"""


@pytest.mark.slow
@pytest.mark.parametrize("name,size", [("ghostnet_050", 32), ("repghostnet_050", 32), ("ghostnetv2_100", 64)])
def test_onnx_export_matches_cell(name, size, tmp_path):
    """One export per process: a second ONNX export in one MindSpore 2.10 process crashes."""
    ort = pytest.importorskip("onnxruntime")
    path = str(tmp_path / f"{name}.onnx")
    subprocess.run([sys.executable, "-c", ONNX_SCRIPT, name, str(size), path], check=True, capture_output=True)
    session = ort.InferenceSession(path)
    (out,) = session.run(None, {session.get_inputs()[0].name: images(2, size).asnumpy()})
    assert np.abs(out - np.load(path + ".npy")).max() <= 1e-4


@pytest.mark.parametrize("args,message", [
    (["--model", "ghostnetv2_100", "--image_size", "32"], "image_size must be >= 64 for ghostnetv2_100, got 32"),
    (["--model", "ghostnet_050", "--image_size", "16"], "image_size must be >= 32 for ghostnet_050, got 16"),
    (["--model", "ghostnet_050", "--deploy"], "--deploy only applies to repghostnet_* and ghostnetv3_* models, not ghostnet_050"),
])
def test_profiler_bad_input_is_one_line_error(args, message):
    proc = subprocess.run([sys.executable, "-m", "src.tools.profile", *args], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {message}", proc.stderr[-2000:]


# The official RepGhostNet table (ChengpengChen/RepGhost, model/repghost.py): (kernel, mid, out, se, stride) per block.
OFFICIAL_REPGHOST = [[(3, 8, 16, 0, 1)], [(3, 24, 24, 0, 2)], [(3, 36, 24, 0, 1)], [(5, 36, 40, 0.25, 2)],
                     [(5, 60, 40, 0.25, 1)], [(3, 120, 80, 0, 2)],
                     [(3, 100, 80, 0, 1), (3, 120, 80, 0, 1), (3, 120, 80, 0, 1), (3, 240, 112, 0.25, 1),
                      (3, 336, 112, 0.25, 1)],
                     [(5, 336, 160, 0.25, 2)], [(5, 480, 160, 0, 1), (5, 480, 160, 0.25, 1), (5, 480, 160, 0, 1),
                                                (5, 480, 160, 0.25, 1)]]


def official_conv_shortcuts(width):
    """Blocks whose official RepGhostBottleneck keeps a conv shortcut (in != out or stride > 1), and their
    parameter count (dw k x k + BN, 1x1 + BN): the official ``shortcut=False`` drops only identity shortcuts."""
    blocks, params, chs = [], 0, make_divisible(16 * width, 4)
    for stage, cfg in enumerate(OFFICIAL_REPGHOST):
        for i, (k, _, c, _, s) in enumerate(cfg):
            out = make_divisible(c * width, 4)
            if chs != out or s != 1:
                blocks.append(f"blocks.{stage}.{i}")
                params += chs * k * k + 2 * chs + chs * out + 2 * out
            chs = out
    return blocks, params


@pytest.mark.parametrize("name,width", [("repghostnet_050", 0.5), ("repghostnet_100", 1.0)])
def test_repghost_without_shortcut_keeps_conv_shortcuts_like_the_official_code(name, width):
    """``shortcut=False`` (``repghostnet_wo``): the official definition builds the same parameters (its conv
    shortcuts stay) and adds nothing only where the shortcut would be the identity."""
    blocks, shortcut_params = official_conv_shortcuts(width)
    net = create_model(name, shortcut=False)
    assert trainable(net) == REFERENCE[name][0]
    bottlenecks = {n: c for n, c in net.cells_and_names() if hasattr(c, "identity_shortcut")}
    assert sorted(n for n, c in bottlenecks.items() if c.use_shortcut) == sorted(blocks)
    assert all(not c.use_shortcut for n, c in bottlenecks.items() if n not in blocks)
    assert sum(int(p.size) for p in net.trainable_params() if ".shortcut." in p.name) == shortcut_params


def test_without_shortcut_an_identity_block_returns_its_main_path():
    block = randomize_state(create_model("repghostnet_050", shortcut=False), 0).blocks[2][0]
    x = images(1, 16, channels=block.ghost1.primary_conv[0].in_channels)
    out = block.ghost2(block.ghost1(x))
    np.testing.assert_allclose(block(x).asnumpy(), out.asnumpy(), rtol=1e-5, atol=1e-6)


def test_every_family_states_its_class_count():
    """Runners and records read ``num_classes`` off the network (eval of a CIFAR checkpoint crashed without it)."""
    names = {model_family(name): name for name in list_models()}
    assert {name: create_model(name, num_classes=7).num_classes for name in names.values()} == {
        name: 7 for name in names.values()}
