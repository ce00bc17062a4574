"""The model record: what every artifact the project writes carries so it can be used without guessing.

A record names the model and its form, the class count and names, and the input it expects (size, resize/crop,
normalisation). Checkpoints hold it as one JSON string entry (``ghostnet_record``); exported files get it beside
them as ``<file>.json`` (ONNX files also inside, as metadata). eval/export/infer read it: values the user did not
set come from the record; a contradiction on what the file *is* (model, class count, the fixed input size of an
exported graph) is a one-line error; explicit preprocessing flags win. Files without a record work as before.
"""
import json
import os

from .errors import ConfigError, DataError
from .files import atomic_write

CKPT_KEY = "ghostnet_record"
VERSION = 1
IDENTITY_KEYS = ("model", "num_classes")          # what the weights are: must agree with the user's flags
PREPROCESS_KEYS = ("image_size", "crop_pct", "interpolation", "mean", "std")  # how to feed it: flags win
FORMS = ("train", "deploy", "qat", "int8")


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


def apply_record(cfg, record, source, fixed_input=False):
    """Fill ``cfg`` from ``record`` (in place) and refuse contradictions; returns ``cfg``.

    Identity keys (model, class count) must equal any value the user set. Preprocessing keys the user set win;
    the others come from the record. ``fixed_input``: the file is a graph exported for ``image_size`` (an exported
    model), so another image size is a contradiction too.
    """
    if record is None:
        return cfg
    keys = IDENTITY_KEYS + (("image_size",) if fixed_input else ())
    for key in keys:
        if key in record and key in cfg.explicit and cfg[key] != record[key]:
            raise ConfigError(f"--{key} {cfg[key]} contradicts {source}, which holds a model with {key} "
                              f"{record[key]}; drop --{key} (the file's value is used)")
    for key in IDENTITY_KEYS + PREPROCESS_KEYS:
        if key in record and record[key] is not None and key not in cfg.explicit:
            cfg[key] = record[key]
    return cfg
