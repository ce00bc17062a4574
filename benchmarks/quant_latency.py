"""``python -m benchmarks.quant_latency``: int8 against float, side by side, in onnxruntime and MindSpore Lite
(docs/benchmarks.md "int8 vs float" and docs/quantization.md).

Per model, from the benchmark harness's own checkpoint (:mod:`benchmarks.models`: a realistic random state,
``export.py`` with a dynamic batch), the rows are:

- ``fp32``: our float ONNX; ``int8``: ``export.py --quant ptq`` of the same checkpoint (calibrated on 64
  quickstart images; latency does not depend on the weight values, so the file is kept whatever its agreement);
  ``int8_unpadded``: the same with ``--optimize_graph false`` (the int8 graph before channel padding);
- ``stock_int8``: onnxruntime's own ``quantize_static`` (QDQ, per-channel, uint8 activations / int8 weights) of the
  same float ONNX, converted to opset 13 first, calibrated on the same images;
- ``ms_fp32`` / ``ms_int8``: the float and int8 ``.ms`` in MindSpore Lite 2.0 x86 (the Lite side env; skipped with
  a note without it).

All rows of one thread setting run interleaved (:func:`benchmarks.timing.interleave`) at batch 1 and 32; medians
of wall and process CPU time are printed and, with ``--json``, written.

    python -m benchmarks.quant_latency [--models ghostnet_100 repghostnet_100_deploy] [--threads 1 2]
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

from src.config import load_config
from src.deploy import lite
from src.deploy.onnx_graph import onnx
from src.errors import ROOT
from src.files import atomic_path, atomic_write
from src.quant.calibrate import calibration_images

from . import models
from .rows import LiteRow, onnxruntime_row
from .timing import interleave, paired_ratios, stats

CALIB_SAMPLES = 64


def int8_export(spec, work_dir, calib, fmt="ONNX", optimize=True):
    """``spec``'s harness checkpoint quantized by PTQ and exported as int8 ``fmt`` (cached in ``work_dir``)."""
    ext = ".onnx" if fmt == "ONNX" else ".ms"
    stem = os.path.join(work_dir, spec.key, "model.int8" + ("" if optimize else ".unpadded"))
    if not os.path.exists(stem + ext):
        cmd = [sys.executable, os.path.join(ROOT, "export.py"), "--model", spec.name,
               "--ckpt_file", models.checkpoint(spec, work_dir), "--num_classes", str(spec.num_classes),
               "--image_size", str(spec.image_size), "--file_format", fmt, "--file_name", stem,
               "--mode", "PYNATIVE", "--quant", "ptq", "--calib_data", calib, "--calib_samples", str(CALIB_SAMPLES),
               "--optimize_graph", str(optimize).lower(),
               "--quant_min_agreement", "0"]  # timing only: agreement is printed, not required
        cmd += ["--dynamic_batch"] if fmt == "ONNX" else []
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"int8 {fmt} export of {spec.key} failed:\n{proc.stderr[-2000:]}")
    return stem + ext


