"""Data pipeline: ImageNet-folder and Oxford-IIIT Pets datasets, transforms, robust decoding, quickstart set.

``create_dataset`` needs MindSpore and is imported lazily, so ``src.data.transforms`` / ``src.data.decode``
(``eval_preprocess``, ``read_image``) stay usable in inference scripts without MindSpore.
"""
from .decode import decode_image, default_cache_dir, read_image
from .folders import (DATASETS, IMG_EXTENSIONS, SPLITS, describe_dataset, is_image_file, rank_data_path,
                      resolve_split)
from .quickstart import QUICKSTART_ARCHIVE, ensure_quickstart
from .transforms import IMAGENET_MEAN, IMAGENET_STD, eval_preprocess

__all__ = ["create_dataset", "eval_preprocess", "decode_image", "default_cache_dir", "read_image",
           "ensure_quickstart", "is_image_file", "resolve_split", "QUICKSTART_ARCHIVE", "IMAGENET_MEAN",
           "IMAGENET_STD", "IMG_EXTENSIONS", "DATASETS", "SPLITS"]


def __getattr__(name):
    """Import ``create_dataset`` (and MindSpore) on first use."""
    if name == "create_dataset":
        from .pipeline import create_dataset  # lazy: MindSpore only for datasets (inference scripts need none)
        return create_dataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
