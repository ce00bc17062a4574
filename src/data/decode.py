"""Robust image decoding (any format/mode -> RGB uint8) and a cached, threaded check of which files decode.

Pure OpenCV + Pillow + NumPy (no MindSpore) so that inference scripts can reuse it.

Why not ``mindspore.dataset.vision.Decode``: on MindSpore 2.10 it raises on GIF/palette files and on non-image
bytes, and a JPEG cut short inside its header killed the whole process with SIGFPE (measured); one bad file
must not end an epoch. OpenCV decodes PNG (incl. RGBA, palette, 16-bit), grayscale/CMYK JPEG, BMP, WebP and
TIFF; it has no GIF decoder and OpenCV 4.11 returns ``None`` for truncated JPEGs, so Pillow is the fallback for those.
"""
import io
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from PIL import Image, ImageFile

from ..errors import DataError

# Pillow refuses partial JPEGs unless this process-wide switch is on; the data spec counts a truncated JPEG that
# still yields an image as decodable (the missing rows come out grey), as torchvision/timm pipelines do.
ImageFile.LOAD_TRUNCATED_IMAGES = True

_CV2_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION  # ignore EXIF rotation, like the Pillow fallback
_CV2_FLAGS_FAST = cv2.IMREAD_REDUCED_COLOR_8 | cv2.IMREAD_IGNORE_ORIENTATION  # JPEG: full entropy decode, 1/8 IDCT
_checked = {}  # (path, size, mtime_ns) -> decodable; lets per-epoch re-creation skip the check


def decode_image(data, fast=False):
    """Decode encoded image bytes to an RGB ``uint8`` (H, W, 3) array; raise ``ValueError`` if impossible.

    ``fast=True`` decodes JPEGs at 1/8 scale (same entropy decoding, so the same files succeed): for checks only.
    """
    buf = np.frombuffer(data, np.uint8)
    try:
        bgr = cv2.imdecode(buf, _CV2_FLAGS_FAST if fast else _CV2_FLAGS)
    except cv2.error:
        bgr = None
    if bgr is not None:
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    try:
        with Image.open(io.BytesIO(buf.tobytes())) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ValueError, ...) for bad data
        raise DataError(f"cannot decode image data ({exc})") from None


def read_image(path):
    """Read and decode the image file ``path`` to RGB ``uint8`` (H, W, 3); a :class:`DataError` names the file."""
    try:
        return decode_image(np.fromfile(path, np.uint8))
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None


def _decodes(path):
    try:
        decode_image(np.fromfile(path, np.uint8), fast=True)
        return True
    except (ValueError, OSError):
        return False


def _key(path):
    st = os.stat(path)
    return path, st.st_size, st.st_mtime_ns


def find_undecodable(paths, num_workers=2):
    """Return the subset of ``paths`` that is missing or cannot be decoded (checked once per file version).

    Decoding runs in threads: OpenCV releases the GIL, so 2 threads nearly halve the time on 2 cores.
    """
    bad, todo = [], []
    for path in paths:
        try:
            key = _key(path)
        except OSError:
            bad.append(path)
            continue
        if key not in _checked:
            todo.append(key)
        elif not _checked[key]:
            bad.append(path)
    with ThreadPoolExecutor(max(1, num_workers)) as pool:
        for key, ok in zip(todo, pool.map(lambda k: _decodes(k[0]), todo)):
            _checked[key] = ok
            if not ok:
                bad.append(key[0])
    return sorted(bad)


def drop_undecodable(samples, root, what, num_workers=2):
    """Filter ``[(path, label), ...]`` to decodable files; warn once, naming every skipped file (relative to root)."""
    bad = set(find_undecodable([p for p, _ in samples], num_workers))
    if bad:
        names = ", ".join(os.path.relpath(p, root) for p in sorted(bad))
        warnings.warn(f"{what}: skipped {len(bad)} missing or undecodable image file(s): {names}", stacklevel=3)
    return [s for s in samples if s[0] not in bad]
