"""MindSpore Hub entry point (``create_network``) behind the thin top-level ``mindspore_hub_conf.py``.

Hub names: every registered model (``ghostnet_050`` ... ``ghostnetv3_160``) plus the MindSpore model zoo's names
``ghostnet`` (GhostNet 1.0x), ``ghostnet_nose`` (1.0x without squeeze-excite), ``ghostnet-600`` (GhostNet-600M) and
the aliases ``repghostnet``, ``ghostnetv2`` and ``ghostnetv3``.
"""
import os

from src.errors import ConfigError
from src.models import create_model, has_deploy_form, list_models

ALIASES = {"ghostnet": "ghostnet_100", "ghostnet_nose": "ghostnet_100_nose", "ghostnet-600": "ghostnet_600m",
           "repghostnet": "repghostnet_100", "ghostnetv2": "ghostnetv2_100", "ghostnetv3": "ghostnetv3_100"}


def hub_names():
    """Every name :func:`create_network` accepts, sorted."""
    return sorted([*list_models(), *ALIASES])


def create_network(name, *args, **kwargs):
    """Build network ``name`` for MindSpore Hub.

    Positional argument: ``num_classes``. Keywords: ``num_classes`` (default 1000), ``pretrained`` or ``ckpt_path``
    (a MindSpore checkpoint path, loaded strictly; see ``scripts/convert_pytorch_weights.py``), ``deploy``
    (RepGhostNet and GhostNetV3 only: build the re-parameterized form; ``deploy=True`` elsewhere is an error), and the model
    keywords ``dropout`` / ``in_channels`` / ``features_only`` / ``out_indices`` (the backbone API).
    """
    if len(args) > 1:
        raise TypeError(f"create_network takes at most one positional argument (num_classes), got {len(args)}")
    if args:
        if "num_classes" in kwargs:
            raise TypeError("num_classes given both positionally and as a keyword")
        kwargs["num_classes"] = args[0]
    _check_kwargs(kwargs)
    ckpt = _checkpoint_path(kwargs.pop("pretrained", None), kwargs.pop("ckpt_path", None))
    key = str(name).lower()
    if key not in hub_names():
        raise ValueError(f"unknown network '{name}'; valid names: {', '.join(hub_names())}")
    key = ALIASES.get(key, key)
    if not has_deploy_form(key) and kwargs.pop("deploy", False):
        raise ValueError(f"deploy only applies to RepGhostNet and GhostNetV3 models, not {key}")
    return create_model(key, pretrained=ckpt, **kwargs)


def _check_kwargs(kwargs):
    """Validate the keyword arguments here, with one clear line, instead of deep inside MindSpore."""
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    checks = {"num_classes": (lambda v: is_int(v) and v >= 1, "a positive int"),
              "in_channels": (lambda v: is_int(v) and v >= 1, "a positive int"),
              "dropout": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1,
                          "a float in [0, 1)"),
              "deploy": (lambda v: isinstance(v, bool), "True or False"),
              "pretrained": (lambda v: v is None or isinstance(v, (bool, str, os.PathLike)), "a checkpoint path"),
              "ckpt_path": (lambda v: v is None or isinstance(v, (str, os.PathLike)), "a checkpoint path"),
              "features_only": (lambda v: isinstance(v, bool), "True or False"),
              "out_indices": (lambda v: v is None or isinstance(v, (list, tuple)), "a list of stage indices")}
    for key, value in kwargs.items():
        if key not in checks:
            raise ConfigError(f"create_network got an unknown argument '{key}'; valid: {', '.join(checks)}")
        ok, expected = checks[key]
        if not ok(value):
            raise ConfigError(f"create_network: {key} must be {expected}, got {value!r}")


def _checkpoint_path(pretrained, ckpt_path):
    """The checkpoint to load, from ``pretrained`` (path, or False/None) and its synonym ``ckpt_path``."""
    if pretrained is True:
        raise ValueError("this project hosts no weights: pass pretrained=<path to a .ckpt> (convert the public "
                         "PyTorch weights with scripts/convert_pytorch_weights.py)")
    pretrained = pretrained or None
    if pretrained and ckpt_path and pretrained != ckpt_path:
        raise ValueError("pretrained and ckpt_path name different checkpoints; give one")
    return pretrained or ckpt_path
