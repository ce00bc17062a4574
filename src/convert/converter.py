"""PyTorch checkpoint (``.pth`` / ``.pth.tar`` / ``.safetensors``) -> MindSpore ``.ckpt`` for a registered model."""
import functools
import os
from dataclasses import dataclass, field

import mindspore as ms

from src.models import create_model, model_family, reparameterize_params, write_checkpoint

from .mapping import ConversionError, clean_state_dict, is_deploy_form, map_to_model, select_state_dict
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
    if path.endswith(".safetensors"):
        try:
            from safetensors.numpy import load_file
        except ImportError as exc:
            raise ConversionError("reading .safetensors needs the 'safetensors' package (pip install safetensors)"
                                  ) from exc
        try:
            obj = load_file(path)
        except Exception as exc:  # the library raises its own SafetensorError and assorted others
            raise ConversionError(f"{path}: unreadable safetensors file ({exc})") from exc
    else:
        try:
            obj = load_torch_file(path)
        except TorchReadError as exc:
            raise ConversionError(str(exc)) from exc
    state_dict, used_key = select_state_dict(obj, key)
    params, dropped = clean_state_dict(state_dict)
    return params, used_key, dropped


@functools.lru_cache(maxsize=8)
def _shapes(name, kwargs):
    return tuple((n, tuple(p.shape)) for n, p in create_model(name, **dict(kwargs)).parameters_and_names())


def _target_shapes(name, **kwargs):
    """Our parameter names and shapes for ``create_model(name, **kwargs)``, in model order (cached: building
    the network is the slow part)."""
    return dict(_shapes(name, tuple(sorted(kwargs.items()))))


def convert_checkpoint(src, model, out, deploy=False, key=None):
    """Convert the PyTorch checkpoint ``src`` for registered ``model`` into the MindSpore checkpoint ``out``.

    The class count and input channels are taken from the checkpoint. A re-parameterized RepGhost source gives a
    deploy-form checkpoint (load it with ``create_model(model, deploy=True)``); ``deploy=True`` also fuses a
    train-form RepGhost source. Raises :class:`ConversionError`; ``out`` is only written on success.
    """
    family = model_family(model)
    if deploy and family != "repghostnet":
        raise ConversionError(f"--deploy only applies to RepGhostNet models, not {model}")
    params, used_key, dropped = load_source(src, key)
    kwargs = {"num_classes": params["classifier.weight"].shape[0] if "classifier.weight" in params else 1000,
              "in_channels": params["conv_stem.weight"].shape[1] if "conv_stem.weight" in params else 3}
    src_deploy = family == "repghostnet" and is_deploy_form(params)
    if family == "repghostnet":
        kwargs["deploy"] = src_deploy
    mapped, unused = map_to_model(params, _target_shapes(model, **kwargs), model)
    if deploy and not src_deploy:
        fused = {k: v.asnumpy() for k, v in reparameterize_params(mapped).items()}
        mapped, _ = map_to_model(fused, _target_shapes(model, **{**kwargs, "deploy": True}), model)
    write_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in mapped.items()], out)
    return ConversionReport(model=model, out=out, num_classes=kwargs["num_classes"], deploy=deploy or src_deploy,
                            source_key=used_key, num_params=len(mapped), unused=unused, dropped=dropped)
