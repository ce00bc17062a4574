"""Robust image decoding (any format/mode -> RGB uint8) and a remembered check of which files decode, and how.

Pure OpenCV + Pillow + NumPy (no MindSpore) so that inference scripts can reuse it.

Policy (one a user can rely on): a file is used only when it decodes *completely*. A JPEG or PNG whose data ends
early (a cut download) is skipped with a log line naming it, never filled with grey and trained on; so is anything
that is not an image. Every file is put in one of three classes by :func:`classify`:

* ``native``: JPEG/PNG/BMP/TIFF that OpenCV decodes completely. MindSpore's C++ ``vision.Decode`` gives the same
  pixels (measured on 2.10: bit-identical to OpenCV for JPEG, PNG in every mode, BMP, TIFF), so the training
  pipeline decodes these in C++.
* ``python``: files only Pillow/OpenCV can read (GIF or palette content under .jpg, WebP): MindSpore 2.10's
  Decode raises on them. The pipeline decodes these in Python and hands C++ a lossless BMP.
* ``bad``: missing, truncated or not an image. A JPEG cut inside its header even crashed MindSpore's Decode with
  SIGFPE (measured), which is why nothing reaches the C++ decoder unchecked.
"""
import hashlib
import io
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from PIL import Image

from ..errors import DataError, OutputError
from ..files import atomic_write

log = logging.getLogger("ghostnet.data")

NATIVE, PYTHON, BAD = "native", "python", "bad"
_NATIVE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"II*\x00", b"MM\x00*")
_CV2_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION  # ignore EXIF rotation, like the Pillow fallback
_CV2_FLAGS_FAST = cv2.IMREAD_REDUCED_COLOR_8 | cv2.IMREAD_IGNORE_ORIENTATION  # JPEG: full entropy decode, 1/8 IDCT
CACHE_VERSION = 1


def _cv2_decode(buf, fast):
    try:
        return cv2.imdecode(buf, _CV2_FLAGS_FAST if fast else _CV2_FLAGS)
    except cv2.error:
        return None


def _pillow_decode(buf):
    """RGB array, or raise DataError saying why (Pillow refuses data that ends early: LOAD_TRUNCATED_IMAGES off)."""
    try:
        with Image.open(io.BytesIO(buf.tobytes())) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ValueError, ...) for bad data
        truncated = "truncated" in str(exc).lower()
        why = "its data ends early (truncated file)" if truncated else "not a decodable image (unknown or corrupt)"
        raise DataError(why) from None


def decode_image(data, fast=False):
    """Decode encoded image bytes completely to an RGB ``uint8`` (H, W, 3) array, or raise :class:`DataError`.

    ``fast=True`` decodes JPEGs at 1/8 scale (same entropy decoding, so the same files succeed): for checks only.
    """
    buf = np.frombuffer(data, np.uint8)
    bgr = _cv2_decode(buf, fast)
    if bgr is not None:
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return _pillow_decode(buf)


def read_image(path):
    """Read and decode the image file ``path`` to RGB ``uint8`` (H, W, 3); a :class:`DataError` names the file."""
    try:
        return decode_image(np.fromfile(path, np.uint8))
    except (DataError, OSError) as exc:
        raise DataError(f"{path}: {exc}") from None


def classify(path):
    """``(kind, reason)``: NATIVE, PYTHON or BAD (see the module docstring) for the file at ``path``."""
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        return BAD, f"unreadable ({exc.strerror or exc})"
    if _cv2_decode(data, fast=True) is not None:
        return (NATIVE if data[:8].tobytes().startswith(_NATIVE_MAGIC) else PYTHON), ""
    try:
        _pillow_decode(data)
    except DataError as exc:
        return BAD, str(exc)
    return PYTHON, ""


def to_native_bytes(data):
    """Lossless BMP bytes of a ``python``-class file, which MindSpore's C++ Decode reads."""
    return np.frombuffer(cv2.imencode(".bmp", cv2.cvtColor(decode_image(data), cv2.COLOR_RGB2BGR))[1], np.uint8)


def default_cache_dir():
    """``$GHOSTNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/ghostnet_mindspore``, else ``~/.cache/ghostnet_mindspore``."""
    return os.environ.get("GHOSTNET_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ghostnet_mindspore")


