"""Class names for printed predictions: a ``--labels_file`` or the names the model's record carries, else none.

Names are never guessed from the class count (a user's own 37-class model is not Oxford-IIIT Pets): a model
trained here carries its dataset's names, and a checkpoint converted with ``--class_names imagenet`` the bundled
ImageNet names.
"""
import os

from src.errors import ROOT
from src.record import label_names

from . import DeployError

IMAGENET_NAMES = os.path.join(ROOT, "assets", "imagenet", "class_names.txt")


def read_labels(path):
    """One class name per non-empty line."""
    if not os.path.isfile(path):
        raise DeployError(f"labels file not found: {path}")
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def class_names(labels_file, num_classes, carried=None):
    """Names for ``num_classes`` outputs: ``labels_file``, else the names the model file carries (``carried``);
    otherwise None (indices are printed). The count is checked by :func:`src.record.label_names`."""
    return label_names(num_classes, read_labels(labels_file) if labels_file else None, labels_file, carried)
