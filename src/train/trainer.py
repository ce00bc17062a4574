"""The steps of a training run; ``train.py``'s flow (:func:`src.flows.train.train`) reads as them: check the
request (before anything is written), build the data, build the model and its training step, open the outputs,
run the epochs, finish. A new run never mixes with an old one: a used output directory is refused unless the run
resumes from it.
"""
import hashlib
import logging
import logging.handlers
import math
import os
import sys
import time
from dataclasses import dataclass
from itertools import islice

import mindspore as ms
import numpy as np
from mindspore import nn

from ..config import save_config
from ..data import create_dataset, describe_dataset, rank_data_path
from ..errors import ConfigError, DataError, OutputError, ProjectError
from ..files import atomic_write, ensure_dir, remove_stale_temps
from ..models import check_input_size, create_model, read_checkpoint, write_checkpoint
from ..quant import training as qat
from ..quant.calibrate import calibrate
from ..quant.qat import QuantScheme, is_qat_checkpoint, quantize_network, set_bn_frozen
from ..record import check_classes, make_record
from .checkpoint import (in_checkpoint_form, load_for_finetune, load_train_state, params_as_list, rotate,
                         state_parameters)
from .distill import check_distill_config, check_teacher_classes, loss_cell
from .dropout import attach_step_clock, use_step_dropout
from .metrics import MetricsLog, evaluate
from .schedule import warmup_cosine_lr
from .step import EMA, OPTIMIZERS, LossSum, TrainStep, epoch_loss, loss_scale_sense, make_optimizer

INTERRUPTED = 3  # exit code of a run stopped by ``stop_after_steps``
DROPOUT_RANK_STRIDE = 7919  # dropout seeds of data-parallel ranks: seed, seed + 7919, ...
RUN_FILES = ("last_state.ckpt", "metrics.jsonl", "best.ckpt")  # an output directory holding one of these is used


class DivergedError(ProjectError, RuntimeError):
    """The loss or the weights became non-finite (usually a learning rate too high for the batch)."""


class Interrupted(Exception):
    """``stop_after_steps`` was reached: the run ends here with exit code :data:`INTERRUPTED`."""


class RunLog:
    """The ``ghostnet`` logger of one training process (the data pipeline logs to its child ``ghostnet.data``).

    Rank 0 logs to stdout and ``train.log``, rank r only to ``train_rank<r>.log``. Until the output directory is
    known to be usable, records wait in memory, so a run refused for bad input leaves no log file behind.
    """

    def __init__(self, rank):
        self.rank = rank
        self.log = logging.getLogger("ghostnet")
        self.log.setLevel(logging.INFO)
        self.fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
        self.handlers = []
        if rank == 0:
            self._add(logging.StreamHandler(sys.stdout))
        self.buffer = self._add(logging.handlers.MemoryHandler(capacity=1 << 20, flushLevel=logging.CRITICAL + 1))

    def _add(self, handler):
        handler.setFormatter(self.fmt)
        self.log.addHandler(handler)
        self.handlers.append(handler)
        return handler

    def open_file(self, output_dir):
        """Start ``train.log`` (or ``train_rank<r>.log``) with every record logged so far."""
        name = "train.log" if self.rank == 0 else f"train_rank{self.rank}.log"
        handler = self._add(logging.FileHandler(os.path.join(output_dir, name), encoding="utf-8"))
        self.buffer.setTarget(handler)
        self.buffer.flush()
        self.close_handler(self.buffer)

    def close_handler(self, handler):
        self.log.removeHandler(handler)
        self.handlers.remove(handler)
        handler.close()

    def close(self):
        for handler in list(self.handlers):
            self.close_handler(handler)


@dataclass
class Data:
    train: object
    val: object
    class_names: list
    steps: int
    name: str


@dataclass
class Model:
    net: object
    eval_net: object
    step: object
    optimizer: object
    ema: object
    rates: np.ndarray


