"""``infer.py``: top-k predictions of a ``.ckpt``, ``.mindir``, ``.onnx`` or ``.ms`` model on images.

Preprocessing is ``src.data.transforms.eval_preprocess`` (pure OpenCV + NumPy, equal to the MindSpore eval
pipeline), so every runtime sees the same input. A ``.ms`` model runs in the Lite side env; MindSpore is then
never imported.
"""
import os

import numpy as np

from . import DeployError
from .labels import class_names
from .runtimes import open_runner

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
CHUNK = 32  # images per run for models with a dynamic batch (one compile for up to 32 images)


def list_images(spec):
    """Image paths from one image, a folder (sorted, not recursive) or a ``.txt`` list (relative to the list)."""
    if not spec:
        raise DeployError("--input is required: an image, a folder of images or a .txt list of image paths")
    if os.path.isdir(spec):
        paths = sorted(os.path.join(spec, n) for n in os.listdir(spec) if n.lower().endswith(IMAGE_EXTENSIONS))
        if not paths:
            raise DeployError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {spec}")
        return paths
    if not os.path.isfile(spec):
        raise DeployError(f"input not found: {spec}")
    if not spec.lower().endswith(".txt"):
        return [spec]
    base = os.path.dirname(os.path.abspath(spec))
    with open(spec, encoding="utf-8") as f:
        paths = [os.path.join(base, ln.strip()) for ln in f if ln.strip() and not ln.startswith("#")]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise DeployError(f"{len(missing)} listed image(s) not found, e.g. {missing[0]}")
    return paths


def preprocess(paths, cfg, image_size):
    """Decoded, resized, centre-cropped and normalised images as one float32 NCHW array."""
    from src.data.decode import read_image
    from src.data.transforms import eval_preprocess

    return np.stack([eval_preprocess(read_image(p), image_size, cfg.crop_pct, cfg.mean, cfg.std,
                                     cfg.interpolation) for p in paths])


def predict(runner, inputs):
    """Logits of all ``inputs``: chunks of the model's fixed batch (last one padded) or of ``CHUNK``."""
    fixed = runner.input_shape[0] if runner.input_shape[0] > 0 else 0
    step = fixed or CHUNK
    outputs = []
    for start in range(0, len(inputs), step):
        batch = inputs[start:start + step]
        padded = np.concatenate([batch, np.repeat(batch[-1:], fixed - len(batch), 0)]) if fixed else batch
        outputs.append(runner(padded)[:len(batch)])
    return np.concatenate(outputs)


def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def top_k(probs, k):
    """Indices of the ``k`` largest entries per row, best first (ties: lower index first)."""
    return np.argsort(-probs, axis=1, kind="stable")[:, :k]


def infer_main(cfg):
    """Entry point of ``infer.py``."""
    if not cfg.model_file:
        raise DeployError("--model_file is required: a .ckpt (with --model/--num_classes), .mindir, .onnx or .ms")
    paths = list_images(cfg.input)
    if os.path.splitext(cfg.model_file)[1].lower() in (".ckpt", ".mindir"):
        from src.runtime import init_context

        init_context(cfg)
    runner = open_runner(cfg.model_file, cfg)
    image_size = runner.input_shape[2] if runner.input_shape[2] > 0 else cfg.image_size
    if image_size != cfg.image_size:
        print(f"note: {cfg.model_file} takes {image_size}x{image_size} inputs; using that instead of "
              f"image_size {cfg.image_size}")
    probs = softmax(predict(runner, preprocess(paths, cfg, image_size)))
    names = class_names(cfg.labels_file, probs.shape[1])
    for path, row, best in zip(paths, probs, top_k(probs, min(cfg.top_k, probs.shape[1]))):
        print(path)
        for rank, idx in enumerate(best, 1):
            name = f"  {names[idx]}" if names else ""
            print(f"  {rank}. class {idx:4d}  p={row[idx]:.4f}{name}")
    return 0
