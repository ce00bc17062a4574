"""Sample lists ``[(path, label)]`` + class names for the supported on-disk layouts.

MindSpore's ``ImageFolderDataset`` cannot skip undecodable files and knows no Pets annotation lists, so the lists
are built here and fed to a ``GeneratorDataset`` (see ``pipeline.py``).
"""
import os

from ..errors import DataError

DATASETS = ("imagenet", "pets")
SPLITS = {"imagenet": ("train", "val"), "pets": ("train", "val", "test")}
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
PETS_LISTS = {"train": "trainval.txt", "val": "test.txt", "test": "test.txt"}  # Pets publishes no val list


def _require_dir(path, what, hint):
    if not os.path.isdir(path):
        raise DataError(f"{what} '{path}' not found; {hint}")


def imagenet_samples(root, split):
    """``root/<split>/<class>/*.<image ext>``; labels = index in the sorted union of train/ and val/ class folders.

    The union (not the split's own folders) keeps label ids identical across splits when one lacks a class.
    """
    split_dir = os.path.join(root, split)
    _require_dir(split_dir, f"split directory for '{split}'", f"expected {root}/{split}/<class_name>/<images>")
    class_names = sorted({entry.name for s in SPLITS["imagenet"] if os.path.isdir(os.path.join(root, s))
                          for entry in os.scandir(os.path.join(root, s)) if entry.is_dir()})
    samples = []
    for label, name in enumerate(class_names):
        class_dir = os.path.join(split_dir, name)
        if os.path.isdir(class_dir):
            samples += [(os.path.join(class_dir, f), label) for f in sorted(os.listdir(class_dir))
                        if f.lower().endswith(IMG_EXTENSIONS)]
    return samples, class_names


def _read_pets_list(path):
    """Rows ``NAME CLASS_ID SPECIES BREED_ID`` of a Pets annotation list as ``[(name, class_id)]``; '#' = comment."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) < 2 or not fields[1].isdigit() or int(fields[1]) < 1:
                raise DataError(f"{path}:{lineno}: expected 'NAME CLASS_ID SPECIES BREED_ID' with CLASS_ID >= 1, "
                                 f"got {line.strip()!r}; fix or remove the line")
            rows.append((fields[0], int(fields[1])))
    return rows


def pets_samples(root, split):
    """Oxford-IIIT Pets: ``images/NAME.jpg`` listed in ``annotations/{trainval,test}.txt``; label = CLASS_ID - 1.

    Class names (NAME without its trailing ``_<n>``, ordered by CLASS_ID) come from every list present, so both
    splits get the same 37 names even if one lacks a class.
    """
    _require_dir(os.path.join(root, "images"), "Pets image directory", f"expected {root}/images/*.jpg")
    ann_dir = os.path.join(root, "annotations")
    list_path = os.path.join(ann_dir, PETS_LISTS[split])
    if not os.path.isfile(list_path):
        raise DataError(f"Pets annotation file '{list_path}' not found; expected the published "
                                f"annotations/{PETS_LISTS[split]} (rows 'NAME CLASS_ID SPECIES BREED_ID')")
    names = {}
    for list_name in sorted(set(PETS_LISTS.values())):
        path = os.path.join(ann_dir, list_name)
        for name, class_id in _read_pets_list(path) if os.path.isfile(path) else []:
            breed = name.rsplit("_", 1)[0]
            if names.setdefault(class_id, breed) != breed:
                raise DataError(f"{path}: CLASS_ID {class_id} is used for both '{names[class_id]}' and '{breed}'; "
                                 "the annotation lists are inconsistent")
    missing = sorted(set(range(1, max(names, default=0) + 1)) - set(names))
    if missing:
        raise DataError(f"{ann_dir}: CLASS_IDs {missing} never occur in the annotation lists, so class names "
                         "cannot be derived; use the complete published lists")
    class_names = [names[i] for i in sorted(names)]
    samples = [(os.path.join(root, "images", name + ".jpg"), class_id - 1)
               for name, class_id in _read_pets_list(list_path)]
    return samples, class_names


def list_samples(dataset, root, split):
    """Dispatch to the layout reader; validates names and the root directory first."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset '{dataset}'; use one of {', '.join(DATASETS)}")
    if split not in SPLITS[dataset]:
        raise DataError(f"unknown split '{split}' for {dataset}; use one of {', '.join(SPLITS[dataset])}")
    _require_dir(root, "data_path", "pass the dataset root directory (see the data layouts in README.md)")
    reader = imagenet_samples if dataset == "imagenet" else pets_samples
    samples, class_names = reader(root, split)
    if not samples:
        raise DataError(f"no images found for {dataset} split '{split}' under '{root}'; "
                         "check data_path and the folder layout")
    return samples, class_names
