"""Images in, top-k predictions out: the pieces of ``infer.py`` (:mod:`src.flows.infer`), also used by eval.py,
the int8 export's verification and the ARM runner's host side.

Preprocessing is ``src.data.transforms.eval_preprocess`` (pure OpenCV + NumPy, equal to the MindSpore eval
pipeline) with the settings the model file carries (its record), so every runtime sees the input the model was
trained for. A ``.ms`` model runs in the Lite side env; MindSpore is then never imported.
"""
import logging
import os

import numpy as np

from src.data.decode import read_image
from src.data.folders import IMG_EXTENSIONS, is_image_file
from src.data.transforms import eval_preprocess
from src.errors import DataError

from . import DeployError

CHUNK = 32  # images per run for models with a dynamic batch (one compile for up to 32 images)
log = logging.getLogger("ghostnet.infer")


def list_images(spec):
    """Image paths from one image, a folder (sorted, not recursive) or a ``.txt`` list (relative to the list)."""
    if not spec:
        raise DeployError("--input is required: an image, a folder of images or a .txt list of image paths")
    if os.path.isdir(spec):
        paths = sorted(os.path.join(spec, n) for n in os.listdir(spec) if is_image_file(n))
        if not paths:
            raise DeployError(f"no images ({', '.join(IMG_EXTENSIONS)}) in {spec}")
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


def preprocess(paths, cfg, image_size, skip_bad=False):
    """``(inputs, kept paths)``: decoded, resized, centre-cropped and normalised images as one float32 NCHW
    array. A file that does not decode completely is an error naming it, or with ``skip_bad`` a warning."""
    arrays, kept = [], []
    for path in paths:
        try:
            image = read_image(path)
        except DataError as exc:
            if not skip_bad:
                raise
            log.warning("skipped %s", exc)
            continue
        arrays.append(eval_preprocess(image, image_size, cfg.crop_pct, cfg.mean, cfg.std, cfg.interpolation))
        kept.append(path)
    if not arrays:
        raise DataError("none of the input files is a decodable image")
    return np.stack(arrays), kept


def predict(runner, inputs):
    """Logits of all ``inputs``: chunks of the model's fixed batch (the last one padded) or of ``CHUNK``, in one
    :meth:`~src.deploy.runtimes.Runner.run_chunks` call (Lite: one worker process for all of them)."""
    fixed = runner.input_shape[0] if runner.input_shape[0] > 0 else 0
    step = fixed or CHUNK
    padded = np.concatenate([inputs, np.repeat(inputs[-1:], -len(inputs) % step, 0)]) if fixed else inputs
    return runner.run_chunks(padded, step)[:len(inputs)]


def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def top_k(probs, k):
    """Indices of the ``k`` largest entries per row, best first (ties: lower index first)."""
    return np.argsort(-probs, axis=1, kind="stable")[:, :k]


def format_predictions(path, row, k, names):
    """The lines printed for one image: its path, then ``  1. class    N  p=0.xxxx  NAME`` per rank."""
    lines = [path]
    for rank, idx in enumerate(top_k(row[None], min(k, len(row)))[0], 1):
        lines.append(f"  {rank}. class {idx:4d}  p={row[idx]:.4f}" + (f"  {names[idx]}" if names else ""))
    return lines
