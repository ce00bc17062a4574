"""Sample lists ``[(path, label)]`` + class names for the supported on-disk layouts.

MindSpore's ``ImageFolderDataset`` cannot skip undecodable files and knows no Pets annotation lists, so the lists
are built here and fed to a ``GeneratorDataset`` (see ``pipeline.py``). Anything that would silently shift or mix
labels is refused: hidden folders (``.ipynb_checkpoints``) and files are ignored, an empty class folder is an error,
and so are a class that has validation images but no training folder, and Pets lists that give one breed two ids
or put the same image in both splits. Unreadable image entries (a symlink loop, a dangling link) are listed like
any file; the decodability check skips them with a warning.
"""
import os

from ..errors import DataError

DATASETS = ("imagenet", "pets")
SPLITS = {"imagenet": ("train", "val"), "pets": ("train", "val", "test")}
# the one list of image file extensions (datasets and infer.py); .gif/.webp decode through the Python fallback
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")

PETS_LISTS = {"train": "trainval.txt", "test": "test.txt"}
SPLIT_ALIASES = {("pets", "val"): "test"}  # Pets publishes no validation list: 'val' means its test list


def describe_dataset(dataset, path):
    """What a dataset is, for logs and reports: its layout and where it lives (not the loader's format key)."""
    return f"Oxford-IIIT Pets at {path}" if dataset == "pets" else f"class folders at {path}"


def rank_data_path(data_path, rank=0):
    """``data_path`` with ``{rank}`` filled in: per-rank local copies of the data, e.g. /local/ssd{rank}/imagenet
    (a saved training config keeps the template; evaluation reads rank 0's copy)."""
    return data_path.format(rank=rank) if "{rank}" in data_path else data_path


def resolve_split(dataset, split):
    """The split actually read for ``split`` (Pets 'val' -> 'test')."""
    return SPLIT_ALIASES.get((dataset, split), split)


def is_image_file(name):
    """A non-hidden file name with an image extension."""
    return not name.startswith(".") and name.lower().endswith(IMG_EXTENSIONS)


def _require_dir(path, what, hint):
    if os.path.exists(path) and not os.path.isdir(path):
        raise DataError(f"{what} '{path}' is a file, not a folder; {hint}")
    if not os.path.isdir(path):
        raise DataError(f"{what} '{path}' not found; {hint}")


def _class_dirs(split_dir):
    """Non-hidden sub-folders of ``split_dir`` (hidden ones such as ``.ipynb_checkpoints`` are not classes)."""
    return [e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith(".")]


def _is_image_entry(entry):
    """An image file name that is not a folder; an entry whose type cannot be read (a symlink loop) counts, so the
    decodability check reports it like any other unreadable file."""
    try:
        return is_image_file(entry.name) and not entry.is_dir()
    except OSError:
        return is_image_file(entry.name)


def _check_not_empty(split_dir, name):
    with os.scandir(os.path.join(split_dir, name)) as entries:
        if not any(_is_image_entry(e) for e in entries):
            raise DataError(f"class folder '{os.path.join(split_dir, name)}' holds no images "
                            f"({', '.join(IMG_EXTENSIONS)}); remove it or add its images (an empty class would "
                            "still take a label id)")


def _check_trained(root, class_names):
    """Every class (a folder in train/ or val/) needs training images: one only in val/ would be a label the
    network never sees trained."""
    for name in class_names:
        if not os.path.isdir(os.path.join(root, "train", name)):
            raise DataError(f"class '{name}' has a folder in {os.path.join(root, 'val')} but none in "
                            f"{os.path.join(root, 'train')}; add {os.path.join(root, 'train', name)} with its "
                            "training images or remove the validation folder")


