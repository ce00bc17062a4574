"""``python -m benchmarks.quant_latency``: onnxruntime latency of our int8 (QDQ) ONNX against our float ONNX, and
file sizes (README "Quantization").

Per model, the benchmark harness's own files (:mod:`benchmarks.models`: a realistic random state, ``export.py``
with a dynamic batch) give the float ONNX; ``export.py --quant ptq`` of the same checkpoint, calibrated on the
quickstart images, gives the int8 ONNX (latency does not depend on the weight values, so the file is kept
whatever its agreement with the Cell on these random-state weights). Both run as the harness's
onnxruntime rows (:func:`benchmarks.rows.onnxruntime_row`, the project's session settings) interleaved at batch 1
and 32 (:func:`benchmarks.timing.interleave`); medians of wall and process CPU time are printed and, with
``--json``, written.

    python -m benchmarks.quant_latency [--models ghostnet_100 repghostnet_100_deploy] [--threads 2]
"""
import argparse
import json
import os
import subprocess
import sys

from src.errors import ROOT
from src.files import atomic_write

from . import models
from .rows import onnxruntime_row
from .timing import interleave, stats


def int8_onnx(spec, work_dir, calib):
    """``spec``'s harness checkpoint quantized by PTQ and exported as int8 ONNX (cached in ``work_dir``)."""
    stem = os.path.join(work_dir, spec.key, "model.int8")
    if not os.path.exists(stem + ".onnx"):
        cmd = [sys.executable, os.path.join(ROOT, "export.py"), "--model", spec.name,
               "--ckpt_file", models.checkpoint(spec, work_dir), "--num_classes", str(spec.num_classes),
               "--image_size", str(spec.image_size), "--file_format", "ONNX", "--file_name", stem,
               "--dynamic_batch", "--mode", "PYNATIVE", "--quant", "ptq", "--calib_data", calib,
               "--calib_samples", "64", "--quant_min_agreement", "0"]  # timing only: agreement is printed, not required
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"int8 export of {spec.key} failed:\n{proc.stderr[-2000:]}")
    return stem + ".onnx"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["ghostnet_100"], choices=sorted(models.MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, nargs=2, default=[10, 5], help="rounds at batch 1 and 32")
    parser.add_argument("--calls", type=int, nargs=2, default=[10, 2], help="calls per row per round")
    parser.add_argument("--work_dir", default="outputs/bench/models", help="model files (shared with benchmarks.run)")
    parser.add_argument("--calib_data", default="", help="calibration images (default: the quickstart train set)")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    from src.data import ensure_quickstart

    calib = args.calib_data or os.path.join(ensure_quickstart(os.path.join(args.work_dir, "quickstart")), "train")
    results = []
    for key in args.models:
        spec = models.MODELS[key]
        fp32, int8 = models.export(spec, "onnx", args.work_dir), int8_onnx(spec, args.work_dir, calib)
        rows = [onnxruntime_row(spec, fp32, "onnxruntime", "ours", args.threads),
                onnxruntime_row(spec, int8, "onnxruntime-int8", "ours", args.threads, f"{key}/onnxruntime")]
        result = {"model": key, "fp32_mb": os.path.getsize(fp32) / 1e6, "int8_mb": os.path.getsize(int8) / 1e6}
        for batch, rounds, calls in zip((1, 32), args.rounds, args.calls):
            for row in rows:
                row.prepare(batch, 3)
            times = interleave(rows, batch, rounds, calls, progress=lambda msg: None)
            result[f"load_bs{batch}"] = max(times.pop("_load"))
            for row, label in zip(rows, ("fp32", "int8")):
                s = stats(times[row.key], batch)
                result[f"{label}_bs{batch}_ms"], result[f"{label}_bs{batch}_cpu_ms"] = s["median_ms"], \
                    s["cpu_median_ms"]
        results.append(result)
        print(json.dumps(result))
    print(f"\nonnxruntime, {args.threads} threads, medians of interleaved calls (wall ms / process CPU ms)")
    for r in results:
        for batch in (1, 32):
            print(f"{r['model']:<24} bs{batch:<3} fp32 {r[f'fp32_bs{batch}_ms']:8.2f} / {r[f'fp32_bs{batch}_cpu_ms']:8.2f}"
                  f"   int8 {r[f'int8_bs{batch}_ms']:8.2f} / {r[f'int8_bs{batch}_cpu_ms']:8.2f}"
                  f"   int8/fp32 {r[f'int8_bs{batch}_ms'] / r[f'fp32_bs{batch}_ms']:.2f}")
        print(f"{r['model']:<24} size fp32 {r['fp32_mb']:.2f} MB, int8 {r['int8_mb']:.2f} MB")
    if args.json:
        with atomic_write(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
