"""``create_dataset``: sample list -> shard -> decodability check -> byte source -> C++ decode + augment -> batch.

Built once per run: :class:`EpochShuffle` gives every epoch its own seeded order (epoch ``e`` of seed ``s`` is
always the same permutation), so one iterator serves the whole run and a resumed run (``start_epoch``) sees the
orders an uninterrupted one would have.

Decoding and augmentation run as MindSpore's C++ ops (``Decode`` / ``RandomCropDecodeResize`` and the vision
transforms) on encoded bytes; Python only reads the files and decodes the rare formats the C++ decoder cannot read
(see ``decode.py``). ``decoder="python"`` decodes everything in Python first (the pipeline before this change;
kept for comparison and as a fallback).
"""
import functools
import math

import mindspore.dataset as ds
import mindspore.dataset.vision as vision
import numpy as np

from ..errors import DataError
from .decode import PYTHON, DecodeCheck, decode_image, drop_undecodable, to_native_bytes
from .folders import list_samples, resolve_split
from .transforms import (CV2_INTERPOLATIONS, IMAGENET_MEAN, IMAGENET_STD, eval_resize_size, normalize_params,
                         resize_shorter)

MS_INTERPOLATIONS = {"nearest": vision.Inter.NEAREST, "bilinear": vision.Inter.BILINEAR,
                     "bicubic": vision.Inter.BICUBIC, "area": vision.Inter.AREA}
EXACT_MS_RESIZE = ("nearest", "bilinear", "area")  # bit-exact with cv2.resize (see transforms.py)
AUTO_AUGMENT = (None, "randaug", "autoaug")
DECODERS = ("cpp", "python")


class FileSource:
    """Random-access source of (encoded bytes, int32 label); ``python``-class files become lossless BMP bytes when
    the C++ decoder follows (``native_only``)."""

    def __init__(self, samples, kinds, native_only):
        self.samples, self.kinds, self.native_only = samples, kinds, native_only

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        data = np.fromfile(path, np.uint8)
        if self.native_only and self.kinds.get(path) == PYTHON:
            data = to_native_bytes(data)
        return data, np.array(label, np.int32)


class EpochShuffle(ds.Sampler):
    """Seeded permutation per epoch: epoch ``e`` uses ``default_rng([seed, e])``.

    MindSpore calls ``__iter__`` once per epoch (on its own copy of the sampler), so the counter starts at
    ``start_epoch`` and a resumed run continues the sequence.
    """

    def __init__(self, num_samples, seed, start_epoch=0):
        self.size, self.seed, self.epoch = num_samples, seed, start_epoch
        super().__init__()

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        self.epoch += 1
        return iter(order.tolist())

    def __len__(self):
        return self.size


def _check_args(image_size, batch_size, num_workers, num_shards, shard_id, crop_pct, interpolation, hflip,
                color_jitter, auto_augment, re_prob, mean, std, max_samples, decoder):
    """Raise :class:`DataError` with a one-line fix for any out-of-range argument."""
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
        (decoder in DECODERS, f"unknown decoder '{decoder}'; use one of {', '.join(DECODERS)}"),
    ]
    for ok, message in checks:
        if not ok:
            raise DataError(message)


def _resize_crop(image_size, crop_pct, interpolation):
    """Resize the shorter side to ``int(image_size / crop_pct)`` and centre-crop (the eval geometry)."""
    size = eval_resize_size(image_size, crop_pct)
    if interpolation in EXACT_MS_RESIZE:
        resize = vision.Resize(size, MS_INTERPOLATIONS[interpolation])
    else:  # MindSpore's bicubic differs from cv2's: use the cv2 code of eval_preprocess so both agree exactly
        resize = functools.partial(resize_shorter, size=size, interpolation=interpolation)
    return [resize, vision.CenterCrop(image_size)]


def train_transforms(image_size, crop_pct, interpolation, random_crop, hflip, color_jitter, auto_augment, mean, std,
                     re_prob, decode):
    """Each augmentation is its own switch: RandomResizedCrop (else the eval resize + centre crop), flip,
    RandAugment/AutoAugment *or* colour jitter (timm's rule), normalize, CHW, random erasing. ``decode``: the
    input is encoded bytes (the crop is then fused with decoding, ``RandomCropDecodeResize``)."""
    inter = MS_INTERPOLATIONS[interpolation]
    if random_crop:
        crop = vision.RandomCropDecodeResize if decode else vision.RandomResizedCrop
        ops = [crop(image_size, scale=(0.08, 1.0), interpolation=inter)]
    else:
        ops = ([vision.Decode()] if decode else []) + _resize_crop(image_size, crop_pct, interpolation)
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
        ops.append(vision.RandomErasing(prob=re_prob, value="random"))  # on CHW; per-pixel normal noise as timm
    return ops


