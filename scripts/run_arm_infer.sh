#!/usr/bin/env bash
# Classify images with an exported .ms model in the aarch64 MindSpore Lite 2.0 runtime, printing what infer.py prints.
#
#   scripts/run_arm_infer.sh [--labels_file F] [--threads N] [--top_k K] [--logits OUT.f32] MODEL.ms IMAGE|DIR|LIST.txt...
#   scripts/run_arm_infer.sh [options] MODEL.ms IMAGES.f32      (images already preprocessed: raw float32 NCHW)
#
# On an aarch64 machine the runner (src/deploy/arm/lite_runner.cc) runs natively; on x86_64 it is cross-compiled
# and runs under qemu-aarch64 (emulation checks results; its timings are not device latencies). The runtime and
# the runner come from scripts/setup_arm_env.sh (the aarch64 Lite libraries are fetched from PyPI once and cached).
# The images are preprocessed on the host exactly as infer.py does (src/deploy/arm/prepare.py), at the model's
# input size. Class names: --labels_file, else the model's sidecar record (MODEL.ms.json), else indices.
# --logits writes the logits as raw float32 (images x classes). Bad input: one "error:" line, exit code 2.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${ARM_LITE_DIR:-$ROOT/.cache/lite-aarch64}"
PY=${PYTHON:-python3}
USAGE="usage: $0 [--labels_file F] [--threads N] [--top_k K] [--logits OUT.f32] MODEL.ms (IMAGE|DIR|LIST.txt...|IMAGES.f32)"
die() { echo "error: $*" >&2; exit 2; }

LABELS="" THREADS=2 TOP_K=5 LOGITS=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) echo "$USAGE"; exit 0 ;;
    --labels_file|--threads|--top_k|--logits)
      [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value; $USAGE"
      case "$1" in
        --labels_file) LABELS=$2 ;; --threads) THREADS=$2 ;; --top_k) TOP_K=$2 ;; --logits) LOGITS=$2 ;;
      esac
      shift 2 ;;
    --*) die "unknown option '$1'; $USAGE" ;;
    *) break ;;
  esac
done
[[ $# -ge 2 ]] || die "$USAGE"
MODEL=$1; shift
[[ "$MODEL" == *.ms ]] \
  || die "$MODEL is not a MindSpore Lite .ms model; export one with python export.py --file_format MINDIR_LITE"
[[ -f "$MODEL" ]] || die "model file not found: $MODEL"
[[ -z "$LABELS" || -f "$LABELS" ]] || die "labels file not found: $LABELS"

bash "$ROOT/scripts/setup_arm_env.sh" --no_install >&2 || exit 2
LIB="$DIR/mindspore_lite/lib"
if [[ "$(uname -m)" == aarch64 ]]; then
  RUN=(env "LD_LIBRARY_PATH=$LIB" GLOG_v=3 "$DIR/bin/lite_runner")
  HOW="natively"
else
  RUN=(qemu-aarch64 -L /usr/aarch64-linux-gnu -E "LD_LIBRARY_PATH=$LIB" -E GLOG_v=3 "$DIR/bin/lite_runner")
  HOW="under qemu-aarch64 on $(uname -m) (emulated: this checks results; its timings are not device latencies)"
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# runner ARGS...: the runner with its stderr kept; a failure becomes one error line (the runner's own, or the
# loader's missing library).
runner() {
  local status=0
  "${RUN[@]}" "$@" 2>"$TMP/stderr" || status=$?
  if [[ $status != 0 ]]; then
    local lib
    lib=$(sed -n 's/.*error while loading shared libraries: \([^:]*\):.*/\1/p' "$TMP/stderr" | head -n1)
    [[ -z "$lib" ]] || die "aarch64 Lite library $lib not found in $LIB; delete $DIR and rerun to fetch it again"
    grep -m1 '^error: ' "$TMP/stderr" >&2 || tail -n1 "$TMP/stderr" >&2
    exit 2
  fi
  cat "$TMP/stderr" >&2
}

ARGS=(--model "$MODEL" --threads "$THREADS" --top_k "$TOP_K")
if [[ $# == 1 && "$1" == *.f32 ]]; then  # already preprocessed: raw float32 NCHW images
  [[ -f "$1" ]] || die "input file not found: $1"
  ARGS+=(--input "$1")
else
  INFO=$(runner --model "$MODEL" --info)
  SHAPE=$(sed -n 's/^input //p' <<< "$INFO")
  CLASSES=$(sed -n 's/^classes //p' <<< "$INFO")
  PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m src.deploy.arm.prepare --model "$MODEL" \
    --input_shape $SHAPE --num_classes "$CLASSES" --out_dir "$TMP" ${LABELS:+--labels_file "$LABELS"} "$@" || exit 2
  [[ -n "$LABELS" || ! -f "$TMP/labels.txt" ]] || LABELS="$TMP/labels.txt"
  ARGS+=(--input "$TMP/images.f32" --image_names "$TMP/images.txt")
fi
runner "${ARGS[@]}" ${LABELS:+--labels_file "$LABELS"} ${LOGITS:+--logits "$LOGITS"}
echo "note: ran the aarch64 MindSpore Lite runtime $HOW" >&2
