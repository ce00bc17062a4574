"""The training loop behind ``train.py``: data, model, optimizer, EMA, validation, checkpoints and resume."""
import hashlib
import logging
import os
import sys
import time

import mindspore as ms
import numpy as np
from mindspore import nn

from ..config import save_config
from ..errors import ConfigError, ProjectError
from ..data import create_dataset
from ..models import create_model, model_family
from ..runtime import init_context
from .checkpoint import load_for_finetune, load_train_state, params_as_list, rotate, save_atomic
from .distributed import init_distributed
from .metrics import MetricsLog, evaluate, plot_curves
from .schedule import warmup_cosine_lr
from .step import EMA, TrainStep, param_groups

INTERRUPTED = 3  # exit code of a run stopped by ``stop_after_steps``


class DivergedError(ProjectError, RuntimeError):
    """The loss or the weights became non-finite (usually a learning rate too high for the batch)."""


def get_logger(output_dir, rank):
    """Rank 0 logs to stdout and ``train.log``; other ranks only to ``train_rank<r>.log``."""
    log = logging.getLogger(f"ghostnet.train.{rank}")
    log.setLevel(logging.INFO)
    log.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    name = "train.log" if rank == 0 else f"train_rank{rank}.log"
    handlers = [logging.FileHandler(os.path.join(output_dir, name))]
    if rank == 0:
        handlers.append(logging.StreamHandler(sys.stdout))
    for h in handlers:
        h.setFormatter(fmt)
        log.addHandler(h)
    return log


def check_train_config(cfg):
    """Reject values that would fail later or silently do nothing."""
    for key in ("epochs", "batch_size", "ckpt_interval", "log_interval"):
        if cfg[key] < 1:
            raise ConfigError(f"--{key} must be >= 1, got {cfg[key]}")
    if cfg.lr <= 0:
        raise ConfigError(f"--lr must be > 0, got {cfg.lr}")
    if cfg.amp_level not in ("O0", "O1", "O2", "O3"):
        raise ConfigError(f"--amp_level must be O0, O1, O2 or O3, got {cfg.amp_level}")
    if cfg.deploy:
        raise ConfigError("training uses the train form; drop --deploy (re-parameterize at export or eval time)")
    if not cfg.data_path:
        raise ConfigError("--data_path is required (dataset root directory)")
    model_family(cfg.model)


def data_kwargs(cfg):
    """Keyword arguments of :func:`create_dataset` shared by train and validation sets."""
    return {"image_size": cfg.image_size, "num_workers": cfg.num_workers, "crop_pct": cfg.crop_pct,
            "interpolation": cfg.interpolation, "mean": cfg.mean, "std": cfg.std}


