"""Checkpoint rotation, fine-tuning loads and training-state resume (reading and writing: ``src.models``)."""
import glob
import os

import mindspore as ms

from ..errors import DataError
from ..models import read_checkpoint, reparameterize, saved_deployed
from ..record import check_pretrained

TEACHER_PREFIX = "teacher."  # parameter names of a distillation teacher: frozen, never part of a training state


def rotate(pattern, keep):
    """Delete all but the ``keep`` newest files matching ``pattern`` (names sort by epoch)."""
    files = sorted(glob.glob(pattern))
    for old in files[:-keep] if keep > 0 else []:
        os.remove(old)


def params_as_list(named_tensors):
    """``[{'name': n, 'data': t}]`` — the form ``save_checkpoint`` takes for tensors that are not a Cell's."""
    return [{"name": name, "data": tensor} for name, tensor in named_tensors]


def in_checkpoint_form(net, model_name, params):
    """``net`` switched (in place) to the form ``params`` were saved in: a deployed (re-parameterized) RepGhostNet or
    GhostNetV3 checkpoint loads only into the deployed network; every other checkpoint fits the network as built."""
    if saved_deployed(model_name, params):
        reparameterize(net)
    return net


def load_for_finetune(net, ckpt_path, log, model_name=None):
    """Load every matching parameter of ``ckpt_path`` into ``net``; a classifier of another size is re-initialised.

    Any other shape mismatch, or parameters of ``net`` absent from the checkpoint, is an error listing them.
    """
    params, record = read_checkpoint(ckpt_path)
    check_pretrained(record, model_name, ckpt_path)
    params = {k[len("ema."):] if k.startswith("ema.") else k: v for k, v in params.items()
              if isinstance(v, ms.Parameter)}
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


def state_parameters(train_step):
    """The parameters of ``train_step`` a training state holds: all but a distillation teacher's (frozen, and
    rebuilt from its own checkpoint when a run resumes)."""
    return [p for p in train_step.get_parameters() if not p.name.startswith(TEACHER_PREFIX)]


def load_train_state(train_step, params, ckpt_path):
    """Restore network, optimizer, loss-scale and EMA parameters of a training state (read by
    ``trainer.read_resume_state``) into ``train_step``.

    The per-step learning rates are not state: they follow from the config (a resumed run may change ``epochs``),
    and the restored ``global_step`` picks the position on them.
    """
    params = {k: v for k, v in params.items() if isinstance(v, ms.Parameter) and k != "learning_rate"}
    own = {p.name: p for p in state_parameters(train_step) if p.name != "learning_rate"}
    bad = [f"{k} missing" for k in own if k not in params]
    bad += [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in params.items()
            if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise DataError(f"{ckpt_path} does not match this training setup (model/optimizer/EMA differ): "
                        + ", ".join(bad[:5]))
    for name, param in own.items():
        param.set_data(params[name])
