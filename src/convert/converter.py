"""PyTorch checkpoint (``.pth`` / ``.pth.tar`` / ``.safetensors``) or MindSpore model zoo GhostNet checkpoint
(``.ckpt``) -> MindSpore ``.ckpt`` for a registered model."""
import functools
import os
import re
from dataclasses import dataclass, field

import mindspore as ms
import numpy as np

from src.config import load_config
from src.deploy.labels import IMAGENET_NAMES, read_labels
from src.models import create_model, has_deploy_form, reparameterize, saved_deployed, write_checkpoint
from src.record import make_record

from .mapping import ConversionError, clean_state_dict, is_zoo_state, map_to_model, select_state_dict, zoo_to_project_names
from .torch_reader import TorchReadError, load_torch_file


@dataclass
class ConversionReport:
    """What :func:`convert_checkpoint` did."""
    model: str
    out: str
    num_classes: int
    deploy: bool
    source_key: str = None
    num_params: int = 0
    unused: list = field(default_factory=list)
    dropped: list = field(default_factory=list)


def load_source(path, key=None):
    """Read ``path`` into a flat ``{name: float32 array}`` dict with our naming; returns ``(params, key, dropped)``."""
    if not os.path.isfile(path):
        raise ConversionError(f"no such file: {path}")
    if not os.access(path, os.R_OK):
        raise ConversionError(f"cannot read {path}: permission denied")
    if path.endswith(".ckpt"):
        obj = load_mindspore_ckpt(path)
    elif path.endswith(".safetensors"):
        try:
            # lazy: safetensors is optional, needed only for .safetensors sources
            from safetensors import SafetensorError
            from safetensors.numpy import load_file
        except ImportError as exc:
            raise ConversionError("reading .safetensors needs the 'safetensors' package (pip install safetensors)"
                                  ) from exc
        try:
            obj = load_file(path)
        except SafetensorError as exc:
            raise ConversionError(f"{path}: unreadable safetensors file ({exc})") from exc
        except TypeError as exc:  # NumPy has no bfloat16: "data type 'bfloat16' not understood"
            raise ConversionError(f"{path}: {exc} (NumPy cannot hold bfloat16: save the weights as float32 or "
                                  "convert the .pth, which is read with bfloat16 widened)") from exc
    else:
        try:
            obj = load_torch_file(path)
        except TorchReadError as exc:
            raise ConversionError(str(exc)) from exc
    state_dict, used_key = select_state_dict(obj, key)
    params, dropped = clean_state_dict(state_dict)
    return params, used_key, dropped


def load_mindspore_ckpt(path):
    """The parameters of a MindSpore ``.ckpt`` (e.g. a model zoo GhostNet) as ``{name: float32 array}``."""
    try:
        params = ms.load_checkpoint(path)
    except (ValueError, RuntimeError, TypeError) as exc:  # MindSpore's errors for unparsable files
        raise ConversionError(f"{path}: not a readable MindSpore checkpoint ({str(exc).splitlines()[0][:120]})"
                              ) from None
    return {k: v.asnumpy().astype(np.float32) for k, v in params.items() if isinstance(v, ms.Parameter)}


@functools.lru_cache(maxsize=8)
def _shapes(name, kwargs):
    return tuple((n, tuple(p.shape)) for n, p in create_model(name, **dict(kwargs)).parameters_and_names())


def _target_shapes(name, **kwargs):
    """Our parameter names and shapes for ``create_model(name, **kwargs)``, in model order (cached: building
    the network is the slow part)."""
    return dict(_shapes(name, tuple(sorted(kwargs.items()))))


def _block_paths(shapes):
    """Our bottleneck paths (``blocks.<s>.<j>``) in order, then the closing 1x1 ConvBnAct's: the order of a model
    zoo checkpoint's flat ``blocks.<i>``."""
    paths = []
    for name in shapes:
        match = re.match(r"^(blocks\.\d+\.\d+)\.(?:ghost1|conv)\.", name)
        if match and match.group(1) not in paths:
            paths.append(match.group(1))
    return paths


def deployed_params(model, kwargs, params):
    """Train-form ``params`` (``{name: array}`` in model order) of ``create_model(model, **kwargs)`` re-parameterized
    by the model's own :meth:`switch_to_deploy` (one fusion code path for every family)."""
    net = create_model(model, **kwargs)
    ms.load_param_into_net(net, {k: ms.Parameter(ms.Tensor(v), name=k) for k, v in params.items()}, strict_load=True)
    return {k: p.asnumpy() for k, p in reparameterize(net).parameters_and_names()}


def class_names_for(spec, num_classes):
    """The class names a converted checkpoint records, as the user says (never guessed from the class count):
    ``imagenet`` (the bundled ImageNet-1k list), a labels file (one name a line), or none for ``spec`` empty."""
    if not spec:
        return None
    names = read_labels(IMAGENET_NAMES if spec == "imagenet" else spec)
    if len(names) != num_classes:
        raise ConversionError(f"--class_names {spec} has {len(names)} names, the checkpoint {num_classes} classes")
    return names


def conversion_record(model, num_classes, deploy, class_names=None):
    """The model record of a converted checkpoint: model, class count, form, the default (ImageNet)
    preprocessing and the ``class_names`` given (without them infer.py prints class indices)."""
    cfg = load_config("eval", [])
    cfg.model, cfg.num_classes = model, num_classes
    return make_record(cfg, "deploy" if deploy else "train", class_names)


def convert_checkpoint(src, model, out, deploy=False, key=None, class_names=""):
    """Convert the PyTorch checkpoint ``src`` for registered ``model`` into the MindSpore checkpoint ``out``.

    The class count and input channels are taken from the checkpoint. A re-parameterized RepGhostNet / GhostNetV3
    source gives a deploy-form checkpoint (load it with ``create_model(model, deploy=True)``); ``deploy=True`` also
    fuses a train-form source. ``out`` carries a model record (:func:`conversion_record`) with the names
    ``class_names`` asks for (:func:`class_names_for`). Raises
    :class:`ConversionError`; ``out`` is only written on success.
    """
    reparam = has_deploy_form(model)
    if deploy and not reparam:
        raise ConversionError(f"--deploy only applies to RepGhostNet and GhostNetV3 models, not {model}")
    params, used_key, dropped = load_source(src, key)
    default_shapes = _target_shapes(model)
    if is_zoo_state(params):
        params = {zoo_to_project_names(params, _block_paths(default_shapes)).get(k, k): v for k, v in params.items()}
    first_conv = next(k for k, shape in default_shapes.items() if len(shape) == 4)
    classifier = [k for k, shape in default_shapes.items() if len(shape) == 2][-1]
    kwargs = {"num_classes": params[classifier].shape[0] if classifier in params else 1000,
              "in_channels": params[first_conv].shape[1] if first_conv in params else 3}
    src_deploy = saved_deployed(model, params)
    if reparam:
        kwargs["deploy"] = src_deploy
    mapped, unused = map_to_model(params, _target_shapes(model, **kwargs), model)
    if deploy and not src_deploy:
        fused = deployed_params(model, kwargs, mapped)
        mapped, _ = map_to_model(fused, _target_shapes(model, **{**kwargs, "deploy": True}), model)
    record = conversion_record(model, kwargs["num_classes"], deploy or src_deploy,
                               class_names_for(class_names, kwargs["num_classes"]))
    write_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in mapped.items()], out, record)
    return ConversionReport(model=model, out=out, num_classes=kwargs["num_classes"], deploy=deploy or src_deploy,
                            source_key=used_key, num_params=len(mapped), unused=unused, dropped=dropped)