def imagenet_samples(root, split):
    """``root/<split>/<class>/*.<image ext>``; labels = index in the sorted union of train/ and val/ class folders.

    The union (not the split's own folders) keeps label ids identical across splits when one lacks a class.
    """
    split_dir = os.path.join(root, split)
    _require_dir(split_dir, f"split directory for '{split}'", f"expected {root}/{split}/<class_name>/<images>")
    names = set()
    for s in SPLITS["imagenet"]:
        s_dir = os.path.join(root, s)
        if os.path.isdir(s_dir):
            for name in _class_dirs(s_dir):
                _check_not_empty(s_dir, name)
                names.add(name)
    class_names = sorted(names)
    if split == "train":
        _check_trained(root, class_names)
    samples = []
    for label, name in enumerate(class_names):
        class_dir = os.path.join(split_dir, name)
        if os.path.isdir(class_dir):
            samples += [(os.path.join(class_dir, f), label) for f in sorted(os.listdir(class_dir)) if is_image_file(f)]
    return samples, class_names


def _read_pets_list(path):
    """Rows ``NAME CLASS_ID SPECIES BREED_ID`` of a Pets annotation list as ``[(name, class_id)]``; '#' = comment."""
    rows, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) < 2 or not fields[1].isdigit() or int(fields[1]) < 1:
                raise DataError(f"{path}:{lineno}: expected 'NAME CLASS_ID SPECIES BREED_ID' with CLASS_ID >= 1, "
                                f"got {line.strip()!r}; fix or remove the line")
            if fields[0] in seen:
                raise DataError(f"{path}:{lineno}: image '{fields[0]}' is listed twice; remove the duplicate row")
            seen.add(fields[0])
            rows.append((fields[0], int(fields[1])))
    return rows


def _pets_lists(ann_dir):
    """``{split: rows}`` of every Pets list present; the same image in two splits is an error."""
    lists = {s: _read_pets_list(os.path.join(ann_dir, n)) for s, n in PETS_LISTS.items()
             if os.path.isfile(os.path.join(ann_dir, n))}
    if len(lists) == 2:
        both = sorted({n for n, _ in lists["train"]} & {n for n, _ in lists["test"]})
        if both:
            raise DataError(f"{ann_dir}: {len(both)} image(s) are in both trainval.txt and test.txt (e.g. "
                            f"'{both[0]}'): the test score would include training images; fix the lists")
    return lists


def _pets_class_names(lists, ann_dir):
    """Breed names ordered by CLASS_ID; one id per breed and one breed per id."""
    names = {}
    for split, rows in lists.items():
        for name, class_id in rows:
            breed = name.rsplit("_", 1)[0]
            if names.setdefault(class_id, breed) != breed:
                raise DataError(f"{ann_dir}/{PETS_LISTS[split]}: CLASS_ID {class_id} is used for both "
                                f"'{names[class_id]}' and '{breed}'; the annotation lists are inconsistent")
    missing = sorted(set(range(1, max(names, default=0) + 1)) - set(names))
    if missing:
        raise DataError(f"{ann_dir}: CLASS_IDs {missing} never occur in the annotation lists, so class names "
                        "cannot be derived; use the complete published lists")
    ids_of = {}
    for class_id, breed in sorted(names.items()):
        ids_of.setdefault(breed, []).append(class_id)
    dup = {b: ids for b, ids in ids_of.items() if len(ids) > 1}
    if dup:
        breed, ids = next(iter(dup.items()))
        raise DataError(f"{ann_dir}: breed '{breed}' has CLASS_IDs {ids}: one breed would be two classes; "
                        "fix the annotation lists")
    return [names[i] for i in sorted(names)]


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
    lists = _pets_lists(ann_dir)
    class_names = _pets_class_names(lists, ann_dir)
    samples = [(os.path.join(root, "images", name + ".jpg"), class_id - 1) for name, class_id in lists[split]]
    return samples, class_names


def list_samples(dataset, root, split):
    """Dispatch to the layout reader; validates names and the root directory first."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset '{dataset}'; use one of {', '.join(DATASETS)}")
    if split not in SPLITS[dataset]:
        raise DataError(f"unknown split '{split}' for {dataset}; use one of {', '.join(SPLITS[dataset])}")
    _require_dir(root, "data_path", "pass the dataset root directory (see the data layouts in docs/data.md)")
    reader = imagenet_samples if dataset == "imagenet" else pets_samples
    samples, class_names = reader(root, resolve_split(dataset, split))
    if not samples:
        raise DataError(f"no images found for {dataset} split '{split}' under '{root}'; "
                        "check data_path and the folder layout")
    return samples, class_names
