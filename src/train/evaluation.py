"""``eval.py``: top-1/top-5 (and per-class accuracy) of a checkpoint or an exported MINDIR."""
import json
import os

from ..errors import ConfigError, DataError
from ..data import create_dataset
from ..deploy.infer import predict
from ..deploy.runtimes import MindirRunner, build_cell
from ..models import model_family
from ..runtime import init_context
from .metrics import evaluate


def load_network(cfg, ckpt_file):
    """A callable ``images -> logits`` for ``ckpt_file`` and a description of its form.

    MINDIR files and checkpoints go through the deploy runtimes (fixed-batch padding, RepGhost form detection and
    ``--deploy`` conversion live there), so eval.py and infer.py run a model the same way.
    """
    if not os.path.isfile(ckpt_file):
        raise DataError(f"checkpoint not found: {ckpt_file}")
    if ckpt_file.endswith(".mindir"):
        runner = MindirRunner(ckpt_file)
        return lambda images: predict(runner, images.asnumpy()), "MINDIR"
    net = build_cell(cfg, ckpt_file)
    deployed = model_family(cfg.model) == "repghostnet" and not any(
        ".fusion_bn." in name for name, _ in net.parameters_and_names())
    return net, "deploy form" if deployed else "train form"


def evaluate_main(cfg):
    """Evaluate ``cfg.ckpt_file`` on the configured split and print (and save) the metrics."""
    if not cfg.ckpt_file:
        raise ConfigError("--ckpt_file is required (.ckpt or .mindir)")
    if not cfg.data_path:
        raise ConfigError("--data_path is required (dataset root directory)")
    if cfg.batch_size < 1:
        raise ConfigError(f"--batch_size must be >= 1, got {cfg.batch_size}")
    init_context(cfg)
    split = cfg.split if not (cfg.dataset == "pets" and cfg.split == "val") else "test"
    ds, class_names = create_dataset(cfg.dataset, cfg.data_path, split, image_size=cfg.image_size,
                                     batch_size=cfg.batch_size, training=False, drop_remainder=False,
                                     num_workers=cfg.num_workers, crop_pct=cfg.crop_pct,
                                     interpolation=cfg.interpolation, mean=cfg.mean, std=cfg.std)
    if len(class_names) != cfg.num_classes:
        raise ConfigError(f"the dataset has {len(class_names)} classes but num_classes={cfg.num_classes}; "
                          f"pass --num_classes {len(class_names)}")
    net, form = load_network(cfg, cfg.ckpt_file)
    result = evaluate(net, ds, cfg.num_classes)
    print(f"{cfg.model} ({form}) on {cfg.dataset}/{split}: top-1 {result['top1']:.4f}  top-5 {result['top5']:.4f}  "
          f"({result['count']} images)")
    if cfg.dataset == "pets":
        for name, acc in zip(class_names, result["per_class"]):
            print(f"  {name:<28} {acc:.4f}")
    os.makedirs(cfg.output_dir, exist_ok=True)
    result["class_names"] = class_names
    with open(os.path.join(cfg.output_dir, "eval_metrics.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    return 0
