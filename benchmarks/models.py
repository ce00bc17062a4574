"""The models a benchmark run measures and the files they are measured from.

Our models get a realistic random inference state (no trained weights ship with the project; latency does not
depend on the values, but a chaotic untrained state is not what a deployed model computes), are saved as a
checkpoint and exported with ``export.py`` itself, one subprocess per file (MindSpore 2.10 cannot export ONNX twice
in one process), with a dynamic batch so one file serves batch 1 and batch 32. Files are cached in ``work_dir`` and
reused by later runs (``--rebuild`` makes them again).
"""
import os
import subprocess
import sys
from dataclasses import dataclass

from src.errors import ROOT
from src.files import atomic_path, ensure_dir


@dataclass(frozen=True)
class ModelSpec:
    """One network as the benchmark measures it: registered name, input size, classes, deployed form."""
    key: str
    name: str
    image_size: int = 224
    num_classes: int = 1000
    deploy: bool = False
    timm_name: str = ""
    label: str = ""
    # published ImageNet top-1 (%) of the architecture at this width (docs/models.md, REFERENCE.md §1), None
    # where there is none (the quickstart model); the one place the plots (benchmarks.plots) read it from
    published_top1: float | None = None


MODELS = {spec.key: spec for spec in (
    ModelSpec("ghostnet_100", "ghostnet_100", timm_name="ghostnet_100", label="GhostNet 1.0x",
              published_top1=73.9),
    ModelSpec("repghostnet_100", "repghostnet_100", timm_name="repghostnet_100", label="RepGhostNet 1.0x train form",
              published_top1=74.2),
    ModelSpec("repghostnet_100_deploy", "repghostnet_100", deploy=True, timm_name="repghostnet_100",
              label="RepGhostNet 1.0x deployed", published_top1=74.2),
    ModelSpec("ghostnetv2_100", "ghostnetv2_100", timm_name="ghostnetv2_100", label="GhostNetV2 1.0x",
              published_top1=75.3),
    ModelSpec("ghostnetv3_100_deploy", "ghostnetv3_100", deploy=True, timm_name="ghostnetv3_100",
              label="GhostNetV3 1.0x deployed",
              published_top1=77.1),  # GhostNetV3 paper (arXiv 2404.11202) 1.0x: re-param + KD, 600 epochs
    ModelSpec("quickstart", "ghostnet_050", image_size=32, num_classes=10, timm_name="ghostnet_050",
              label="quickstart GhostNet 0.5x, 32 px, 10 classes"),
)}

FORMATS = {"mindir": ("MINDIR", ".mindir", ()), "onnx": ("ONNX", ".onnx", ()),
           "onnx_raw": ("ONNX", ".raw.onnx", ("--optimize_graph", "false")), "lite": ("MINDIR_LITE", ".ms", ())}


def build_cell(spec, seed=0):
    """Our network for ``spec`` in eval mode with a realistic random state (deployed when ``spec.deploy``)."""
    from src.models import create_model, reparameterize
    from src.tools.random_state import randomize_state

    net = randomize_state(create_model(spec.name, num_classes=spec.num_classes), seed)
    return reparameterize(net) if spec.deploy else net


def checkpoint(spec, work_dir, rebuild=False):
    """The checkpoint every export of ``spec`` starts from (written once)."""
    import mindspore as ms

    path = os.path.join(ensure_dir(os.path.join(work_dir, spec.key)), "model.ckpt")
    if rebuild or not os.path.exists(path):
        with atomic_path(path) as tmp:
            ms.save_checkpoint(build_cell(spec), tmp)
    return path


def export(spec, kind, work_dir, rebuild=False):
    """Path of ``spec`` exported as ``kind`` (a key of :data:`FORMATS`), exported now unless cached."""
    fmt, ext, extra = FORMATS[kind]
    stem = os.path.join(work_dir, spec.key, "model")
    path = stem + ext
    if os.path.exists(path) and not rebuild:
        return path
    ckpt = checkpoint(spec, work_dir)
    name = stem + (".raw" if kind == "onnx_raw" else "")
    cmd = [sys.executable, os.path.join(ROOT, "export.py"), "--model", spec.name, "--ckpt_file", ckpt,
           "--num_classes", str(spec.num_classes), "--image_size", str(spec.image_size), "--file_format", fmt,
           "--file_name", name, "--dynamic_batch", "--mode", "PYNATIVE", "--no_reparam", "true", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(f"export of {spec.key} to {fmt} failed: {lines[-1] if lines else proc.returncode}")
    return path


def timm_model(spec):
    """timm's network of the same architecture (random weights; RepGhost / V3 re-parameterized when deployed)."""
    import timm

    model = timm.create_model(spec.timm_name, num_classes=spec.num_classes).eval()
    if spec.deploy:
        model.convert_to_deploy()
    return model


def timm_onnx(spec, work_dir, rebuild=False):
    """The ONNX PyTorch exports from timm's model (``torch.onnx.export``, dynamic batch), written once."""
    import torch

    path = os.path.join(ensure_dir(os.path.join(work_dir, spec.key)), "timm.onnx")
    if rebuild or not os.path.exists(path):
        x = torch.zeros(1, 3, spec.image_size, spec.image_size)
        with atomic_path(path) as tmp:
            torch.onnx.export(timm_model(spec), x, tmp, input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
                              dynamo=False)
    return path
