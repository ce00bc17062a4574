"""Eval preprocessing in pure OpenCV + NumPy (no MindSpore), bit-compatible with the MindSpore eval pipeline.

``pipeline.py`` builds the MindSpore transforms; this module holds what both must agree on, so an inference
script without MindSpore gets the same network input (tested to <= 1e-5).
"""
import cv2
import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# MindSpore's Resize matches cv2.resize bit-exactly for these (measured on MindSpore 2.10 / OpenCV 4.11) except
# bicubic (±1 on ~2 % of pixels): the eval pipeline therefore resizes bicubic with this module's cv2 code.
CV2_INTERPOLATIONS = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
                      "area": cv2.INTER_AREA}


def eval_resize_size(image_size, crop_pct):
    """Shorter-side length before the centre crop: ``int(image_size / crop_pct)``."""
    return int(image_size / crop_pct)


def resize_shorter(image, size, interpolation="bilinear"):
    """Resize so the shorter side is ``size``; the longer one is ``int(long * size / short)`` (MindSpore's rule)."""
    h, w = image.shape[:2]
    new_h, new_w = (size, int(w * size / h)) if h <= w else (int(h * size / w), size)
    return cv2.resize(image, (new_w, new_h), interpolation=CV2_INTERPOLATIONS[interpolation])


def center_crop(image, size):
    """Crop the central ``size`` x ``size`` window; offsets round down like MindSpore's ``CenterCrop``."""
    h, w = image.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return image[top:top + size, left:left + size]


def normalize_params(mean, std):
    """Mean/std on the 0..255 scale of uint8 pixels; values given on the 0..1 scale (max <= 1) are scaled up."""
    mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    scale = 255.0 if mean.max() <= 1.0 and std.max() <= 1.0 else 1.0
    return [float(m) * scale for m in mean], [float(s) * scale for s in std]


def eval_preprocess(image, image_size, crop_pct=0.875, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                    interpolation="bilinear", channel_order="rgb"):
    """Decoded ``uint8`` image (H, W[, C]) -> float32 (3, image_size, image_size) network input.

    ``channel_order="bgr"`` for ``cv2.imread`` output; grayscale and 4-channel inputs are turned into RGB.
    """
    if image.ndim == 2 or image.shape[2] == 1:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if channel_order == "bgr" else cv2.COLOR_RGBA2RGB)
    elif channel_order == "bgr":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    image = center_crop(resize_shorter(image, eval_resize_size(image_size, crop_pct), interpolation), image_size)
    mean, std = normalize_params(mean, std)
    out = (image.astype(np.float32) - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(out.transpose(2, 0, 1))
