"""Atomic checkpoint writing, rotation, fine-tuning loads and training-state resume."""
import glob
import os

import mindspore as ms

from ..errors import DataError


def save_atomic(obj, path, append_dict=None):
    """Save a Cell or parameter list to ``path`` via a temporary file and ``os.replace``: never a partial file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}.ckpt"
    try:
        ms.save_checkpoint(obj, tmp, append_dict=append_dict)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def rotate(pattern, keep):
    """Delete all but the ``keep`` newest files matching ``pattern`` (names sort by epoch)."""
    files = sorted(glob.glob(pattern))
    for old in files[:-keep] if keep > 0 else []:
        os.remove(old)


def params_as_list(named_tensors):
    """``[{'name': n, 'data': t}]`` — the form ``save_checkpoint`` takes for tensors that are not a Cell's."""
    return [{"name": name, "data": tensor} for name, tensor in named_tensors]


def load_for_finetune(net, ckpt_path, log):
    """Load every matching parameter of ``ckpt_path`` into ``net``; a classifier of another size is re-initialised.

    Any other shape mismatch, or parameters of ``net`` absent from the checkpoint, is an error listing them.
    """
    if not os.path.isfile(ckpt_path):
        raise DataError(f"pretrained checkpoint not found: {ckpt_path}")
    params = {k[len("ema."):] if k.startswith("ema.") else k: v for k, v in ms.load_checkpoint(ckpt_path).items()}
    own = dict(net.parameters_and_names())
    skipped, bad = [], []
    for name, param in own.items():
        if name not in params:
            bad.append(f"{name} missing")
        elif tuple(params[name].shape) != tuple(param.shape):
            (skipped if name.startswith("classifier.") else bad).append(
                f"{name} {tuple(params[name].shape)} vs model {tuple(param.shape)}")
    if bad:
        raise DataError(f"pretrained checkpoint {ckpt_path} does not fit {len(bad)} parameters: "
                         + "; ".join(bad[:6]) + (" ..." if len(bad) > 6 else ""))
    if skipped:
        log.info("fine-tuning: classifier re-initialised (checkpoint %s)", ", ".join(skipped))
    keep = {k: params[k] for k, p in own.items() if tuple(params[k].shape) == tuple(p.shape)}
    ms.load_param_into_net(net, keep, strict_load=False)


def load_train_state(train_step, ckpt_path):
    """Restore network, optimizer and EMA parameters from a training-state checkpoint; returns the saved epoch."""
    if not os.path.isfile(ckpt_path):
        raise DataError(f"resume checkpoint not found: {ckpt_path}")
    params = ms.load_checkpoint(ckpt_path)
    if "epoch" not in params:
        raise DataError(f"{ckpt_path} is a model checkpoint, not a training state; resume from last_state.ckpt")
    epoch = int(params.pop("epoch"))
    not_loaded, _ = ms.load_param_into_net(train_step, params, strict_load=True)
    if not_loaded:
        raise DataError(f"{ckpt_path} does not match this training setup (model/optimizer/EMA differ): "
                         + ", ".join(not_loaded[:5]))
    return epoch
