"""The model record, and the one place a model's facts are settled.

A record names the model and its form, the class count and names, and the input it expects (size, resize/crop,
normalisation). Checkpoints hold it as one JSON string entry (``ghostnet_record``); exported files get it beside
them as ``<file>.json`` (ONNX files also inside, as metadata). Files without a record work as before.

What a model *is* (name, class count, input size, preprocessing, class names) is settled here for every entry
point, from the flags, the configuration, the file's record and what an exported graph fixes
(:func:`reconcile`), and checked against a dataset (:func:`check_classes`), a pretrained checkpoint
(:func:`check_pretrained`) and a list of class names (:func:`label_names`). Values the user did not set come from
the file; a contradiction on what the file *is* (model, class count, the fixed input size of an exported graph) is
a one-line error; explicit preprocessing flags win.
"""
import json
import logging
import os

from .errors import ConfigError, DataError, DeployError
from .files import atomic_write

CKPT_KEY = "ghostnet_record"
VERSION = 1
IDENTITY_KEYS = ("model", "num_classes")          # what the weights are: must agree with the user's flags
PREPROCESS_KEYS = ("image_size", "crop_pct", "interpolation", "mean", "std")  # how to feed it: flags win
FORMS = ("train", "deploy", "qat", "int8")
log = logging.getLogger("ghostnet.deploy")


def make_record(cfg, form="train", class_names=None, **extra):
    """The record of a model built from ``cfg`` in ``form`` (train, deploy, qat or int8)."""
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}")
    record = {"version": VERSION, "model": cfg.model, "form": form, "num_classes": int(cfg.num_classes),
              "image_size": int(cfg.image_size), "crop_pct": float(cfg.crop_pct),
              "interpolation": cfg.interpolation, "mean": [float(v) for v in cfg.mean],
              "std": [float(v) for v in cfg.std], "class_names": list(class_names) if class_names else None}
    record.update(extra)
    return record


def checkpoint_entry(record):
    """``append_dict`` entry for ``mindspore.save_checkpoint``."""
    return {CKPT_KEY: json.dumps(record)} if record else {}


def from_checkpoint_params(params, source="checkpoint"):
    """The record inside a loaded checkpoint dict (``mindspore.load_checkpoint``), or None for older files."""
    raw = params.get(CKPT_KEY)
    if raw is None:
        return None
    return parse_record(raw, source)


def parse_record(raw, source):
    """A record from its JSON text; a :class:`DataError` naming ``source`` when it is not one."""
    try:
        record = json.loads(str(raw))
    except ValueError:
        raise DataError(f"{source}: its model record is not valid JSON; the file is corrupt") from None
    if not isinstance(record, dict) or not {"model", "num_classes"} <= set(record):
        raise DataError(f"{source}: its model record lacks the model name or class count; the file is corrupt")
    return record


def sidecar_path(model_file):
    """``model.onnx`` -> ``model.onnx.json``."""
    return model_file + ".json"


def write_sidecar(model_file, record):
    """Write ``record`` beside ``model_file`` (atomically); returns the sidecar path."""
    path = sidecar_path(model_file)
    with atomic_write(path, "w") as f:
        json.dump(record, f, indent=1)
    return path


def read_sidecar(model_file):
    """The record beside an exported file, or None when there is none."""
    path = sidecar_path(model_file)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return parse_record(f.read(), path)


def reconcile(cfg, source, record=None, graph=None):
    """Settle in ``cfg`` (in place) what the model in file ``source`` is, and refuse contradictions; returns ``cfg``.

    ``record``: the file's model record (None: it has none). ``graph``: what an exported graph fixes,
    ``{"num_classes": n, "image_size": s}`` (``s`` None for a dynamic size); None for a checkpoint. Identity keys
    (model, class count; for an exported graph the input size too) set by a flag must equal the record's, and
    preprocessing flags win over it; the record fills what the user did not set. What the graph fixes must equal
    any flag and is then used. An exported file without a record gets one warning naming the guessed values.
    """
    if record is not None:
        keys = IDENTITY_KEYS + (("image_size",) if graph is not None else ())
        for key in keys:
            if key in record and key in cfg.explicit and cfg[key] != record[key]:
                raise ConfigError(f"--{key} {cfg[key]} contradicts {source}, which holds a model with {key} "
                                  f"{record[key]}; drop --{key} (the file's value is used)")
        for key in IDENTITY_KEYS + PREPROCESS_KEYS:
            if key in record and record[key] is not None and key not in cfg.explicit:
                cfg[key] = record[key]
    for key, value in (graph or {}).items():
        if value is None:
            continue
        if key in cfg.explicit and cfg[key] != value:
            raise DeployError(f"--{key} {cfg[key]} contradicts {source}, which has {key} {value}; drop --{key}")
        cfg[key] = value
    if graph is not None and record is None:
        warn_unrecorded(cfg, source)
    return cfg


def warn_unrecorded(cfg, path):
    """One warning line naming what is guessed for an exported file without a record: its graph fixes only the
    input size and class count, so the model name and preprocessing the user did not set are defaults."""
    guessed = [key for key in ("model",) + PREPROCESS_KEYS if key != "image_size" and key not in cfg.explicit]
    if guessed:
        log.warning("warning: %s has no model record (%s is missing): input size %d and %d classes are read from "
                    "the file, but %s are defaults, not necessarily the model's; pass the training values as flags",
                    path, sidecar_path(path), cfg.image_size, cfg.num_classes,
                    ", ".join(f"{key} {cfg[key]}" for key in guessed))


def check_classes(cfg, class_names, record=None, training=False):
    """A dataset's classes must be the model's: the same count and, when the model's record carries names, the
    same names. ``training``: the model is built for the dataset, so ``--num_classes`` is what to fix."""
    count = len(class_names)
    if count != cfg.num_classes and training:
        raise ConfigError(f"the dataset has {count} classes but num_classes={cfg.num_classes}; "
                          f"pass --num_classes {count}")
    if count != cfg.num_classes:
        raise ConfigError(f"the dataset has {count} classes but the model has {cfg.num_classes}; "
                          "evaluate on the dataset the model was trained for (or pass the right --num_classes "
                          "for a checkpoint without a model record)")
    carried = (record or {}).get("class_names")
    if carried and list(carried) != list(class_names):
        diff = next(i for i, (a, b) in enumerate(zip(carried, class_names)) if a != b)
        raise DataError(f"the dataset's class {diff} is '{class_names[diff]}' but the model's is '{carried[diff]}': "
                        "labels would be scored against the wrong classes")


def check_pretrained(record, model, source):
    """A checkpoint to fine-tune from must hold ``model`` (when its record says what it holds)."""
    if record and model and record["model"] != model:
        raise DataError(f"pretrained checkpoint {source} holds {record['model']}, not --model {model}")


def label_names(num_classes, labels=None, labels_file="", carried=None):
    """Names for a model's ``num_classes`` outputs: ``labels`` (read from ``labels_file``), which must have one
    per class; else the names the model's record carries (``carried``) when they fit; else None."""
    if labels is not None:
        if len(labels) != num_classes:
            raise DeployError(f"{labels_file} has {len(labels)} names but the model has {num_classes} classes")
        return labels
    if carried and len(carried) == num_classes:
        return list(carried)
    return None
