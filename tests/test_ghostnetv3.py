"""GhostNetV3 specification: timm 1.0.31's parameter counts in both forms, the published MACs, re-parameterization
that keeps the logits, the deployed form's checkpoints and a GRAPH-mode forward. Conversion of timm's V3 weights,
the backbone API, Hub, export and int8 are specified with the other families (test_convert, test_features,
test_hub, test_export, test_quant_export)."""
import mindspore as ms
import numpy as np
import pytest

from helpers import images, randomize_state
from src.errors import ConfigError, DataError
from src.models import (GhostModuleV3, check_input_size, create_model, has_deploy_form, is_train_form,
                        load_checkpoint_strict, reparameterize, write_checkpoint)
from src.tools.profile import profile_model

# timm 1.0.31, 1000 classes: trainable parameters in the train form / after ``reparameterize_model``
V3_PARAMS = {"ghostnetv3_050": (3_395_384, 2_853_176), "ghostnetv3_100": (8_129_028, 6_147_588),
             "ghostnetv3_130": (12_217_720, 8_948_296), "ghostnetv3_160": (17_275_700, 12_377_778)}


def trainable(net):
    return sum(int(p.size) for p in net.trainable_params())


@pytest.mark.parametrize("name", sorted(V3_PARAMS))
def test_parameter_counts_in_both_forms_match_timm(name):
    train, deployed = V3_PARAMS[name]
    assert trainable(create_model(name)) == train
    assert trainable(create_model(name, deploy=True)) == deployed
    assert has_deploy_form(name)


def test_deployed_macs_match_the_paper():
    """GhostNetV3 1.3x: 269M FLOPs (multiply-adds) at 224 px in the paper's abstract."""
    macs = sum(m for _, m in profile_model(create_model("ghostnetv3_130", deploy=True), 224).values())
    assert macs == pytest.approx(269e6, rel=0.005)


@pytest.mark.parametrize("name", sorted(V3_PARAMS))
def test_reparameterized_logits_equal_train_form(name):
    net = randomize_state(create_model(name, num_classes=10), seed=1)
    x = images(2, 64)
    train_logits = net(x).asnumpy()
    assert is_train_form(dict(net.parameters_and_names()))
    reparameterize(net)
    params = dict(net.parameters_and_names())
    assert not is_train_form(params) and trainable(net) == trainable(create_model(name, num_classes=10, deploy=True))
    deploy_logits = net(x).asnumpy()
    rel = np.abs(deploy_logits - train_logits).max() / np.abs(train_logits).max()
    assert np.abs(train_logits).max() > 1.0 and rel <= 1e-5


def test_every_module_folds_to_one_conv_per_op():
    net = reparameterize(create_model("ghostnetv3_050", num_classes=10))
    names = [n for n, _ in net.parameters_and_names()]
    modules = [c for _, c in net.cells_and_names() if isinstance(c, GhostModuleV3)]
    assert len(modules) == 32 and all(m.deploy for m in modules)
    assert "blocks.1.0.ghost1.primary_conv.0.bias" in names and "blocks.1.0.ghost1.cheap_operation.0.bias" in names
    assert "blocks.1.0.conv_dw.bias" in names and not any("_rpr_" in n for n in names)


def test_deployed_checkpoint_loads_into_deployed_form_only(tmp_path):
    net = reparameterize(randomize_state(create_model("ghostnetv3_050", num_classes=10)))
    ckpt = write_checkpoint(net, str(tmp_path / "deploy.ckpt"))
    loaded = load_checkpoint_strict(create_model("ghostnetv3_050", num_classes=10, deploy=True), ckpt)
    loaded.set_train(False)
    x = images(2, 64)
    assert np.array_equal(loaded(x).asnumpy(), net(x).asnumpy())
    with pytest.raises(DataError, match="train-form vs deploy-form"):
        load_checkpoint_strict(create_model("ghostnetv3_050", num_classes=10), ckpt)


def test_input_below_64_px_is_refused():
    with pytest.raises(ConfigError, match="image_size must be >= 64 for ghostnetv3_050"):
        check_input_size("ghostnetv3_050", 32)


@pytest.mark.usefixtures("graph_mode")
def test_graph_mode_forward_matches_pynative_in_both_forms():
    x = images(2, 64)
    for deploy in (False, True):
        net = randomize_state(create_model("ghostnetv3_050", num_classes=10, deploy=deploy), seed=2)
        ms.set_context(mode=ms.PYNATIVE_MODE)
        eager = net(x).asnumpy()
        ms.set_context(mode=ms.GRAPH_MODE)
        assert np.allclose(net(x).asnumpy(), eager, rtol=1e-4, atol=1e-4)
