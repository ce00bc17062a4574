#!/usr/bin/env bash
# Quickstart on a fresh machine: install, then train a GhostNet on the bundled Fashion-MNIST images, evaluate it,
# export it to MINDIR and classify a few images with the exported model.
#   bash scripts/quickstart.sh [--skip_install] [extra train.py overrides, e.g. --epochs 2]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ "${1:-}" == "--skip_install" ]]; then shift; else "$PY" -m pip install -r requirements.txt; fi
OUT=${OUT:-outputs/quickstart_$(date +%Y%m%d_%H%M%S)}  # a fresh directory: train.py refuses a used one
DATA=$("$PY" -c "import os; from src.data import ensure_quickstart; print(os.path.abspath(ensure_quickstart('data/quickstart')))")
echo "== data: $DATA"
"$PY" train.py --config configs/quickstart.yaml --data_path "$DATA" --output_dir "$OUT" "$@"
echo "== evaluate best.ckpt"
"$PY" eval.py --data_path "$DATA" --ckpt_file "$OUT/best.ckpt" --output_dir "$OUT"   # the checkpoint knows its model
echo "== export MINDIR"
"$PY" export.py --ckpt_file "$OUT/best.ckpt" --file_name "$OUT/quickstart" --file_format MINDIR
echo "== classify one held-out image of each class with the exported model"
for d in "$DATA"/val/*/; do files=("$d"*); echo "${files[0]}"; done > "$OUT/samples.txt"
"$PY" infer.py --model_file "$OUT/quickstart.mindir" --input "$OUT/samples.txt"
"$PY" - "$OUT" "$SECONDS" <<'PY'
import json, os, sys
out, seconds = sys.argv[1], int(sys.argv[2])
m = json.load(open(os.path.join(out, "eval_metrics.json")))
print(f"== done in {seconds // 60} min {seconds % 60} s: best.ckpt scores top-1 {m['top1']:.2%}, top-5 {m['top5']:.2%} "
      f"on {m['count']} held-out images")
print(f"   outputs in {out}: best.ckpt, quickstart.mindir (+ .json record), train.log, metrics.jsonl, curves.png")
PY
