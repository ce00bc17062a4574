"""MindSpore Hub entry: load ``mindspore_hub_conf.py`` by path exactly as ``mindspore_hub.load`` does, build every
alias, load a checkpoint, run a forward."""
import importlib.util
import os
import sys

import mindspore as ms
import numpy as np
import pytest

from helpers import images, randomize_state
from src.errors import DataError
from src.hub import ALIASES as HUB_ALIASES
from src.models import create_model, list_models
from src.models.registry import MODELS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ms.set_device("CPU")
ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture(scope="module")
def hub_conf():
    """The conf module, loaded like ``mindspore_hub.load._get_network_from_cache`` (repo dir first on sys.path,
    ``spec_from_file_location``, cwd = repo while ``create_network`` runs)."""
    sys.path.insert(0, REPO)
    spec = importlib.util.spec_from_file_location("mindspore_hub_conf.py", os.path.join(REPO, "mindspore_hub_conf.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hub_create(conf, name, *args, **kwargs):
    """Call the entry point the way mindspore_hub does (lower-cased name, from the repo directory)."""
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        return conf.create_network(name.lower(), *args, **kwargs)
    finally:
        os.chdir(cwd)


# alias -> the registered model it stands for (the first three are the MindSpore model zoo's hub names)
ALIASES = {"ghostnet": "ghostnet_100", "ghostnet_nose": "ghostnet_100_nose", "ghostnet-600": "ghostnet_600m",
           "repghostnet": "repghostnet_100", "ghostnetv2": "ghostnetv2_100", "ghostnetv3": "ghostnetv3_100"}


def test_the_hub_table_maps_the_zoo_names():
    """The real table (not this file's copy) maps every zoo name to the model it stands for."""
    assert HUB_ALIASES == ALIASES


def shapes(net):
    return [(n, tuple(p.shape)) for n, p in net.parameters_and_names()]


@pytest.mark.parametrize("alias", [pytest.param(a, marks=pytest.mark.slow) if a in ("ghostnet-600", "ghostnetv2", "ghostnetv3") else a
                                   for a in ALIASES])  # the two largest networks (~4 s each): slow
def test_alias_builds_loads_checkpoint_and_runs(hub_conf, alias, tmp_path):
    net = randomize_state(hub_create(hub_conf, alias, 10), seed=2)
    _, builder, _ = MODELS[ALIASES[alias]]
    assert type(net) is builder and shapes(net) == shapes(create_model(ALIASES[alias], num_classes=10))
    ckpt = str(tmp_path / f"{alias}.ckpt")
    ms.save_checkpoint(net, ckpt)
    x = images(2, 64)
    want = net(x).asnumpy()
    loaded = hub_create(hub_conf, alias, num_classes=10, pretrained=ckpt)
    loaded.set_train(False)
    got = loaded(x).asnumpy()
    assert got.shape == (2, 10) and np.isfinite(got).all()
    np.testing.assert_allclose(got, want, atol=1e-5)
    same = hub_create(hub_conf, alias, num_classes=10, ckpt_path=ckpt)
    same.set_train(False)
    np.testing.assert_allclose(same(x).asnumpy(), want, atol=1e-5)


def test_zoo_names_are_the_zoo_models(hub_conf):
    nose = hub_create(hub_conf, "ghostnet_nose")
    names = [n for n, _ in nose.parameters_and_names()]
    assert not any(".se." in n for n in names)
    # GhostNet 1.0x (5,182,508) minus its squeeze-excite weights (1,503,868).
    assert sum(p.size for p in nose.trainable_params()) == 3_678_640
    assert sum(p.size for p in hub_create(hub_conf, "GhostNet-600").trainable_params()) == 11_939_796


def test_every_registered_name_and_deploy(hub_conf):
    assert set(list_models()) | set(ALIASES) == set(hub_conf.hub_names())
    deployed = hub_create(hub_conf, "RepGhostNet_050", num_classes=10, deploy=True)
    assert not any(".fusion_bn." in n for n, _ in deployed.parameters_and_names())
    plain = hub_create(hub_conf, "ghostnet_050", num_classes=10, deploy=False)
    assert shapes(plain) == shapes(create_model("ghostnet_050", num_classes=10))


@pytest.mark.parametrize("name, kwargs, error, match", [
    ("resnet50", {}, ValueError, "valid names: ghost_resnet56_cifar, .* ghostnet, ghostnet-600, ghostnet_050"),
    ("ghostnet", {"deploy": True}, ValueError, "deploy only applies to RepGhostNet"),
    ("ghostnet_nose", {"deploy": True}, ValueError, "deploy only applies to RepGhostNet"),
    ("ghostnet", {"pretrained": True}, ValueError, "hosts no weights"),
    ("ghostnet", {"pretrained": "a.ckpt", "ckpt_path": "b.ckpt"}, ValueError, "different checkpoints"),
    ("ghostnet", {"pretrained": "/nonexistent.ckpt"}, ValueError, "checkpoint not found"),
    ("ghostnet", {"num_classes": "ten"}, ValueError, "num_classes must be a positive int, got 'ten'"),
    ("ghostnet", {"num_classes": 0}, ValueError, "num_classes must be a positive int, got 0"),
    ("ghostnet", {"num_classes": True}, ValueError, "num_classes must be a positive int, got True"),
    ("ghostnet", {"dropout": 1.5}, ValueError, r"dropout must be a float in \[0, 1\), got 1.5"),
    ("repghostnet", {"deploy": "yes"}, ValueError, "deploy must be True or False, got 'yes'"),
    ("ghostnet", {"classes": 10}, ValueError, "unknown argument 'classes'"),
])
def test_errors(hub_conf, name, kwargs, error, match):
    with pytest.raises(error, match=match):
        hub_create(hub_conf, name, **kwargs)
