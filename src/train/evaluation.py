"""``eval.py``: top-1/top-5 (and per-class accuracy) of a checkpoint or an exported MINDIR."""
import json
import os

import mindspore as ms
import numpy as np
from mindspore import nn

from ..config import ConfigError
from ..data import create_dataset
from ..models import create_model, load_checkpoint_strict, model_family, reparameterize
from ..runtime import init_context
from .metrics import evaluate


class PaddedBatch:
    """Calls a fixed-batch MINDIR graph on a possibly smaller last batch by zero-padding it, then slicing."""

    def __init__(self, graph, batch_size):
        self.graph, self.batch_size = graph, batch_size

    def set_train(self, mode=False):
        del mode

    def __call__(self, images):
        n = images.shape[0]
        if n < self.batch_size:
            pad = np.zeros((self.batch_size - n,) + tuple(images.shape[1:]), np.float32)
            images = ms.Tensor(np.concatenate([images.asnumpy(), pad]))
        return self.graph(images).asnumpy()[:n]


def load_network(cfg, ckpt_file):
    """A Cell for ``ckpt_file``: MINDIR -> GraphCell; RepGhost checkpoints in the form they were saved, converted to
    the deploy form when ``--deploy`` is given (same numbers either way)."""
    if not os.path.isfile(ckpt_file):
        raise FileNotFoundError(f"checkpoint not found: {ckpt_file}")
    if ckpt_file.endswith(".mindir"):
        return PaddedBatch(nn.GraphCell(ms.load(ckpt_file)), cfg.batch_size), "MINDIR"
    family = model_family(cfg.model)
    saved_deploy = family == "repghostnet" and not any(".fusion_bn." in k for k in ms.load_checkpoint(ckpt_file))
    net = create_model(cfg.model, num_classes=cfg.num_classes,
                       **({"deploy": saved_deploy} if family == "repghostnet" else {}))
    load_checkpoint_strict(net, ckpt_file)
    if cfg.deploy and family == "repghostnet" and not saved_deploy:
        reparameterize(net)
    form = "deploy form" if family == "repghostnet" and (cfg.deploy or saved_deploy) else "train form"
    return net, form


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
