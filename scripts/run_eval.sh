#!/usr/bin/env bash
# Evaluate a checkpoint or MINDIR: bash scripts/run_eval.sh --ckpt_file FILE --data_path DIR
#                                  [--device_target D] [--config FILE] [-- overrides]
set -uo pipefail
source "$(dirname "$0")/common.sh"
usage() { sed -n '2,3p' "$0" | sed 's/^# //'; }
DEVICE=CPU; CONFIG=""; DATA=""; CKPT=""; EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --device_target) need_value "$@"; DEVICE=$2; shift 2 ;;
    --config) need_value "$@"; CONFIG=$2; shift 2 ;;
    --data_path) need_value "$@"; DATA=$2; shift 2 ;;
    --ckpt_file) need_value "$@"; CKPT=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
check_device "$DEVICE"
[[ -n "$CKPT" ]] || { usage >&2; die "--ckpt_file is required"; }
check_file --ckpt_file "$CKPT"
[[ -n "$DATA" ]] || { usage >&2; die "--data_path is required"; }
check_dir --data_path "$DATA"
ARGS=(--device_target "$DEVICE" --ckpt_file "$CKPT" --data_path "$DATA")
[[ -z "$CONFIG" ]] || { check_file --config "$CONFIG"; ARGS+=(--config "$CONFIG"); }
exec "$PY" "$ROOT/eval.py" "${ARGS[@]}" "${EXTRA[@]}"
