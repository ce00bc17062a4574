"""``eval.py``: top-1/top-5 (and per-class accuracy) of a checkpoint or an exported MINDIR / ONNX / ``.ms`` file.

Every model file is opened by :func:`src.flows.model.open_model`, so eval.py and infer.py run a model the same way
and read the same facts from it: the class count, input size and preprocessing it carries, refusing flags or
datasets that contradict them (:mod:`src.record`).
"""
import json
import os

from src.data import create_dataset, describe_dataset, rank_data_path
from src.deploy.infer import predict
from src.deploy.runtimes import CellRunner
from src.errors import ConfigError
from src.files import atomic_write, ensure_dir
from src.record import check_classes
from src.runtime import init_context
from src.train.metrics import evaluate

from .model import open_model

CELL_FORMS = {"qat": "fake-quant int8, QAT checkpoint", "deploy": "deploy form", "train": "train form"}


def describe(runner, path):
    """What is evaluated: the file kind and, for a checkpoint, its form (an int8 file says so)."""
    if isinstance(runner, CellRunner):
        return CELL_FORMS[runner.form]
    kind = os.path.splitext(path)[1][1:].upper()
    return f"{kind}, int8" if (runner.record or {}).get("form") == "int8" else kind


def evaluate_main(cfg):
    """Evaluate ``cfg.ckpt_file`` on the configured split and print (and save) the metrics."""
    if not cfg.ckpt_file:
        raise ConfigError("--ckpt_file is required (.ckpt, .mindir, .onnx or .ms)")
    if not cfg.data_path:
        raise ConfigError("--data_path is required (dataset root directory)")
    if cfg.batch_size < 1:
        raise ConfigError(f"--batch_size must be >= 1, got {cfg.batch_size}")
    init_context(cfg)
    runner = open_model(cfg, cfg.ckpt_file)
    data_path = rank_data_path(cfg.data_path)
    ds, class_names = create_dataset(cfg.dataset, data_path, cfg.split, image_size=cfg.image_size,
                                     batch_size=cfg.batch_size, training=False, drop_remainder=False,
                                     num_workers=cfg.num_workers, crop_pct=cfg.crop_pct,
                                     interpolation=cfg.interpolation, mean=cfg.mean, std=cfg.std,
                                     cache_dir=cfg.cache_dir)
    check_classes(cfg, class_names, runner.record)
    result = evaluate(lambda images: predict(runner, images.asnumpy()), ds, cfg.num_classes)
    print(f"{cfg.model} ({describe(runner, cfg.ckpt_file)}) on {describe_dataset(cfg.dataset, data_path)}, "
          f"split {cfg.split}: top-1 "
          f"{result['top1']:.4f}  top-5 {result['top5']:.4f}  ({result['count']} images)")
    if cfg.dataset == "pets":
        for name, acc in zip(class_names, result["per_class"]):
            print(f"  {name:<28} {acc:.4f}")
    ensure_dir(cfg.output_dir)
    result["class_names"] = class_names
    with atomic_write(os.path.join(cfg.output_dir, "eval_metrics.json"), "w") as f:
        json.dump(result, f, indent=1)
    return 0
