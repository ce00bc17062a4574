"""Model registry: ``create_model(name, num_classes=1000, pretrained=None, features_only=False, **kw)`` for every
published width of every family."""
import difflib
import os

import mindspore as ms

from ..errors import ConfigError, DataError
from ..files import atomic_path
from ..record import checkpoint_entry, from_checkpoint_params
from .cifar import ghost_resnet56_cifar, ghost_vgg16_cifar, resnet56_cifar, vgg16_cifar
from .features import FeatureExtractor
from .ghostnet import GhostNet, GhostNetNoSE
from .ghostnet_600m import GhostNet600M
from .ghostnetv2 import GhostNetV2
from .ghostnetv3 import GhostNetV3
from .layers import reparameterizable_cells
from .reparam import is_train_form
from .repghost import RepGhostNet

_GHOSTNET_WIDTHS = {"050": 0.5, "100": 1.0, "130": 1.3}
# family -> (builder, {model name: builder keywords}); the family decides code paths (RepGhost deploy form).
_FAMILIES = {
    "ghostnet": (GhostNet, {f"ghostnet_{t}": {"width": w} for t, w in _GHOSTNET_WIDTHS.items()}),
    "ghostnet_nose": (GhostNetNoSE, {f"ghostnet_{t}_nose": {"width": w} for t, w in _GHOSTNET_WIDTHS.items()}),
    "ghostnet_600m": (GhostNet600M, {"ghostnet_600m": {}}),
    "repghostnet": (RepGhostNet, {f"repghostnet_{t}": {"width": w} for t, w in {
        "050": 0.5, "058": 0.58, "080": 0.8, "100": 1.0, "111": 1.11, "130": 1.3, "150": 1.5, "200": 2.0}.items()}),
    "ghostnetv2": (GhostNetV2, {f"ghostnetv2_{t}": {"width": w} for t, w in {
        "100": 1.0, "130": 1.3, "160": 1.6}.items()}),
    "ghostnetv3": (GhostNetV3, {f"ghostnetv3_{t}": {"width": w} for t, w in {
        "050": 0.5, "100": 1.0, "130": 1.3, "160": 1.6}.items()}),
    "vgg_cifar": (vgg16_cifar, {"vgg16_cifar": {}}),
    "ghost_vgg_cifar": (ghost_vgg16_cifar, {"ghost_vgg16_cifar": {}}),
    "resnet_cifar": (resnet56_cifar, {"resnet56_cifar": {}}),
    "ghost_resnet_cifar": (ghost_resnet56_cifar, {"ghost_resnet56_cifar": {}}),
}
MODELS = {name: (family, builder, kw) for family, (builder, names) in _FAMILIES.items() for name, kw in names.items()}


def list_models():
    """All registered model names, sorted."""
    return sorted(MODELS)


