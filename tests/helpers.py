"""Helpers shared by the tests: realistic random model state, fixed inputs, running the entry points (in a fresh
process or in this one) and checking how they ended."""
import os
import runpy
import subprocess
import sys

import mindspore as ms
import numpy as np

from src.tools.random_state import randomize_state  # noqa: F401  (re-exported for the tests)


def images(n=2, size=64, seed=0, channels=3):
    """A fixed random batch (N, C, size, size) float32."""
    return ms.Tensor(np.random.default_rng(seed).normal(size=(n, channels, size, size)).astype(np.float32))


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_entry(script, *args, env=None, timeout=600):
    """Run an entry point (``train.py``, ``eval.py`` …) of the repository in a fresh process."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def run_main(capsys, script, *args):
    """Run an entry script (``train.py`` …) in this process as ``python script args`` would (``__main__``, its
    ``sys.exit`` code caught), then return to PyNative. Returns a CompletedProcess of the exit code and what it
    printed (``capsys``), for :func:`ok` and :func:`refused`. For checks that end before any heavy work; each entry
    script keeps one test in a fresh process (:func:`run_entry`) for the end-to-end contract."""
    argv = list(map(str, args))
    path = os.path.join(ROOT, script)
    capsys.readouterr()  # only what this run prints
    saved, sys.argv = sys.argv, [path, *argv]
    try:
        runpy.run_path(path, run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    finally:
        sys.argv = saved
        ms.set_context(mode=ms.PYNATIVE_MODE)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess([script, *argv], code, out, err)


def ok(proc):
    """The entry point exited with code 0; returns its stdout."""
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def refused(proc, message):
    """The entry point refused with one ``error:`` line on stderr naming ``message``, exit code 2 and no traceback;
    returns that line."""
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return errors[0]


def make_imagenet_subset(dest, classes=4, n_train=16, n_val=8):
    """A small ImageNet-layout tree of real quickstart images: the first ``classes`` classes, first N files each."""
    import shutil

    from src.data import ensure_quickstart

    source = ensure_quickstart(os.path.join(dest, "_quickstart"))
    root = os.path.join(dest, "tiny")
    for split, count in (("train", n_train), ("val", n_val)):
        for name in sorted(os.listdir(os.path.join(source, split)))[:classes]:
            os.makedirs(os.path.join(root, split, name))
            for f in sorted(os.listdir(os.path.join(source, split, name)))[:count]:
                shutil.copy(os.path.join(source, split, name, f), os.path.join(root, split, name, f))
    return root
