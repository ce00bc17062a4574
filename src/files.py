"""The one atomic writer: every file the project writes appears complete or not at all.

Data goes to a temporary file in the target's directory and is renamed over the target (``os.replace``). On any
failure the temporary files are removed; an ``OSError`` (no such directory, no permission, disk full) becomes a
one-line :class:`OutputError` naming the target.
"""
import contextlib
import os
import re
import shutil
import tempfile

from .errors import OutputError

# the private temporary directory of atomic_path: mkdtemp(prefix=".<name>.", suffix=".tmp") adds 8 characters
TEMP_DIR = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path with ``path``'s file name inside a private temporary directory next to it; the file
    is renamed to ``path`` when the block succeeds, and the directory is always removed. Writers that add files
    of their own (``mindspore.save_checkpoint`` writes ``<name>.tmp`` first and leaves it on a full disk) can
    therefore never leave anything behind."""
    path = os.path.abspath(path)
    folder, name = os.path.split(path)
    try:
        ensure_dir(folder)
        tmp_dir = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        yield os.path.join(tmp_dir, name)
        os.replace(os.path.join(tmp_dir, name), path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def remove_stale_temps(folder):
    """Delete the temporary directories :func:`atomic_path` left in ``folder`` when a process was killed while
    writing (nothing else is touched); returns their names."""
    stale = sorted(e.name for e in os.scandir(folder)
                   if e.is_dir(follow_symlinks=False) and TEMP_DIR.fullmatch(e.name))
    for name in stale:
        shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
    return stale


@contextlib.contextmanager
def atomic_write(path, mode="wb", encoding=None):
    """``open()`` a temporary file for writing; it replaces ``path`` when the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding or (None if "b" in mode else "utf-8")) as f:
            yield f


def ensure_dir(path):
    """Create directory ``path`` (and parents); an existing non-directory or a permission problem is an
    :class:`OutputError`."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f"{path} exists and is not a directory; choose another output path")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create directory {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"directory {path} is not writable; choose another output path")
    return path
