#!/usr/bin/env bash
# Export a checkpoint: bash scripts/run_export.sh --ckpt_file FILE [--file_format MINDIR|ONNX|AIR|MINDIR_LITE]
#                      [--device_target D] [--config FILE] [-- overrides]
set -uo pipefail
source "$(dirname "$0")/common.sh"
usage() { sed -n '2,3p' "$0" | sed 's/^# //'; }
DEVICE=CPU; CONFIG=""; CKPT=""; FORMAT=MINDIR; EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --device_target) need_value "$@"; DEVICE=$2; shift 2 ;;
    --config) need_value "$@"; CONFIG=$2; shift 2 ;;
    --ckpt_file) need_value "$@"; CKPT=$2; shift 2 ;;
    --file_format) need_value "$@"; FORMAT=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
check_device "$DEVICE"
[[ -n "$CKPT" ]] || { usage >&2; die "--ckpt_file is required"; }
check_file --ckpt_file "$CKPT"
ARGS=(--device_target "$DEVICE" --ckpt_file "$CKPT" --file_format "$FORMAT")
[[ -z "$CONFIG" ]] || { check_file --config "$CONFIG"; ARGS+=(--config "$CONFIG"); }
exec "$PY" "$ROOT/export.py" "${ARGS[@]}" "${EXTRA[@]}"