def stock_int8(spec, fp32, work_dir, calib):
    """onnxruntime's ``quantize_static`` of our float ONNX ``fp32`` (cached): the tool a user would reach for."""
    # lazy: onnxruntime.quantization is only needed for this row
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    path = os.path.join(work_dir, spec.key, "model.stock_int8.onnx")
    if os.path.exists(path):
        return path
    cfg = load_config("export", ["--image_size", str(spec.image_size)])
    images = calibration_images(calib, CALIB_SAMPLES, cfg)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input": images[i:i + 1]} for i in range(len(images))])

        def get_next(self):
            return next(self.batches, None)

    with atomic_path(path) as tmp:
        opset13 = tmp + ".opset13.onnx"
        onnx.save(onnx.version_converter.convert_version(onnx.load(fp32), 13), opset13)
        quantize_static(opset13, tmp, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        os.remove(opset13)
    return path


def files(spec, work_dir, calib, with_lite):
    """``{row label: file}`` of one model (exported or quantized now unless cached)."""
    fp32 = models.export(spec, "onnx", work_dir)
    out = {"fp32": fp32, "int8_unpadded": int8_export(spec, work_dir, calib, optimize=False),
           "int8": int8_export(spec, work_dir, calib), "stock_int8": stock_int8(spec, fp32, work_dir, calib)}
    if with_lite:
        out.update(ms_fp32=models.export(spec, "lite", work_dir), ms_int8=int8_export(spec, work_dir, calib,
                                                                                       "MINDIR_LITE"))
    return out


def measure(spec, paths, threads, server, args):
    """One interleaved run of every file of ``spec`` at ``threads``: ``{label_bs{b}: (wall ms, cpu ms)}``."""
    rows = {}
    for label, path in paths.items():
        if path.endswith(".ms"):
            rows[label] = LiteRow(spec, server, path, threads, runtime=f"lite-{label}")
        else:
            rows[label] = onnxruntime_row(spec, path, f"onnxruntime-{label}", "ours", threads)
    result = {"model": spec.key, "threads": threads}
    column = time_column(threads)
    for batch, rounds, calls in zip((1, 32), args.rounds, args.calls):
        for row in rows.values():
            row.prepare(batch, 3)
        times = interleave(list(rows.values()), batch, rounds, calls, progress=lambda msg: None)
        result[f"load_bs{batch}"] = max(times.pop("_load"))
        for label, row in rows.items():
            s = stats(times[row.key], batch)
            result[f"{label}_bs{batch}"] = [s["median_ms"], s["cpu_median_ms"]]
        for other in ("stock_int8", "fp32"):
            ratios = paired_ratios(times[rows["int8"].key], times[rows[other].key], calls, column)
            result[f"int8_vs_{other}_bs{batch}"] = [float(np.median(ratios)), int((ratios < 1).sum()), len(ratios)]
    return result


LABELS = {"fp32": "float ONNX", "int8_unpadded": "int8 before padding", "int8": "int8 (ours)",
          "stock_int8": "stock PTQ", "ms_fp32": "`.ms` fp32", "ms_int8": "`.ms` int8"}
PAIRED = {"int8_vs_stock_int8": "ours / stock, per round (rounds won)", "int8_vs_fp32": "ours / float, per round"}


def time_column(threads):
    """0 (wall) or 1 (process CPU time): CPU time is the cost at 1 thread; at 2 the wall time is the latency."""
    return 1 if threads == 1 else 0


def markdown(results):
    """The table of docs/benchmarks.md "int8 vs float": per model, batch and thread count, each file's time
    (1 thread: process CPU ms; more: wall ms) and its ratio to our float ONNX; then, round by round, our int8's time
    over the stock PTQ's and over the float's (median ratio, and the rounds our int8 was faster)."""
    labels = [k for k in LABELS if any(f"{k}_bs1" in r for r in results)]
    paired = [k for k in PAIRED if any(f"{k}_bs1" in r for r in results)]
    lines = ["| model | batch | threads | " + " | ".join([LABELS[k] for k in labels] + [PAIRED[k] for k in paired])
             + " |", "|---" * (3 + len(labels) + len(paired)) + "|"]
    for r in results:
        col = time_column(r["threads"])
        for batch in (1, 32):
            base = r[f"fp32_bs{batch}"][col]
            cells = [f"{r[f'{k}_bs{batch}'][col]:.2f} ({r[f'{k}_bs{batch}'][col] / base:.2f}×)" for k in labels]
            cells += ["{:.2f} ({}/{})".format(*r[f"{k}_bs{batch}"]) for k in paired]
            lines.append(f"| {r['model']} | {batch} | {r['threads']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def print_sizes(sizes):
    for model, size in sizes.items():
        print(f"{model} sizes (MB): " + ", ".join(f"{k} {v:.2f}" for k, v in size.items()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["ghostnet_100", "repghostnet_100_deploy"],
                        choices=sorted(models.MODELS))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, nargs=2, default=[10, 4], help="rounds at batch 1 and 32")
    parser.add_argument("--calls", type=int, nargs=2, default=[10, 1], help="calls per row per round")
    parser.add_argument("--work_dir", default="outputs/bench/models", help="model files (shared with benchmarks.run)")
    parser.add_argument("--calib_data", default="", help="calibration images (default: the quickstart train set)")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    from src.data import ensure_quickstart

    calib = args.calib_data or os.path.join(ensure_quickstart(os.path.join(args.work_dir, "quickstart")), "train")
    server = lite.TimingServer() if lite.side_env_python() else None
    if server is None:
        print("no MindSpore Lite side env (bash scripts/setup_lite_env.sh): the .ms rows are skipped")
    results, sizes = [], {}
    try:
        for key in args.models:
            spec = models.MODELS[key]
            paths = files(spec, args.work_dir, calib, server is not None)
            sizes[key] = {label: os.path.getsize(p) / 1e6 for label, p in paths.items()}
            for threads in args.threads:
                results.append(measure(spec, paths, threads, server, args))
                print(json.dumps(results[-1]), flush=True)
    finally:
        if server:
            server.close()
    print("\n" + markdown(results))  # both medians of every row are in the JSON
    print_sizes(sizes)
    if args.json:
        with atomic_write(args.json, "w") as f:
            json.dump({"results": results, "sizes_mb": sizes}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