def eval_transforms(image_size, crop_pct, interpolation, mean, std, decode=False):
    """[Decode,] resize the shorter side to ``int(image_size / crop_pct)``, centre crop, normalize, CHW."""
    return (([vision.Decode()] if decode else []) + _resize_crop(image_size, crop_pct, interpolation)
            + [vision.Normalize(mean, std), vision.HWC2CHW()])


def shard(samples, num_shards, shard_id):
    """Rank ``shard_id``'s fixed, strided share of the sorted list: disjoint shards whose union is the list.

    Fixed (not re-dealt every epoch) so that each rank checks and decodes only its own files."""
    return samples if num_shards is None else samples[shard_id::num_shards]


def pad_to(samples, size):
    """Repeat ``samples`` cyclically to exactly ``size`` entries (equal steps per rank after bad files are
    dropped: every rank pads its shard to ``ceil(total / num_shards)``)."""
    return [samples[i % len(samples)] for i in range(size)]


def _check_every_class_kept(samples, class_names, split, data_path):
    """Training needs images of every class: a class whose files were all skipped (broken links, undecodable)
    would be a label the network never sees."""
    missing = sorted(set(range(len(class_names))) - {label for _, label in samples})
    if missing:
        raise DataError(f"class '{class_names[missing[0]]}' of split '{split}' under '{data_path}' has no "
                        f"decodable images ({len(missing)} such class(es)); fix or remove its files")


def create_dataset(dataset, data_path, split, image_size=224, batch_size=32, training=None, num_workers=2,
                   num_shards=None, shard_id=None, shuffle=None, seed=0, start_epoch=0, crop_pct=0.875,
                   interpolation="bilinear", random_crop=True, hflip=0.5, color_jitter=0.4, auto_augment=None,
                   re_prob=0.0, mean=IMAGENET_MEAN, std=IMAGENET_STD, drop_remainder=None, max_samples=None,
                   max_steps=None, cache_dir="", decoder="cpp"):
    """Build a batched dataset with columns ``image`` (float32 N,3,H,W normalized) and ``label`` (int32 N).

    ``training`` (default ``split == "train"``) selects the augmenting transforms; ``shuffle`` and
    ``drop_remainder`` default to ``training``. Files that do not decode completely are dropped, each named in the
    ``ghostnet.data`` log. Shuffled shards are padded to equal length; unshuffled shards partition the set
    exactly. ``max_samples`` keeps an evenly spaced subset (all classes) for smoke runs, ``max_steps`` caps the
    batches per epoch. ``cache_dir``: where the decodability check is remembered (default
    :func:`decode.default_cache_dir`). Returns ``(dataset, class_names)``.
    """
    _check_args(image_size, batch_size, num_workers, num_shards, shard_id, crop_pct, interpolation, hflip,
                color_jitter, auto_augment, re_prob, mean, std, max_samples, decoder)
    training = split == "train" if training is None else training
    shuffle = training if shuffle is None else shuffle
    drop_remainder = training if drop_remainder is None else drop_remainder
    samples, class_names = list_samples(dataset, data_path, split)
    if max_samples is not None and max_samples < len(samples):
        samples = [samples[i] for i in np.linspace(0, len(samples), max_samples, endpoint=False).astype(int)]
    if num_shards is not None and len(samples) < num_shards:
        raise DataError(f"{len(samples)} images cannot be split into {num_shards} shards; use fewer devices")
    total = len(samples)
    samples = shard(samples, num_shards, shard_id)
    check = DecodeCheck(data_path, resolve_split(dataset, split), cache_dir, shard_id or 0)
    samples, kinds = drop_undecodable(samples, data_path, f"{dataset} '{split}'", check, num_workers)
    if not samples:
        raise DataError(f"no decodable images for {dataset} split '{split}' under '{data_path}'")
    if training and num_shards is None:  # a shard may lack a class; the whole set may not
        _check_every_class_kept(samples, class_names, split, data_path)
    if shuffle and num_shards is not None:
        samples = pad_to(samples, math.ceil(total / num_shards))
    sampler = EpochShuffle(len(samples), seed, start_epoch) if shuffle else None
    decode = decoder == "cpp"
    data = ds.GeneratorDataset(FileSource(samples, kinds, decode), ["image", "label"], sampler=sampler,
                               shuffle=False if sampler is None else None, python_multiprocessing=False)
    mean, std = normalize_params(mean, std)
    if training:
        ops = train_transforms(image_size, crop_pct, interpolation, random_crop, hflip, color_jitter, auto_augment,
                               mean, std, re_prob, decode)
    else:
        ops = eval_transforms(image_size, crop_pct, interpolation, mean, std, decode)
    if not decode:
        ops = [decode_image] + ops
    data = data.map(ops, "image", num_parallel_workers=num_workers, python_multiprocessing=False)
    data = data.batch(batch_size, drop_remainder=drop_remainder)
    if max_steps:
        data = data.take(max_steps)
    return data, class_names