class DecodeCheck:
    """Which files of a dataset decode, checked once per file version and remembered on disk.

    Entries are keyed by path relative to the data root and valid while the file's size and mtime are unchanged.
    Each process writes only its own file (``<split>.rank<r>.json``, atomically), so ranks never race; a lookup reads
    its own file first and the other ranks' files only for paths it does not know. A corrupt cache file is
    ignored with a warning and rebuilt.
    """

    def __init__(self, root, split, cache_dir="", rank=0):
        self.root = os.path.abspath(root)
        self.prefix = os.path.join(root, "")  # sample paths are joined onto the root as given
        key = hashlib.sha1(os.path.realpath(root).encode()).hexdigest()[:16]
        self.folder = os.path.join(cache_dir or default_cache_dir(), "decode", key)
        self.split = split
        self.path = os.path.join(self.folder, f"{split}.rank{rank}.json")
        self.entries = self._read(self.path)
        self.others_read = False

    def _read(self, path):
        if not os.path.isfile(path):
            return {}
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            if data.get("version") != CACHE_VERSION or data.get("root") != self.root:
                raise ValueError("written for another version or data root")
            return {k: tuple(v) for k, v in data["entries"].items()}
        except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
            log.warning("ignoring corrupt decode cache %s (%s); files are checked again", path, exc)
            return {}

    def _read_others(self):
        for name in sorted(os.listdir(self.folder)) if os.path.isdir(self.folder) else []:
            path = os.path.join(self.folder, name)
            if name.startswith(self.split + ".rank") and name.endswith(".json") and path != self.path:
                for k, v in self._read(path).items():
                    self.entries.setdefault(k, v)
        self.others_read = True

    def classify(self, paths, num_workers=2):
        """``{path: (kind, reason)}`` for ``paths``; unknown or changed files are checked (in threads: OpenCV
        releases the GIL) and the cache file is rewritten when anything was checked."""
        result, todo = {}, []
        for path in paths:
            try:
                st = os.stat(path)
            except OSError as exc:  # gone, or unreadable (a symlink loop): skipped either way
                result[path] = (BAD, "missing" if isinstance(exc, FileNotFoundError)
                                else f"unreadable ({exc.strerror or exc})")
                continue
            rel = path[len(self.prefix):] if path.startswith(self.prefix) else os.path.relpath(path, self.root)
            entry = self.entries.get(rel)
            if (entry is None or entry[:2] != (st.st_size, st.st_mtime_ns)) and not self.others_read:
                self._read_others()
                entry = self.entries.get(rel)
            if entry is not None and entry[:2] == (st.st_size, st.st_mtime_ns):
                result[path] = (entry[2], entry[3])
            else:
                todo.append((path, rel, st))
        if todo:
            with ThreadPoolExecutor(max(1, num_workers)) as pool:
                for (path, rel, st), (kind, reason) in zip(todo, pool.map(lambda t: classify(t[0]), todo)):
                    result[path] = (kind, reason)
                    self.entries[rel] = (st.st_size, st.st_mtime_ns, kind, reason)
            self._save()
        return result

    def _save(self):
        data = {"version": CACHE_VERSION, "root": self.root, "entries": self.entries}
        try:
            with atomic_write(self.path, "w") as f:
                json.dump(data, f, separators=(",", ":"))
        except OutputError as exc:  # a cache that cannot be written only costs time on the next run
            log.warning("could not write the decode cache %s (%s); the next run checks the files again",
                        self.path, exc)


def drop_undecodable(samples, root, what, check, num_workers=2):
    """``(kept samples, {path: kind})``: files that do not decode completely are dropped, each named in the log
    with the reason, plus one summary line."""
    kinds = check.classify([p for p, _ in samples], num_workers)
    bad = sorted(p for p, (kind, _) in kinds.items() if kind == BAD)
    for path in bad:
        log.warning("%s: skipped %s: %s", what, os.path.relpath(path, root), kinds[path][1])
    if bad:
        log.warning("%s: skipped %d of %d image files that are missing or do not decode completely", what,
                    len(bad), len(samples))
    return [s for s in samples if kinds[s[0]][0] != BAD], {p: k for p, (k, _) in kinds.items()}