def train(cfg):
    """Run a full training job from a resolved config; returns the process exit code."""
    check_train_config(cfg)
    init_context(cfg)
    rank, world = init_distributed(cfg)
    if "{rank}" in cfg.data_path:  # per-rank local copies of the data, e.g. /local/ssd{rank}/imagenet
        cfg.data_path = cfg.data_path.format(rank=rank)
    os.makedirs(cfg.output_dir, exist_ok=True)
    log = get_logger(cfg.output_dir, rank)
    shards = {"num_shards": world, "shard_id": rank} if world > 1 else {}

    def train_set(epoch):
        return create_dataset(cfg.dataset, cfg.data_path, "train", batch_size=cfg.batch_size,
                              training=cfg.random_crop, shuffle=cfg.shuffle, seed=cfg.seed + epoch,
                              hflip=cfg.hflip, color_jitter=cfg.color_jitter, auto_augment=cfg.auto_augment,
                              re_prob=cfg.re_prob, drop_remainder=True, **shards, **data_kwargs(cfg))

    train_ds, class_names = train_set(0)
    if len(class_names) != cfg.num_classes:
        raise ConfigError(f"the dataset has {len(class_names)} classes but num_classes={cfg.num_classes}; "
                          f"pass --num_classes {len(class_names)}")
    steps = train_ds.get_dataset_size()
    if cfg.max_steps_per_epoch:
        steps = min(steps, cfg.max_steps_per_epoch)
    if steps == 0:
        raise ConfigError(f"the training set gives no full batch of {cfg.batch_size}; lower --batch_size")
    val_ds = None
    if cfg.eval_interval and rank == 0:  # rank 0 validates on the whole set; the others go on training
        val_split = "test" if cfg.dataset == "pets" else "val"
        val_ds, _ = create_dataset(cfg.dataset, cfg.data_path, val_split, batch_size=cfg.batch_size,
                                   training=False, drop_remainder=False, **data_kwargs(cfg))

    net = create_model(cfg.model, num_classes=cfg.num_classes, dropout=cfg.dropout)
    if cfg.pretrained:
        load_for_finetune(net, cfg.pretrained, log)
    if cfg.freeze_bn:
        freeze_batchnorm(net)
    if cfg.amp_level != "O0":
        net = ms.amp.auto_mixed_precision(net, cfg.amp_level)
    loss_scale = cfg.loss_scale if cfg.amp_level != "O0" else 1.0
    lr = cfg.lr * (world if cfg.scale_lr else 1)
    warmup_lr = cfg.warmup_lr * (world if cfg.scale_lr else 1)
    rates = warmup_cosine_lr(lr, cfg.min_lr, warmup_lr, cfg.warmup_epochs, cfg.epochs, steps)
    optimizer = nn.Momentum(param_groups(net, cfg.weight_decay), learning_rate=ms.Tensor(rates),
                            momentum=cfg.momentum, use_nesterov=cfg.nesterov, loss_scale=loss_scale)
    ema = EMA(net.get_parameters(), cfg.ema_decay) if cfg.ema else None
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    step_cell = TrainStep(nn.WithLossCell(net, loss_fn), optimizer, loss_scale, cfg.clip_grad_norm, ema)
    step_cell.set_train(True)
    start_epoch = load_train_state(step_cell, cfg.resume) if cfg.resume else 0
    if cfg.resume:
        log.info("resumed from %s at epoch %d (step %d, lr %.6g)", cfg.resume, start_epoch,
                 int(optimizer.global_step.asnumpy()), rates[min(start_epoch * steps, len(rates) - 1)])
    eval_net = create_model(cfg.model, num_classes=cfg.num_classes) if val_ds is not None else None
    if eval_net is not None:
        eval_net.set_train(False)

    if rank == 0:
        save_config(cfg, os.path.join(cfg.output_dir, "config.yaml"), "train")
        with open(os.path.join(cfg.output_dir, "class_names.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(class_names) + "\n")
    metrics = MetricsLog(os.path.join(cfg.output_dir, "metrics.jsonl"))
    log.info("training %s on %s: %d classes, %d steps/epoch x %d epochs, batch %d x %d device(s)", cfg.model,
             cfg.dataset, cfg.num_classes, steps, cfg.epochs, cfg.batch_size, world)
    best = max([r.get("val_top1") or 0.0 for r in metrics.read()] + [0.0])
    run_start = time.time()
    for epoch in range(start_epoch, cfg.epochs):
        ds = train_ds if epoch == 0 else train_set(epoch)[0]
        epoch_start, losses, tick = time.time(), [], time.time()
        for i, (images, labels) in enumerate(ds.create_tuple_iterator(num_epochs=1)):
            if i >= steps:
                break
            loss = float(step_cell(images, labels).asnumpy())
            losses.append(loss)
            global_step = epoch * steps + i + 1
            if (i + 1) % cfg.log_interval == 0 or i + 1 == steps:
                since = (i + 1) - (i // cfg.log_interval) * cfg.log_interval  # steps in this interval
                ips = cfg.batch_size * world * since / max(time.time() - tick, 1e-9)
                tick = time.time()
                log.info("epoch %d/%d step %d/%d loss %.4f lr %.6g %.1f img/s", epoch + 1, cfg.epochs, i + 1,
                         steps, loss, rates[global_step - 1], ips)
            if cfg.stop_after_steps and global_step >= cfg.stop_after_steps:
                log.info("stopping after %d steps (stop_after_steps): simulated interruption", global_step)
                logging.shutdown()
                os._exit(INTERRUPTED)
        bad = [p.name for p in net.trainable_params() if not np.isfinite(p.asnumpy()).all()]
        if not losses or not np.isfinite(losses).all() or bad:
            raise DivergedError(f"training diverged in epoch {epoch + 1} (loss {losses[-1] if losses else None}, "
                               f"non-finite weights: {', '.join(bad[:3]) or 'none'}); lower --lr")
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "lr": float(rates[global_step - 1]),
                  "epoch_time": time.time() - epoch_start}
        done = epoch + 1
        if val_ds is not None and (done % cfg.eval_interval == 0 or done == cfg.epochs):
            record.update(validate(net, eval_net, ema, val_ds, cfg.num_classes))
        eta = (time.time() - run_start) / (done - start_epoch) * (cfg.epochs - done)
        log.info("epoch %d done in %.1fs, loss %.4f%s, ETA %.0fs", done, record["epoch_time"], record["train_loss"],
                 "".join(f", {k} {record[k]:.4f}" for k in ("val_top1", "val_top5", "ema_top1") if k in record), eta)
        if rank == 0:
            best = save_epoch(cfg, net, ema, step_cell, record, best, log)
            metrics.append(record)
    log.info("rank %d trainable-parameter digest %s", rank, parameter_digest(net))
    if rank == 0:
        plot_curves(metrics.read(), os.path.join(cfg.output_dir, "curves.png"))
        log.info("done%s; outputs in %s", f": best val top-1 {best:.4f}" if val_ds is not None else "", cfg.output_dir)
    return 0


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


def save_epoch(cfg, net, ema, step_cell, record, best, log):
    """Periodic model (and EMA) checkpoints, best.ckpt by validation top-1, and the resumable training state."""
    epoch = record["epoch"]
    out = cfg.output_dir
    if epoch % cfg.ckpt_interval == 0 or epoch == cfg.epochs:
        save_atomic(net, os.path.join(out, f"{cfg.model}-e{epoch:04d}.ckpt"))
        rotate(os.path.join(out, f"{cfg.model}-e[0-9][0-9][0-9][0-9].ckpt"), cfg.keep_checkpoints)
        if ema is not None:
            save_atomic(params_as_list(_ema_named(ema)), os.path.join(out, f"{cfg.model}-e{epoch:04d}-ema.ckpt"))
            rotate(os.path.join(out, f"{cfg.model}-e[0-9][0-9][0-9][0-9]-ema.ckpt"), cfg.keep_checkpoints)
    candidates = [(record.get("val_top1"), "weights", None), (record.get("ema_top1"), "EMA weights", ema)]
    for top1, what, source in candidates:
        if top1 is not None and top1 > best:
            best = top1
            target = net if source is None else params_as_list(_ema_named(source))
            save_atomic(target, os.path.join(out, "best.ckpt"))
            log.info("new best val top-1 %.4f (%s) -> best.ckpt", top1, what)
    record["best_top1"] = best
    save_atomic(step_cell, os.path.join(out, "last_state.ckpt"), append_dict={"epoch": epoch})
    return best
