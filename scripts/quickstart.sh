#!/usr/bin/env bash
# Quickstart on a fresh machine: install, then train a GhostNet on the bundled Fashion-MNIST images, evaluate it,
# export it to MINDIR and classify a few images with the exported model.
#   bash scripts/quickstart.sh [--skip_install] [extra train.py overrides, e.g. --epochs 2]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ "${1:-}" == "--skip_install" ]]; then shift; else "$PY" -m pip install -r requirements.txt; fi
OUT=${OUT:-outputs/quickstart}
DATA=$("$PY" -c "import os; from src.data import ensure_quickstart; print(os.path.abspath(ensure_quickstart('data/quickstart')))")
echo "== data: $DATA"
"$PY" train.py --config configs/quickstart.yaml --data_path "$DATA" --output_dir "$OUT" "$@"
echo "== evaluate best.ckpt"
"$PY" eval.py --config configs/quickstart.yaml --data_path "$DATA" --ckpt_file "$OUT/best.ckpt" --output_dir "$OUT"
echo "== export MINDIR"
"$PY" export.py --config configs/quickstart.yaml --ckpt_file "$OUT/best.ckpt" --file_name "$OUT/quickstart" \
    --file_format MINDIR --output_dir "$OUT"
echo "== classify one held-out image of each class with the exported model"
for d in "$DATA"/val/*/; do files=("$d"*); echo "${files[0]}"; done > "$OUT/samples.txt"
"$PY" infer.py --config configs/quickstart.yaml --model_file "$OUT/quickstart.mindir" \
    --labels_file "$OUT/class_names.txt" --input "$OUT/samples.txt"
