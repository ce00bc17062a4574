"""``train.py``: one training run (float, or quantization-aware with ``--qat true``) from a resolved configuration.

The run reads as its steps (:mod:`src.train.trainer`): check the request before anything is written, set up the
context and the data-parallel ranks, load the distillation teacher (if any), build the data and the model, open the
outputs, run the epochs, finish.
"""
import os

from src.runtime import init_context
from src.train.distill import load_teacher
from src.train.distributed import init_distributed
from src.train.metrics import plot_curves
from src.train.trainer import (INTERRUPTED, Interrupted, RunLog, build_data, build_model, check_output_dir,
                               check_resume_epochs, check_train_config, open_outputs, parameter_digest,
                               read_resume_state, run_epochs)


def train(cfg):
    """Run a full training job from a resolved config; returns the process exit code."""
    check_train_config(cfg)
    init_context(cfg)
    rank, world = init_distributed(cfg)
    run_log = RunLog(rank)
    try:
        check_output_dir(cfg, bool(cfg.resume))
        resume_params, start_epoch, best = read_resume_state(cfg.resume) if cfg.resume else (None, 0, 0.0)
        check_resume_epochs(cfg.resume, start_epoch, cfg.epochs)
        teacher = load_teacher(cfg, run_log.log) if cfg.teacher_ckpt else None  # refused before the data scan
        data = build_data(cfg, rank, world, start_epoch)
        model = build_model(cfg, data, rank, world, run_log.log, resume_params, teacher)
        metrics = open_outputs(cfg, rank, run_log, data.class_names, start_epoch)
        log = run_log.log
        if cfg.resume:
            log.info("resumed from %s at epoch %d (step %d, lr %.6g, best val top-1 %.4f)", cfg.resume, start_epoch,
                     int(model.optimizer.global_step.asnumpy()),
                     model.rates[min(start_epoch * data.steps, len(model.rates) - 1)], best)
        log.info("training %s on %s: %d classes, %d steps/epoch x %d epochs, batch %d x %d device(s)", cfg.model,
                 data.name, cfg.num_classes, data.steps, cfg.epochs, cfg.batch_size, world)
        best = run_epochs(cfg, rank, world, data, model, metrics, log, start_epoch, best)
        log.info("rank %d trainable-parameter digest %s", rank, parameter_digest(model.net))
        if rank == 0:
            plot_curves(metrics.read(), os.path.join(cfg.output_dir, "curves.png"))
            log.info("done%s; outputs in %s", f": best val top-1 {best:.4f}" if data.val is not None else "",
                     cfg.output_dir)
        return 0
    except Interrupted:
        return INTERRUPTED
    finally:
        run_log.close()
