"""Quantization-aware training inside ``train.py``: the checks, the validation network, the per-epoch schedule
and the record of QAT checkpoints.

``train.py --qat true`` (any recipe) fine-tunes the fake-quant network: the float model is built, the
``--pretrained`` checkpoint loaded (a float one, a deployed RepGhost one, or a QAT one to continue from), the
network turned into its QAT form (:func:`~.qat.quantize_network`) and its activation ranges calibrated on
``qat_calib_batches`` training batches (:func:`src.train.trainer.prepare_qat`); then observers track ranges by EMA
until ``qat_freeze_observer_epochs`` and folded BatchNorms use batch statistics until ``qat_freeze_bn_epochs``
(torchvision's recipe), fake quant starting after ``qat_quant_delay`` steps.
"""
import os

from ..errors import ConfigError
from ..models import has_deploy_form, read_checkpoint
from ..record import make_record
from .fake_quant import W_QMAX
from .qat import QuantScheme, is_qat_checkpoint, quantize_network, set_bn_frozen, set_observing


def check_qat_config(cfg):
    """Refuse QAT requests that cannot work, QAT checkpoints used by float runs and the reverse, before anything
    is written."""
    if cfg.resume and os.path.isfile(cfg.resume) and is_qat_checkpoint(*read_checkpoint(cfg.resume)) != cfg.qat:
        raise ConfigError(f"--resume {cfg.resume} is the state of a {'QAT' if not cfg.qat else 'float'} run; resume "
                          f"it with --qat {str(not cfg.qat).lower()} (the setting it was started with)")
    if not cfg.qat:
        if cfg.pretrained and os.path.isfile(cfg.pretrained) and is_qat_checkpoint(*read_checkpoint(cfg.pretrained)):
            raise ConfigError(f"--pretrained {cfg.pretrained} is a quantization-aware (QAT) checkpoint: continue "
                              "from it with --qat true, or fine-tune from the float checkpoint it was trained from")
        return
    if cfg.deploy and not has_deploy_form(cfg.model):
        raise ConfigError(f"--deploy: only RepGhostNet and GhostNetV3 have a deployed form, {cfg.model} has none; "
                          "drop --deploy (those two are always quantized in their deployed form)")
    if cfg.amp_level != "O0":
        raise ConfigError(f"QAT runs in float32: drop --amp_level {cfg.amp_level} (use O0)")
    if cfg.qat_calib_batches < 1 and not cfg.resume:
        raise ConfigError(f"--qat_calib_batches must be >= 1 (activation ranges start from a calibration pass), "
                          f"got {cfg.qat_calib_batches}")
    for key in ("qat_freeze_bn_epochs", "qat_freeze_observer_epochs"):
        if cfg[key] < 0:
            raise ConfigError(f"--{key} must be >= 0, got {cfg[key]}")
    if cfg.pretrained and os.path.isfile(cfg.pretrained):
        record = read_checkpoint(cfg.pretrained)[1]
        if (record or {}).get("form") == "deploy" and not has_deploy_form(cfg.model):
            raise ConfigError(f"--pretrained {cfg.pretrained} is a deployed (re-parameterized) checkpoint, which "
                              f"only RepGhostNet and GhostNetV3 have; {cfg.model} needs its train-form checkpoint")
    QuantScheme.from_config(cfg)  # validates quant_keep_float, qat_observer_decay, qat_quant_delay


def qat_eval_network(eval_net, cfg):
    """The validation copy of the QAT network (same structure and parameter names; weights copied per epoch)."""
    return quantize_network(eval_net, QuantScheme.from_config(cfg))


def qat_epoch_start(net, epoch, cfg, log):
    """Freeze the observers and the folded BatchNorms when their epoch comes (0-based ``epoch``)."""
    observe = epoch < cfg.qat_freeze_observer_epochs
    frozen = cfg.freeze_bn or epoch >= cfg.qat_freeze_bn_epochs
    set_observing(net, observe)
    set_bn_frozen(net, frozen)
    log.info("QAT epoch %d: observers %s, BatchNorm %s", epoch + 1, "tracking" if observe else "frozen",
             "frozen (running statistics)" if frozen else "batch statistics")


def qat_record(cfg, class_names):
    """The model record of QAT checkpoints: form ``qat`` with the scheme."""
    scheme = QuantScheme.from_config(cfg)
    return make_record(cfg, "qat", class_names, quant={
        "per_channel": scheme.per_channel, "keep_float": list(scheme.keep_float), "weights": "int8 symmetric",
        "weight_qmax": W_QMAX, "activations": "uint8 asymmetric per tensor"})