def check_train_config(cfg):
    """Reject values that would fail later or silently do nothing (nothing has been written yet)."""
    for key in ("epochs", "batch_size", "ckpt_interval", "log_interval"):
        if cfg[key] < 1:
            raise ConfigError(f"--{key} must be >= 1, got {cfg[key]}")
    if cfg.lr <= 0:
        raise ConfigError(f"--lr must be > 0, got {cfg.lr}")
    if cfg.amp_level not in ("O0", "O1", "O2", "O3"):
        raise ConfigError(f"--amp_level must be O0, O1, O2 or O3, got {cfg.amp_level}")
    if cfg.optimizer not in OPTIMIZERS:
        raise ConfigError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {cfg.optimizer}")
    if cfg.loss_scale_type not in ("dynamic", "static"):
        raise ConfigError(f"--loss_scale_type must be dynamic or static, got {cfg.loss_scale_type}")
    qat.check_qat_config(cfg)
    check_distill_config(cfg)
    if cfg.deploy and not cfg.qat:
        raise ConfigError("training uses the train form; drop --deploy (re-parameterize at export or eval time)")
    if cfg.data_sink and cfg.device_target == "CPU":
        raise ConfigError("--data_sink needs Ascend or GPU (MindSpore sinks data only to devices); drop it on CPU")
    if not cfg.data_path:
        raise ConfigError("--data_path is required (dataset root directory)")
    for key in ("pretrained", "resume"):
        if cfg[key] and not os.path.isfile(cfg[key]):
            raise DataError(f"{key} checkpoint not found: {cfg[key]}")
    check_input_size(cfg.model, cfg.image_size)


def check_output_dir(cfg, resuming):
    """A new run needs an output directory no other run has written to; a resumed run continues its own."""
    out = cfg.output_dir
    if os.path.exists(out) and not os.path.isdir(out):
        raise OutputError(f"--output_dir {out} exists and is not a directory; choose another output path")
    used = [f for f in RUN_FILES if os.path.exists(os.path.join(out, f))]
    if used and not resuming:
        raise OutputError(f"--output_dir {out} already holds a run ({used[0]}); continue it with --resume "
                          f"{os.path.join(out, 'last_state.ckpt')} or choose a fresh --output_dir")


def check_resume_epochs(path, start_epoch, epochs):
    """A training state that already holds every epoch has nothing left to resume."""
    if start_epoch >= epochs:
        raise ConfigError(f"--resume {path} already finished {start_epoch} epochs (--epochs {epochs}); raise "
                          "--epochs to train further, or start a new run in a fresh --output_dir")


def read_resume_state(path):
    """``(params, epoch, best_top1)`` of a training-state checkpoint written by :func:`save_epoch`."""
    params, _ = read_checkpoint(path)
    if "epoch" not in params:
        raise DataError(f"{path} is a model checkpoint, not a training state; resume from last_state.ckpt")
    epoch = int(params.pop("epoch").asnumpy())
    best = params.pop("best_top1", None)
    return params, epoch, (float(best.asnumpy()) if best is not None else 0.0)


def build_data(cfg, rank, world, start_epoch):
    """Training set (this rank's shard, shuffled per epoch), validation set (rank 0), class names, steps."""
    shards = {"num_shards": world, "shard_id": rank} if world > 1 else {}
    path = rank_data_path(cfg.data_path, rank)
    common = {"image_size": cfg.image_size, "num_workers": cfg.num_workers, "crop_pct": cfg.crop_pct,
              "interpolation": cfg.interpolation, "mean": cfg.mean, "std": cfg.std, "cache_dir": cfg.cache_dir}
    train_ds, class_names = create_dataset(
        cfg.dataset, path, "train", batch_size=cfg.batch_size, training=True, shuffle=cfg.shuffle,
        seed=cfg.seed, start_epoch=start_epoch, random_crop=cfg.random_crop, hflip=cfg.hflip,
        color_jitter=cfg.color_jitter, auto_augment=cfg.auto_augment, re_prob=cfg.re_prob, drop_remainder=True,
        max_steps=cfg.max_steps_per_epoch or None, **shards, **common)
    check_classes(cfg, class_names, training=True)
    steps = train_ds.get_dataset_size()
    if steps == 0:
        raise ConfigError(f"the training set gives no full batch of {cfg.batch_size}; lower --batch_size")
    val_ds = None
    if cfg.eval_interval and rank == 0:  # rank 0 validates on the whole set; the others go on training
        val_ds, _ = create_dataset(cfg.dataset, path, "val", batch_size=cfg.batch_size, training=False,
                                   drop_remainder=False, **common)
    return Data(train_ds, val_ds, class_names, steps, describe_dataset(cfg.dataset, path))


