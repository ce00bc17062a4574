"""Calibration passes (activation ranges from real images) and post-training quantization (PTQ).

Calibration runs the QAT network in evaluation mode with its activation quantizers in pass-through, a forward
hook recording each activation's range; weights are already on their int8 grid. It initialises the EMA observers
before QAT and is all there is to PTQ. It runs eagerly (PyNative, where hooks run).
"""
import os

import mindspore as ms
import numpy as np

from ..data.decode import read_image
from ..data.folders import IMG_EXTENSIONS, is_image_file
from ..data.transforms import eval_preprocess
from ..errors import DataError
from . import QuantError
from .qat import quantize_network, quantizers

CALIB_METHODS = ("minmax", "mean")  # global extremes, or the mean of per-batch extremes
EAGER_PIXELS = 32 * 224 * 224  # pixels per eager evaluation batch (see eager_batches)


def calibrate(net, batches, method="minmax"):
    """Set every activation range of QAT ``net`` from ``batches`` (float32 NCHW arrays or Tensors); returns the
    number of batches used."""
    if method not in CALIB_METHODS:
        raise QuantError(f"calibration method must be one of {', '.join(CALIB_METHODS)}, got {method!r}")
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    was_training = net.training
    net.set_train(False)
    observers = [q for _, q in quantizers(net)]
    hooks = []
    for q in observers:
        q.bypass, q.calib_method, q.calib_batches = True, method, 0
        hooks.append(q.register_forward_hook(lambda cell, inputs, output: cell.record(inputs[0])))
    count = 0
    try:
        for batch in batches:
            net(batch if isinstance(batch, ms.Tensor) else ms.Tensor(np.asarray(batch, np.float32)))
            count += 1
    finally:
        for q, hook in zip(observers, hooks):
            q.bypass = False
            hook.remove()
        net.set_train(was_training)
        ms.set_context(mode=mode)
    if count == 0:
        raise QuantError("calibration got no images; give a folder of images (--calib_data) or more data")
    return count


def post_training_quantize(net, batches, scheme, method="minmax"):
    """PTQ: the float ``net`` turned into its quantized network (in place) with ranges from ``batches``."""
    quantize_network(net, scheme)
    calibrate(net, batches, method)
    return net


def list_images(folder):
    """Every image file below ``folder`` (recursive, sorted)."""
    if not folder or not os.path.isdir(folder):
        raise QuantError(f"calibration data must be a directory of images, got {folder!r}; pass --calib_data DIR "
                         "(e.g. the training set's folder)")
    paths = sorted(os.path.join(root, name) for root, _, names in os.walk(folder) for name in names
                   if is_image_file(name))
    if not paths:
        raise QuantError(f"no images ({', '.join(IMG_EXTENSIONS)}) found under {folder}")
    return paths


def calibration_images(folder, count, cfg, seed=0):
    """``count`` images drawn at random (seeded, so every class of an ImageNet-layout tree is represented) from
    ``folder``, preprocessed as for evaluation: float32 (N, 3, image_size, image_size). Files that do not decode
    are skipped with a warning naming them, as the datasets skip them, and the next draws take their place."""
    if count < 1:
        raise QuantError(f"calib_samples must be >= 1, got {count}")
    paths = list_images(folder)
    decoded, skipped = {}, []
    for i in np.random.default_rng(seed).permutation(len(paths)):
        if len(decoded) == count:
            break
        try:
            decoded[i] = read_image(paths[i])
        except DataError as exc:
            skipped.append(str(exc))
    if skipped:
        print(f"warning: skipped {len(skipped)} image file(s) of {folder} that do not decode: {'; '.join(skipped)}")
    if not decoded:
        raise QuantError(f"none of the {len(paths)} image files under {folder} decodes")
    return np.stack([eval_preprocess(decoded[i], cfg.image_size, cfg.crop_pct, cfg.mean, cfg.std, cfg.interpolation)
                     for i in sorted(decoded)])


def batched(images, batch_size):
    """``images`` (N, ...) as a list of batches of at most ``batch_size``."""
    return [images[i:i + batch_size] for i in range(0, len(images), batch_size)]


def eager_batches(images):
    """``images`` (N, 3, H, W) in batches of about ``EAGER_PIXELS`` pixels: 32 at 224 px, 1568 at 32 px. A
    fake-quant network dispatches ~3,000 eager ops per call, which outweighs the arithmetic of small images, so
    they go in large batches (measured at 32 px on a loaded machine: 128 images in batches of 32 took 55 s,
    1,000 in one batch 17 s)."""
    return batched(images, max(1, EAGER_PIXELS // (images.shape[-2] * images.shape[-1])))
