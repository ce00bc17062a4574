"""Accuracy and size of float / PTQ / QAT models as fake-quant Cells, int8 ONNX and int8 .ms (docs/quantization.md).

For a float checkpoint and its QAT fine-tune (``benchmarks/quant_runs.sh``), through the public entry points only:
float ONNX (size), PTQ int8 ONNX / .ms / fake-quant MINDIR from the float checkpoint (``--quant ptq``, calibrated on
``--calib_samples`` training images), QAT int8 ONNX / .ms from the QAT checkpoint, then ``eval.py`` on the test
split for the float and QAT checkpoints (QAT: the fake-quant Cell), the PTQ fake-quant MINDIR (the PTQ Cell) and
every int8 file. Prints one JSON line per run and writes them to ``--json``.

    python benchmarks/quant_results.py --name qs_g050 --model ghostnet_050 --data DIR --float F.ckpt --qat Q.ckpt \
        [--config configs/quickstart.yaml] [--image_size 32] [--json results.json]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXT = {"ONNX": ".onnx", "MINDIR_LITE": ".ms", "MINDIR": ".mindir"}


class Failed(Exception):
    """An entry point refused or failed; its last stderr line is recorded in the row instead of a number."""


def run(script, *args):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise Failed(lines[-1] if lines else f"{script} exit code {proc.returncode}")
    return proc.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, help="dataset root (train/ and val/)")
    parser.add_argument("--float", required=True, dest="float_ckpt")
    parser.add_argument("--qat", required=True, dest="qat_ckpt")
    parser.add_argument("--config", default="configs/quickstart.yaml")
    parser.add_argument("--num_classes", type=int, default=10)
    parser.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--calib_samples", type=int, default=256)
    parser.add_argument("--formats", nargs="+", default=["ONNX", "MINDIR_LITE"])
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    common = ["--config", args.config, "--model", args.model, "--num_classes", args.num_classes,
              "--image_size", args.image_size]
    calib = ["--calib_data", os.path.join(args.data, "train"), "--calib_samples", args.calib_samples]
    row = {"name": args.name, "model": args.model, "image_size": args.image_size}
    with tempfile.TemporaryDirectory() as tmp:
        def export(ckpt, fmt, label, *extra):
            stem = os.path.join(tmp, label)
            out = run("export.py", *common, "--ckpt_file", ckpt, "--file_format", fmt, "--file_name", stem,
                      "--dynamic_batch", "--batch_size", 1, *extra)
            agreement = re.search(r"top-1 agreement with the fake-quant Cell ([\d.]+)%", out)
            if agreement:
                row[f"{label}_agreement"] = float(agreement.group(1)) / 100
            path = stem + EXT[fmt]
            row[f"{label}_mb"] = os.path.getsize(path) / 1e6
            return path

        def evaluate(path, label, *extra):
            out = run("eval.py", *common, "--ckpt_file", path, "--data_path", args.data, "--batch_size", 100,
                      "--output_dir", os.path.join(tmp, "eval_" + label), *extra)
            row[f"{label}_top1"] = float(re.search(r"top-1 (\d\.\d+)", out).group(1))

        def step(label, fn):
            try:
                fn()
            except Failed as exc:
                row[f"{label}_failed"] = str(exc)
                print(f"{args.name} {label}: {exc}", file=sys.stderr)

        step("float_onnx", lambda: export(args.float_ckpt, "ONNX", "float_onnx"))
        step("float_cell", lambda: evaluate(args.float_ckpt, "float_cell"))
        step("ptq_cell", lambda: evaluate(export(args.float_ckpt, "MINDIR", "ptq_cell", "--quant", "ptq", *calib),
                                          "ptq_cell"))
        step("qat_cell", lambda: evaluate(args.qat_ckpt, "qat_cell"))
        for fmt in args.formats:
            label = "onnx" if fmt == "ONNX" else "ms"
            # the .ms holds per-tensor weights and Lite rounds its own way (src/quant/lite.py): it is kept whatever
            # its agreement with the Cell, which is recorded next to its accuracy
            keep = ("--quant_min_agreement", 0) if fmt == "MINDIR_LITE" else ()
            for source, ckpt, extra in (("ptq", args.float_ckpt, ("--quant", "ptq")), ("qat", args.qat_ckpt, ())):
                step(f"{source}_{label}", lambda c=ckpt, f=fmt, l=f"{source}_{label}", e=extra: evaluate(
                    export(c, f, l, *e, *calib, *keep), l))
    print(json.dumps(row))
    if args.json:
        rows = []
        if os.path.exists(args.json):
            with open(args.json, encoding="utf-8") as f:
                rows = [r for r in json.load(f) if r["name"] != args.name]
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows + [row], f, indent=1)


if __name__ == "__main__":
    main()