def build_model(cfg, data, rank, world, log, resume_params, teacher=None):
    """Network (fine-tuned / frozen BN / AMP as asked), optimizer with the per-step LR, EMA, training step and a
    separate evaluation network; a resumed run restores every parameter and optimizer slot. With ``--qat`` both
    networks are the fake-quant ones (:func:`prepare_qat`), calibrated on training batches unless resumed. With a
    ``teacher`` (:func:`src.train.distill.load_teacher`) the step trains on the distillation loss; the teacher
    stays out of the optimizer, the EMA and the gradients (its dataset classes are checked here)."""
    if teacher is not None:
        check_teacher_classes(cfg, teacher, data.class_names)
    net = create_model(cfg.model, num_classes=cfg.num_classes, dropout=cfg.dropout)
    if cfg.qat:
        net = prepare_qat(net, cfg, None if resume_params is not None else data.train, log)
    elif cfg.pretrained:
        load_for_finetune(net, cfg.pretrained, log, cfg.model)
    if cfg.freeze_bn:
        freeze_batchnorm(net)
    use_step_dropout(net, cfg.seed + DROPOUT_RANK_STRIDE * rank)  # each rank its own masks, each step again
    if cfg.amp_level != "O0":
        net = ms.amp.auto_mixed_precision(net, cfg.amp_level)
    scale = world if cfg.scale_lr else 1
    rates = warmup_cosine_lr(cfg.lr * scale, cfg.min_lr, cfg.warmup_lr * scale, cfg.warmup_epochs, cfg.epochs,
                             data.steps)
    optimizer = make_optimizer(cfg, net, rates)
    attach_step_clock(net, optimizer.global_step)
    ema = EMA(net.get_parameters(), cfg.ema_decay) if cfg.ema else None
    step = TrainStep(loss_cell(net, teacher, cfg), optimizer,
                     loss_scale_sense(cfg.amp_level, cfg.loss_scale_type, cfg.loss_scale), cfg.clip_grad_norm, ema)
    step.set_train(True)
    if resume_params is not None:
        load_train_state(step, resume_params, cfg.resume)
    eval_net = None
    if data.val is not None:
        eval_net = create_model(cfg.model, num_classes=cfg.num_classes)
        if cfg.qat:
            eval_net = qat.qat_eval_network(eval_net, cfg)
        eval_net.set_train(False)
    return Model(net, eval_net, step, optimizer, ema, rates)


def open_outputs(cfg, rank, run_log, class_names, start_epoch):
    """Create the output directory, start the log file; on rank 0 remove temporaries a killed save left, write
    config.yaml and class_names.txt; return the metrics log, cut back to ``start_epoch`` so a resumed run never
    repeats an epoch."""
    ensure_dir(cfg.output_dir)
    run_log.open_file(cfg.output_dir)
    metrics = MetricsLog(os.path.join(cfg.output_dir, "metrics.jsonl"))
    if rank == 0:  # the only writer of atomic files here: another rank could delete its live temporaries
        remove_stale_temps(cfg.output_dir)
        save_config(cfg, os.path.join(cfg.output_dir, "config.yaml"), "train")
        with atomic_write(os.path.join(cfg.output_dir, "class_names.txt"), "w") as f:
            f.write("\n".join(class_names) + "\n")
        metrics.truncate(start_epoch)
    return metrics


def prepare_qat(net, cfg, train_ds, log):
    """The QAT network of float ``net``: ``--pretrained`` loaded, quantized, calibrated on ``train_ds`` (skipped
    when ``train_ds`` is None, i.e. on resume, or when the pretrained checkpoint is already QAT). A new QAT run
    without ``--pretrained`` is allowed (smoke tests) but logs a warning: it quantizes a random network."""
    params, record = read_checkpoint(cfg.pretrained) if cfg.pretrained else ({}, None)
    qat_pretrained = bool(params) and is_qat_checkpoint(params, record)
    if params and not qat_pretrained:
        in_checkpoint_form(net, cfg.model, params)
        load_for_finetune(net, cfg.pretrained, log, cfg.model)
    scheme = QuantScheme.from_config(cfg)
    quantize_network(net, scheme)
    if qat_pretrained:
        load_for_finetune(net, cfg.pretrained, log, cfg.model)
        log.info("QAT: continuing from the quantization-aware checkpoint %s", cfg.pretrained)
    elif train_ds is not None:
        if not params:
            log.warning("QAT without --pretrained: quantizing a randomly initialised %s (QAT fine-tunes a trained "
                        "network; pass --pretrained CKPT)", cfg.model)
        batches = (images for images, _ in train_ds.create_tuple_iterator(num_epochs=1))
        count = calibrate(net, islice(batches, cfg.qat_calib_batches), cfg.quant_calib_method)
        log.info("QAT: %s; activation ranges calibrated on %d training batches", scheme.describe(), count)
    if cfg.freeze_bn:
        set_bn_frozen(net, True)
    return net


