"""Writers of MINDIR / ONNX / AIR / MindSpore Lite ``.ms`` files and their verification in their own runtime.

``export.py`` (:mod:`src.flows.export`) writes the file inside a private temporary directory next to the target
(``src.files.atomic_path``), re-loads it in its own runtime and compares it with the Cell on a fixed input
(:func:`verify`); only then is it moved into place, followed by its record sidecar ``<file>.json``. int8 files are
written by :mod:`src.quant.export` with :func:`write_mindir` and :func:`eager_outputs` from here.
"""
import json
import os

import numpy as np

from src.extras import require
from src.record import CKPT_KEY

from . import DeployError, lite, onnx_graph
from .onnx_graph import onnx
from .runtimes import onnxruntime_available, open_runner

FORMATS = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air", "MINDIR_LITE": ".ms"}


def output_path(cfg, ext):
    """``file_name`` (default ``output_dir/<model>``) with the format's extension, absolute."""
    base = cfg.file_name or os.path.join(cfg.output_dir, cfg.model)
    if base.lower().endswith(ext):
        base = base[:-len(ext)]
    return os.path.abspath(base + ext)


def check_format(cfg):
    """Reject impossible format requests before any work; returns the upper-cased format."""
    fmt = str(cfg.file_format).upper()
    if fmt not in FORMATS:
        raise DeployError(f"file_format must be one of {', '.join(FORMATS)}, got '{cfg.file_format}'")
    if fmt == "AIR" and cfg.device_target != "Ascend":
        raise DeployError(f"AIR export needs the Ascend backend (device_target is {cfg.device_target}); "
                          "use --file_format MINDIR or ONNX instead")
    if fmt == "AIR" and cfg.dynamic_batch:
        raise DeployError("dynamic_batch is supported for MINDIR, ONNX and MINDIR_LITE, not AIR")
    if cfg.batch_size < 1:
        raise DeployError(f"batch_size must be >= 1, got {cfg.batch_size}")
    if fmt == "MINDIR_LITE" and lite.converter_cli() is None:
        lite.require_side_env()
        require("onnx", "MINDIR_LITE export (converted from ONNX)")
    if fmt == "ONNX":
        require("onnx", "ONNX export")
    return fmt


def sample_inputs(cfg):
    """Fixed verification batches: ``batch_size``, plus ``batch_size + 2`` for a dynamic batch."""
    sizes = (cfg.batch_size, cfg.batch_size + 2) if cfg.dynamic_batch else (cfg.batch_size,)
    rng = np.random.default_rng(0)
    return [rng.normal(size=(n, 3, cfg.image_size, cfg.image_size)).astype(np.float32) for n in sizes]


def eager_outputs(net, inputs):
    """The Cell's logits in PyNative mode: an independent reference that costs no extra graph compile."""
    import mindspore as ms  # lazy: deploy imports MindSpore only where it runs a model (a .ms needs none)

    mode = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        return [net(ms.Tensor(x)).asnumpy() for x in inputs]
    finally:
        ms.set_context(mode=mode)


def _export_input(x, dynamic):
    import mindspore as ms  # lazy: deploy imports MindSpore only where it runs a model (a .ms needs none)

    return ms.Tensor(shape=[None, *x.shape[1:]], dtype=ms.float32) if dynamic else ms.Tensor(x)


def write_mindir(net, path, x, dynamic, file_format="MINDIR"):
    """MINDIR (or AIR) via ``mindspore.export``; a dynamic batch uses a ``None`` leading dimension."""
    import mindspore as ms  # lazy: deploy imports MindSpore only where it runs a model (a .ms needs none)

    ms.export(net, _export_input(x, dynamic), file_name=path, file_format=file_format)


def write_onnx(net, path, x, dynamic, record=None, optimize=True):
    """ONNX via ``mindspore.onnx.export`` (one ONNX export per process: a second one crashes MindSpore 2.10),
    then the graph passes of :mod:`src.deploy.onnx_graph` (unless ``optimize`` is false) and the model record in
    the file's metadata."""
    import mindspore as ms  # lazy: deploy imports MindSpore only where it runs a model (a .ms needs none)

    axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None
    ms.onnx.export(net, ms.Tensor(x), file_name=path, input_names=["input"], output_names=["logits"],
                   dynamic_axes=axes)
    model = onnx.load(path)
    if optimize:
        report = onnx_graph.optimize(model)
        print("optimized the ONNX graph: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report.items()))
    if record:
        onnx.helper.set_model_props(model, {CKPT_KEY: json.dumps(record)})
    onnx.save(model, path)


def write_lite(net, path, x, dynamic, optimize=True):
    """``.ms``: MINDIR through ``converter_lite`` when on PATH, else our (optimized) ONNX through the Lite 2.0
    side env."""
    stem = os.path.splitext(path)[0]
    if lite.converter_cli():
        write_mindir(net, stem + ".mindir", x, dynamic)
        lite.convert_mindir(stem + ".mindir", path)
    else:
        write_onnx(net, stem + ".onnx", x, dynamic, optimize=optimize)
        lite.convert_onnx(stem + ".onnx", path)


def write(fmt, net, path, x, dynamic, record=None, optimize=True):
    """Write ``net`` to ``path`` in ``fmt`` (ONNX files also carry ``record`` inside; ``optimize`` applies the
    ONNX graph passes to ONNX and to the ONNX a ``.ms`` is converted from)."""
    if fmt in ("MINDIR", "AIR"):
        write_mindir(net, path, x, dynamic, fmt)
    elif fmt == "ONNX":
        write_onnx(net, path, x, dynamic, record, optimize)
    else:
        write_lite(net, path, x, dynamic, optimize)


def skip_reason(fmt):
    """Why ``fmt`` cannot be re-loaded here, or None when it can."""
    if fmt == "AIR":
        return "AIR files run on Ascend through ACL/ATC, not in MindSpore"
    if fmt == "ONNX" and not onnxruntime_available():
        return "onnxruntime is not installed"
    if fmt == "MINDIR_LITE" and lite.side_env_python() is None:
        return "no MindSpore Lite Python runtime (scripts/setup_lite_env.sh); check it with Lite's benchmark tool"
    return None


def verify(path, fmt, inputs, references, tolerance):
    """Run ``path`` in its runtime on every input; returns the max abs difference to the Cell or raises.

    The tolerance scales with ``max(1, max |logit|)``: float32 rounding grows with the logits, and a randomly
    initialised network in eval mode has logits of 1e3-1e4 (trained ones are O(1-10), where it is absolute).
    """
    runner = open_runner(path)
    diff, scale = 0.0, 1.0
    for x, ref in zip(inputs, references):
        out = runner(x)
        if out.shape != ref.shape:
            raise DeployError(f"exported {fmt} returned shape {out.shape} for input {x.shape}, Cell {ref.shape}")
        diff = max(diff, float(np.abs(out - ref).max()))
        scale = max(scale, float(np.abs(ref).max()))
    batches = " and ".join(str(x.shape[0]) for x in inputs)
    print(f"verified {fmt} in its runtime at batch {batches}: max abs diff vs Cell {diff:.3g} "
          f"(max |logit| {scale:.3g}, tolerance {tolerance:g} x max(1, max |logit|))")
    if not diff <= tolerance * scale:
        raise DeployError(f"exported {fmt} differs from the Cell by {diff:.3g} > verify_tolerance {tolerance:g} "
                          f"x {scale:.3g}; no file written")
    return diff
