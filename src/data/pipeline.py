"""``create_dataset``: sample list -> decodability check -> MindSpore ``GeneratorDataset`` -> augment -> batch.

Shuffling relies on MindSpore's seeded sampler semantics (measured on 2.10): ``mindspore.dataset.config.set_seed``
is read when the *iterator* is created (not when the dataset is built), and one iterator's epoch k order is a
fixed function of (seed, k). ``create_dataset`` calls ``set_seed(seed)`` only when it shuffles, so create the
iterator before building another *shuffled* dataset with a different seed. ``set_seed`` also reseeds Python's
``random`` and ``numpy.random`` (MindSpore behaviour).
"""
import functools

import mindspore.dataset as ds
import mindspore.dataset.vision as vision
import numpy as np

from ..errors import DataError
from .decode import decode_image, drop_undecodable
from .folders import list_samples
from .transforms import (CV2_INTERPOLATIONS, IMAGENET_MEAN, IMAGENET_STD, eval_resize_size, normalize_params,
                         resize_shorter)

MS_INTERPOLATIONS = {"nearest": vision.Inter.NEAREST, "bilinear": vision.Inter.BILINEAR,
                     "bicubic": vision.Inter.BICUBIC, "area": vision.Inter.AREA}
EXACT_MS_RESIZE = ("nearest", "bilinear", "area")  # bit-exact with cv2.resize (see transforms.py)
AUTO_AUGMENT = (None, "randaug", "autoaug")


class FileSource:
    """Random-access source of (encoded file bytes, int32 label); decoding happens in a parallel map."""

    def __init__(self, samples):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        return np.fromfile(path, np.uint8), np.array(label, np.int32)


def _check_args(image_size, batch_size, num_workers, num_shards, shard_id, crop_pct, interpolation, hflip,
                color_jitter, auto_augment, re_prob, mean, std, max_samples):
    """Raise ``ValueError`` with a one-line fix for any out-of-range argument."""
    checks = [
        (image_size >= 32, f"image_size must be >= 32, got {image_size}"),
        (batch_size >= 1, f"batch_size must be >= 1, got {batch_size}"),
        (num_workers >= 1, f"num_workers must be >= 1, got {num_workers}"),
        ((num_shards is None) == (shard_id is None), "give both num_shards and shard_id, or neither"),
        (num_shards is None or num_shards >= 1, f"num_shards must be >= 1, got {num_shards}"),
        (num_shards is None or 0 <= shard_id < num_shards,
         f"shard_id must be in [0, num_shards={num_shards}), got {shard_id}"),
        (0 < crop_pct <= 1, f"crop_pct must be in (0, 1], got {crop_pct}"),
        (interpolation in CV2_INTERPOLATIONS,
         f"unknown interpolation '{interpolation}'; use one of {', '.join(CV2_INTERPOLATIONS)}"),
        (0 <= hflip <= 1, f"hflip must be a probability in [0, 1], got {hflip}"),
        (0 <= re_prob <= 1, f"re_prob must be a probability in [0, 1], got {re_prob}"),
        (color_jitter >= 0, f"color_jitter must be >= 0 (0 disables), got {color_jitter}"),
        (auto_augment in AUTO_AUGMENT, f"unknown auto_augment '{auto_augment}'; use null, randaug or autoaug"),
        (len(mean) == 3 and len(std) == 3 and min(std) > 0,
         f"mean and std need 3 values (RGB) and std > 0, got mean={list(mean)} std={list(std)}"),
        (max_samples is None or max_samples >= 1, f"max_samples must be >= 1 (or None), got {max_samples}"),
    ]
    for ok, message in checks:
        if not ok:
            raise DataError(message)


def train_transforms(image_size, interpolation, hflip, color_jitter, auto_augment, mean, std, re_prob):
    """RandomResizedCrop, flip, RandAugment/AutoAugment *or* colour jitter (timm's rule), normalize, CHW, erasing."""
    ops = [vision.RandomResizedCrop(image_size, scale=(0.08, 1.0), interpolation=MS_INTERPOLATIONS[interpolation])]
    if hflip > 0:
        ops.append(vision.RandomHorizontalFlip(hflip))
    if auto_augment == "randaug":
        ops.append(vision.RandAugment())
    elif auto_augment == "autoaug":
        ops.append(vision.AutoAugment(vision.AutoAugmentPolicy.IMAGENET))
    elif color_jitter > 0:
        ops.append(vision.RandomColorAdjust(color_jitter, color_jitter, color_jitter))
    ops += [vision.Normalize(mean, std), vision.HWC2CHW()]
    if re_prob > 0:
        ops.append(vision.RandomErasing(prob=re_prob))  # works on CHW arrays
    return ops