def step_stream(cfg, data, model, epochs):
    """Per epoch, a generator of ``(steps done in the epoch, last loss Tensor, epoch loss sum Tensor or None)``.

    Host mode runs one step per batch of a single dataset iterator built once for the run. Sink mode (Ascend/GPU)
    runs ``gcd(steps, log_interval)`` steps per call on the device, which also sums every step's loss
    (:class:`LossSum`, reset per epoch). Neither reads a value back to the host.
    """
    if cfg.data_sink:
        size = math.gcd(data.steps, cfg.log_interval)
        summed = LossSum(model.step)
        sink = ms.data_sink(summed, data.train, sink_size=size)

        def epoch():
            summed.total.set_data(ms.Tensor(0.0, ms.float32))
            return (((k + 1) * size, *sink()) for k in range(data.steps // size))
        return epoch
    iterator = data.train.create_tuple_iterator(num_epochs=epochs)
    return lambda: ((i + 1, model.step(images, labels), None) for i, (images, labels) in enumerate(iterator))


def run_epochs(cfg, rank, world, data, model, metrics, log, start_epoch, best):
    """Train from ``start_epoch``; validate and checkpoint after each epoch; returns the best val top-1."""
    epochs = step_stream(cfg, data, model, cfg.epochs - start_epoch)
    run_start = time.time()
    for epoch in range(start_epoch, cfg.epochs):
        if cfg.qat:
            qat.qat_epoch_start(model.net, epoch, cfg, log)
        record = train_one_epoch(cfg, world, data, model, epochs(), epoch, log)
        done = epoch + 1
        if data.val is not None and (done % cfg.eval_interval == 0 or done == cfg.epochs):
            record.update(validate(model.net, model.eval_net, model.ema, data.val, cfg.num_classes))
        eta = (time.time() - run_start) / (done - start_epoch) * (cfg.epochs - done)
        log.info("epoch %d done in %.1fs, loss %.4f%s, ETA %.0fs", done, record["epoch_time"], record["train_loss"],
                 "".join(f", {k} {record[k]:.4f}" for k in ("val_top1", "val_top5", "ema_top1") if k in record), eta)
        if rank == 0:
            best = save_epoch(cfg, model, data.class_names, record, best, log)
            metrics.append(record)
    return best


def train_one_epoch(cfg, world, data, model, stream, epoch, log):
    """Run one epoch of the step stream; loss values reach the host only at log intervals and at the end."""
    start = tick = time.time()
    losses, total, last_logged, global_step = [], None, 0, epoch * data.steps
    for done, loss, total in stream:
        losses.append(loss)
        global_step = epoch * data.steps + done
        if done - last_logged >= cfg.log_interval or done == data.steps:
            ips = cfg.batch_size * world * (done - last_logged) / max(time.time() - tick, 1e-9)
            tick, last_logged = time.time(), done
            log.info("epoch %d/%d step %d/%d loss %.4f lr %.6g %.1f img/s%s", epoch + 1, cfg.epochs, done,
                     data.steps, float(loss.asnumpy()), model.rates[global_step - 1], ips, overflow_note(model.step))
        if cfg.stop_after_steps and global_step >= cfg.stop_after_steps:
            log.info("stopping after %d steps (stop_after_steps): simulated interruption", global_step)
            raise Interrupted
    values = np.array([float(loss.asnumpy()) for loss in losses])
    mean = epoch_loss(values, data.steps, None if total is None else total.asnumpy())
    bad = [p.name for p in model.net.trainable_params() if not np.isfinite(p.asnumpy()).all()]
    if not len(values) or not np.isfinite(values).all() or not np.isfinite(mean) or bad:
        raise DivergedError(f"training diverged in epoch {epoch + 1} (loss {values[-1] if len(values) else None}, "
                            f"non-finite weights: {', '.join(bad[:3]) or 'none'}); lower --lr")
    return {"epoch": epoch + 1, "train_loss": mean, "lr": float(model.rates[global_step - 1]),
            "epoch_time": time.time() - start, "overflow_steps": int(model.step.overflows.asnumpy())}


def overflow_note(step):
    """``, N overflow steps skipped (loss scale S)`` once loss scaling has skipped a step, else nothing."""
    count = int(step.overflows.asnumpy())
    return f", {count} overflow steps skipped (loss scale {float(step.scale_sense.asnumpy()):g})" if count else ""


def freeze_batchnorm(net):
    """Make every BatchNorm use its moving statistics while training (its affine parameters still train).

    For fine-tuning with small per-device batches; it also makes N data-parallel workers of batch b compute exactly
    what one worker of batch N*b computes, as BN statistics no longer depend on the batch.
    """
    for _, cell in net.cells_and_names():
        if isinstance(cell, nn.BatchNorm2d):
            cell.use_batch_statistics = False


def parameter_digest(net):
    """Short SHA-256 of all trainable parameters: equal digests = bit-identical weights (data-parallel check)."""
    h = hashlib.sha256()
    for param in net.trainable_params():
        h.update(param.asnumpy().tobytes())
    return h.hexdigest()[:16]


def _copy_into(eval_net, named_tensors):
    ms.load_param_into_net(eval_net, {n: ms.Parameter(t.copy() if hasattr(t, "copy") else t, name=n)
                                      for n, t in named_tensors}, strict_load=True)


def _ema_named(ema):
    return [(p.name[len("ema."):], p) for p in ema.shadow]


def validate(net, eval_net, ema, val_ds, num_classes):
    """Top-1/top-5 of the current weights and, with EMA, of the averaged weights (on a separate eval net)."""
    _copy_into(eval_net, net.parameters_and_names())
    result = evaluate(eval_net, val_ds, num_classes)
    record = {"val_top1": result["top1"], "val_top5": result["top5"]}
    if ema is not None:
        _copy_into(eval_net, _ema_named(ema))
        ema_result = evaluate(eval_net, val_ds, num_classes)
        record.update({"ema_top1": ema_result["top1"], "ema_top5": ema_result["top5"]})
    return record


def save_epoch(cfg, model, class_names, record, best, log):
    """Periodic model (and EMA) checkpoints, best.ckpt by validation top-1, and the resumable training state
    (which keeps the best score, so a resumed run never overwrites best.ckpt with a worse model). Every
    checkpoint carries the model record (:mod:`src.record`; form ``qat`` for QAT runs)."""
    epoch, out = record["epoch"], cfg.output_dir
    meta = qat.qat_record(cfg, class_names) if cfg.qat else make_record(cfg, "train", class_names)
    if epoch % cfg.ckpt_interval == 0 or epoch == cfg.epochs:
        write_checkpoint(model.net, os.path.join(out, f"{cfg.model}-e{epoch:04d}.ckpt"), meta)
        rotate(os.path.join(out, f"{cfg.model}-e[0-9][0-9][0-9][0-9].ckpt"), cfg.keep_checkpoints)
        if model.ema is not None:
            write_checkpoint(params_as_list(_ema_named(model.ema)),
                             os.path.join(out, f"{cfg.model}-e{epoch:04d}-ema.ckpt"), meta)
            rotate(os.path.join(out, f"{cfg.model}-e[0-9][0-9][0-9][0-9]-ema.ckpt"), cfg.keep_checkpoints)
    candidates = [(record.get("val_top1"), "weights", None), (record.get("ema_top1"), "EMA weights", model.ema)]
    for top1, what, source in candidates:
        if top1 is not None and top1 > best:
            best = top1
            target = model.net if source is None else params_as_list(_ema_named(source))
            write_checkpoint(target, os.path.join(out, "best.ckpt"), meta)
            log.info("new best val top-1 %.4f (%s) -> best.ckpt", top1, what)
    record["best_top1"] = best
    write_checkpoint(params_as_list((p.name, p) for p in state_parameters(model.step)),
                     os.path.join(out, "last_state.ckpt"), meta, {"epoch": epoch, "best_top1": float(best)})
    return best
