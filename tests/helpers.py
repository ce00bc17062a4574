"""Helpers shared by the tests: realistic random model state and fixed inputs."""
import os
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