def check_model_name(name):
    """Raise :class:`ConfigError` (a ``ValueError``) naming the closest valid names when ``name`` is not registered."""
    if name not in MODELS:
        close = difflib.get_close_matches(str(name), MODELS, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown model '{name}'.{hint} Valid names: {', '.join(list_models())}")


def check_input_size(name, image_size):
    """Raise :class:`ConfigError` when ``image_size`` is below the smallest input model ``name`` accepts (32 px;
    GhostNetV2 and V3 64 px, their attention pools the last feature map once more)."""
    check_model_name(name)
    minimum = MODELS[name][1].min_input_size
    if image_size < minimum:
        raise ConfigError(f"image_size must be >= {minimum} for {name}, got {image_size}")


DEPLOY_FAMILIES = ("repghostnet", "ghostnetv3")  # families whose modules fuse for deployment (switch_to_deploy)


def model_family(name):
    """The family of a registered name: one of the keys of ``_FAMILIES`` ('ghostnet', 'ghostnet_nose',
    'ghostnet_600m', 'repghostnet', 'ghostnetv2', 'ghostnetv3', 'vgg_cifar', 'ghost_vgg_cifar', 'resnet_cifar',
    'ghost_resnet_cifar')."""
    check_model_name(name)
    return MODELS[name][0]


def has_deploy_form(name):
    """True when the registered model has a re-parameterized (deployed) form of its own (RepGhostNet, GhostNetV3)."""
    return model_family(name) in DEPLOY_FAMILIES


def saved_deployed(name, params):
    """True when ``params`` (parameter names of a checkpoint of registered model ``name``) hold its deployed
    (re-parameterized) form: the one reading of a checkpoint's form, for building the network that loads it."""
    return has_deploy_form(name) and not is_train_form(params)


def create_model(name, num_classes=1000, pretrained=None, features_only=False, out_indices=None, **kwargs):
    """Build a registered model; ``pretrained`` is a checkpoint path loaded strictly (every parameter must match).

    Extra keyword arguments go to the model class (``dropout``, ``in_channels``; RepGhostNet and GhostNetV3:
    ``deploy``; RepGhostNet: ``reparam``, ``shortcut``; Ghost-VGG/ResNet: ``ratio``, ``dw_size``). ``features_only=True`` returns the
    backbone as a :class:`~src.models.features.FeatureExtractor`: a tuple of feature maps at the strides picked by
    ``out_indices`` (default all: 2, 4, 8, 16, 32), described by its ``feature_info``; a classification
    checkpoint loads into it (its head is ignored).
    """
    check_model_name(name)
    _, builder, model_kw = MODELS[name]
    net = builder(num_classes=num_classes, **model_kw, **kwargs)
    if features_only:
        if not hasattr(net, "feature_info"):
            raise ConfigError(f"features_only is not available for {name} (GhostNet families only)")
        net = FeatureExtractor(net, out_indices)
    elif out_indices is not None:
        raise ConfigError("out_indices needs features_only=True")
    if pretrained:
        load_checkpoint_strict(net, pretrained)
    return net


def read_checkpoint(ckpt_path):
    """The one checkpoint reader: ``(params, record)`` of a MindSpore ``.ckpt``.

    ``params`` maps names to Parameters (plus any scalar entries such as ``epoch``); ``record`` is the model record
    (:mod:`src.record`) or None for files written before records existed. A missing, truncated or foreign file is a
    :class:`DataError` that says so (MindSpore's own message names neither).
    """
    if not os.path.isfile(ckpt_path):
        raise DataError(f"checkpoint not found: {ckpt_path}")
    try:
        params = ms.load_checkpoint(ckpt_path)
    except (ValueError, RuntimeError, TypeError) as exc:  # MindSpore's errors for unparsable files
        raise DataError(f"{ckpt_path} is corrupt or not a MindSpore checkpoint ({str(exc).splitlines()[0][:120]})"
                        ) from None
    if not any(isinstance(v, ms.Parameter) for v in params.values()):
        raise DataError(f"{ckpt_path} holds no parameters: corrupt or not a MindSpore checkpoint")
    return params, from_checkpoint_params(params, ckpt_path)


def write_checkpoint(obj, path, record=None, extra=None):
    """The one checkpoint writer: a Cell or ``[{'name', 'data'}]`` list with the model ``record`` (and ``extra``
    scalars) appended, complete or not at all (:func:`src.files.atomic_path`; a full disk is a one-line error)."""
    append = {**checkpoint_entry(record), **(extra or {})}
    with atomic_path(path) as tmp:
        ms.save_checkpoint(obj, tmp, append_dict=append or None)
    return path


def load_checkpoint_strict(net, ckpt_path, params=None):
    """Load every parameter of ``net`` from ``ckpt_path`` (or from its already read ``params``); shape
    mismatches or missing parameters are a :class:`DataError` listing them."""
    if params is None:
        params, _ = read_checkpoint(ckpt_path)
    own = dict(net.parameters_and_names())
    missing = sorted(k for k in own if k not in params)
    mismatched = sorted(f"{k} {tuple(params[k].shape)} vs model {tuple(v.shape)}" for k, v in own.items()
                        if k in params and tuple(params[k].shape) != tuple(v.shape))
    if missing or mismatched:
        hint = ""
        if reparameterizable_cells(net) and is_train_form(own) != is_train_form(params):
            hint = (" (train-form vs deploy-form checkpoint? build the model with deploy=True for a re-parameterized "
                    "one, or re-parameterize the train form: src.models.reparameterize)")
        details = "; ".join(mismatched[:5] + [f"missing {k}" for k in missing[:5]])
        raise DataError(f"checkpoint {ckpt_path} does not fit this model: {len(mismatched)} shape mismatches, "
                        f"{len(missing)} missing parameters{hint}: {details}")
    ms.load_param_into_net(net, {k: params[k] for k in own}, strict_load=True)
    return net
