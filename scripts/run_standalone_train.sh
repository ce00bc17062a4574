#!/usr/bin/env bash
# Single-device training: bash scripts/run_standalone_train.sh [--device_target D] [--config FILE]
#                                                             [--data_path DIR] [--device_id N] [-- overrides]
set -uo pipefail
source "$(dirname "$0")/common.sh"
usage() { sed -n '2,3p' "$0" | sed 's/^# //'; }
DEVICE=CPU; CONFIG=""; DATA=""; DEVICE_ID=0; EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --device_target) need_value "$@"; DEVICE=$2; shift 2 ;;
    --config) need_value "$@"; CONFIG=$2; shift 2 ;;
    --data_path) need_value "$@"; DATA=$2; shift 2 ;;
    --device_id) need_value "$@"; DEVICE_ID=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
check_device "$DEVICE"
ARGS=(--device_target "$DEVICE")
[[ -z "$CONFIG" ]] || { check_file --config "$CONFIG"; ARGS+=(--config "$CONFIG"); }
[[ -z "$DATA" ]] || { check_dir --data_path "$DATA"; ARGS+=(--data_path "$DATA"); }
DEVICE_ID=$DEVICE_ID exec "$PY" "$ROOT/train.py" "${ARGS[@]}" "${EXTRA[@]}"