def eval_transforms(image_size, crop_pct, interpolation, mean, std):
    """Resize the shorter side to ``int(image_size / crop_pct)``, centre crop, normalize, CHW."""
    size = eval_resize_size(image_size, crop_pct)
    if interpolation in EXACT_MS_RESIZE:
        resize = vision.Resize(size, MS_INTERPOLATIONS[interpolation])
    else:  # MindSpore's bicubic differs from cv2's: use the cv2 code of eval_preprocess so both agree exactly
        resize = functools.partial(resize_shorter, size=size, interpolation=interpolation)
    return [resize, vision.CenterCrop(image_size), vision.Normalize(mean, std), vision.HWC2CHW()]


def _sampling(num_samples, shuffle, num_shards, shard_id):
    """GeneratorDataset keyword arguments for shuffling and sharding.

    Shuffled (training) shards come from MindSpore's sampler: equal sizes, padded by wrapping around when
    ``num_samples % num_shards != 0`` so every rank runs the same number of steps. Unshuffled (eval) shards are an
    exact partition (strided, capped with ``num_samples``) so no image is counted twice.
    """
    if num_shards is None or shuffle:
        return {"shuffle": shuffle, "num_shards": num_shards, "shard_id": shard_id}
    count = len(range(shard_id, num_samples, num_shards))
    return {"sampler": ds.DistributedSampler(num_shards, shard_id, shuffle=False, num_samples=count)}


def create_dataset(dataset, data_path, split, image_size=224, batch_size=32, training=None, num_workers=2,
                   num_shards=None, shard_id=None, shuffle=None, seed=0, crop_pct=0.875, interpolation="bilinear",
                   hflip=0.5, color_jitter=0.4, auto_augment=None, re_prob=0.0, mean=IMAGENET_MEAN,
                   std=IMAGENET_STD, drop_remainder=None, max_samples=None):
    """Build a batched dataset with columns ``image`` (float32 N,3,H,W normalized) and ``label`` (int32 N).

    ``training``, ``shuffle`` and ``drop_remainder`` default to ``split == "train"``. Files that cannot be decoded
    are dropped with one warning naming them. ``max_samples`` keeps an evenly spaced subset (all classes) for smoke
    runs. Returns ``(dataset, class_names)``.
    """
    _check_args(image_size, batch_size, num_workers, num_shards, shard_id, crop_pct, interpolation, hflip,
                color_jitter, auto_augment, re_prob, mean, std, max_samples)
    training = split == "train" if training is None else training
    shuffle = training if shuffle is None else shuffle
    drop_remainder = training if drop_remainder is None else drop_remainder
    samples, class_names = list_samples(dataset, data_path, split)
    if max_samples is not None and max_samples < len(samples):
        samples = [samples[i] for i in np.linspace(0, len(samples), max_samples, endpoint=False).astype(int)]
    samples = drop_undecodable(samples, data_path, f"{dataset} '{split}'", num_workers)
    if not samples:
        raise DataError(f"no decodable images for {dataset} split '{split}' under '{data_path}'")
    if num_shards is not None and len(samples) < num_shards:
        raise DataError(f"{len(samples)} images cannot be split into {num_shards} shards; use fewer devices")
    if shuffle:
        ds.config.set_seed(seed)
    data = ds.GeneratorDataset(FileSource(samples), ["image", "label"], python_multiprocessing=False,
                               **_sampling(len(samples), shuffle, num_shards, shard_id))
    mean, std = normalize_params(mean, std)
    ops = (train_transforms(image_size, interpolation, hflip, color_jitter, auto_augment, mean, std, re_prob)
           if training else eval_transforms(image_size, crop_pct, interpolation, mean, std))
    data = data.map([decode_image], "image", num_parallel_workers=num_workers, python_multiprocessing=False)
    data = data.map(ops, "image", num_parallel_workers=num_workers, python_multiprocessing=False)
    return data.batch(batch_size, drop_remainder=drop_remainder), class_names
