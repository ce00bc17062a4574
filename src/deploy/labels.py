"""Class names for printed predictions: a ``--labels_file``, the ImageNet-1k or Oxford-IIIT Pets names, or none."""
import os

from src.errors import ROOT

from . import DeployError

IMAGENET_NAMES = os.path.join(ROOT, "assets", "imagenet", "class_names.txt")

# Oxford-IIIT Pets CLASS_ID 1..37 order of annotations/list.txt (capitalised names are cats).
PETS_BREEDS = [
    "Abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle", "Bengal", "Birman",
    "Bombay", "boxer", "British_Shorthair", "chihuahua", "Egyptian_Mau", "english_cocker_spaniel", "english_setter",
    "german_shorthaired", "great_pyrenees", "havanese", "japanese_chin", "keeshond", "leonberger", "Maine_Coon",
    "miniature_pinscher", "newfoundland", "Persian", "pomeranian", "pug", "Ragdoll", "Russian_Blue",
    "saint_bernard", "samoyed", "scottish_terrier", "shiba_inu", "Siamese", "Sphynx", "staffordshire_bull_terrier",
    "wheaten_terrier", "yorkshire_terrier",
]


def read_labels(path):
    """One class name per non-empty line."""
    if not os.path.isfile(path):
        raise DeployError(f"labels file not found: {path}")
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def class_names(labels_file, num_classes, carried=None):
    """Names for ``num_classes`` outputs: ``labels_file``, else the names the model file carries (``carried``),
    else ImageNet-1k for 1000 and Pets for 37; otherwise None (indices are printed)."""
    if labels_file:
        names = read_labels(labels_file)
        if len(names) != num_classes:
            raise DeployError(f"{labels_file} has {len(names)} names but the model has {num_classes} classes")
        return names
    if carried and len(carried) == num_classes:
        return list(carried)
    if num_classes == len(PETS_BREEDS):  # the project's only 37-class dataset
        return PETS_BREEDS
    if num_classes == 1000:
        return read_labels(IMAGENET_NAMES)
    return None
