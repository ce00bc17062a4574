"""Shared by test_export.py and test_infer.py: small checkpoints and exported files, made once per session.

Files live under pytest's session base temp dir, so both test modules reuse one export (each export is a
subprocess: a second ONNX export in one MindSpore 2.10 process crashes).
"""
import importlib.util
import os
import subprocess
import sys

import mindspore as ms
import pytest

from helpers import ROOT, randomize_state
from src.config import Config
from src.data import IMAGENET_MEAN, IMAGENET_STD
from src.models import create_model
from src.record import checkpoint_entry, make_record

NUM_CLASSES, SIZE = 10, 32
SMALL = ["--num_classes", str(NUM_CLASSES), "--image_size", str(SIZE), "--mode", "PYNATIVE"]
EXT = {"MINDIR": ".mindir", "ONNX": ".onnx", "MINDIR_LITE": ".ms"}


# Runs an entry point with MindSpore made unimportable (a .ms model must not need it).
_NO_MINDSPORE = ("import runpy, sys; sys.modules['mindspore'] = None; sys.argv = sys.argv[1:]; "
                 "runpy.run_path(sys.argv[0], run_name='__main__')")


def run(script, *args, without_mindspore=False):
    """Run a top-level entry point with this interpreter; returns the CompletedProcess (text)."""
    prefix = ["-c", _NO_MINDSPORE] if without_mindspore else []
    return subprocess.run([sys.executable, *prefix, os.path.join(ROOT, script), *args], capture_output=True,
                          text=True, cwd=ROOT)


def checkpoint(base, name, seed=1):
    """A checkpoint of ``name`` (NUM_CLASSES outputs) with a realistic random state; created once."""
    path = os.path.join(base, f"{name}.ckpt")
    if not os.path.exists(path):
        ms.save_checkpoint(reference_cell(name, seed=seed), path)
    return path


def recorded_checkpoint(base, name, class_names=None, crop_pct=0.75, seed=1):
    """Like :func:`checkpoint`, with the model record training writes (model, classes, 32 px, ``crop_pct``)."""
    path = os.path.join(base, f"{name}-recorded.ckpt")
    if not os.path.exists(path):
        cfg = Config(model=name, num_classes=NUM_CLASSES, image_size=SIZE, crop_pct=crop_pct,
                     interpolation="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD)
        ms.save_checkpoint(reference_cell(name, seed=seed), path,
                           append_dict=checkpoint_entry(make_record(cfg, "train", class_names)))
    return path


def reference_cell(name, ckpt=None, seed=1):
    """The train-form Cell of ``name`` in eval mode: from ``ckpt`` when given, else randomized with ``seed``."""
    net = create_model(name, num_classes=NUM_CLASSES)
    if ckpt:
        ms.load_param_into_net(net, ms.load_checkpoint(ckpt), strict_load=True)
        net.set_train(False)
        return net
    return randomize_state(net, seed)


def exported(base, name, fmt, dynamic=False, class_names=None, image_size=SIZE):
    """Export ``name``'s checkpoint to ``fmt`` (at ``image_size`` px) once; returns (path, stdout of the export).
    With ``class_names`` the source is :func:`recorded_checkpoint` and no model flags are passed (the record
    supplies them)."""
    stem = os.path.join(base, f"{name}{'_dyn' if dynamic else ''}{'_rec' if class_names else ''}"
                              f"{'' if image_size == SIZE else f'_{image_size}px'}")
    path, log = stem + EXT[fmt], stem + EXT[fmt] + ".log"
    if not os.path.exists(path):
        source = (["--ckpt_file", recorded_checkpoint(base, name, class_names), "--mode", "PYNATIVE"] if class_names
                  else ["--model", name, "--ckpt_file", checkpoint(base, name), *SMALL, "--image_size", str(image_size)])
        proc = run("export.py", *source, "--file_name", stem, "--file_format", fmt,
                   *(["--dynamic_batch"] if dynamic else []))
        assert proc.returncode == 0, proc.stderr[-3000:]
        with open(log, "w", encoding="utf-8") as f:
            f.write(proc.stdout)
    with open(log, encoding="utf-8") as f:
        return path, f.read()


def lite_side_env():
    """The Lite side env's python, created with scripts/setup_lite_env.sh if needed; None (with reason) if
    impossible."""
    from src.deploy import lite

    if lite.side_env_python() is None:
        proc = subprocess.run(["bash", lite.SETUP_SCRIPT], capture_output=True, text=True)
        if proc.returncode == 3:
            return None, proc.stderr.strip().splitlines()[0]
        assert proc.returncode == 0, proc.stderr[-2000:]
    return lite.side_env_python(), ""


def foolbox_imagenet_photos():
    """The 20 ImageNet JPEGs shipped by ``foolbox==3.3.4`` (found without importing foolbox), or []."""
    spec = importlib.util.find_spec("foolbox")
    if spec is None:
        return []
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data")
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.startswith("imagenet_"))


def foolbox_photo_list(folder):
    """(the 20 foolbox photos, a .txt list of them written into ``folder``); skips the test without foolbox."""
    photos = foolbox_imagenet_photos()
    if not photos:
        pytest.skip("real photos need `pip install --no-deps foolbox==3.3.4` (20 ImageNet JPEGs)")
    path = os.path.join(folder, "photos.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("# foolbox ImageNet samples\n" + "\n".join(photos) + "\n")
    return photos, path
