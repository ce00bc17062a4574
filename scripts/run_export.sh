#!/usr/bin/env bash
# Export a checkpoint: bash scripts/run_export.sh --ckpt_file FILE [--file_format MINDIR|ONNX|AIR|MINDIR_LITE]
#                      [--device_target D] [--config FILE] [-- overrides]
set -uo pipefail
source "$(dirname "$0")/common.sh"
usage() { sed -n '2,3p' "$0" | sed 's/^# //'; }
parse_args "--device_target --config --ckpt_file --file_format" "$@"
[[ -n "$CKPT" ]] || { usage >&2; die "--ckpt_file is required"; }
entry_args
exec "$PY" "$ROOT/export.py" "${ARGS[@]}" --file_format "$FORMAT" "${EXTRA[@]}"
