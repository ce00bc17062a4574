#!/usr/bin/env bash
# Evaluate a checkpoint or MINDIR: bash scripts/run_eval.sh --ckpt_file FILE --data_path DIR
#                                  [--device_target D] [--config FILE] [-- overrides]
set -uo pipefail
source "$(dirname "$0")/common.sh"
usage() { sed -n '2,3p' "$0" | sed 's/^# //'; }
parse_args "--device_target --config --data_path --ckpt_file" "$@"
[[ -n "$CKPT" && -n "$DATA" ]] || { usage >&2; die "--ckpt_file and --data_path are required"; }
entry_args
exec "$PY" "$ROOT/eval.py" "${ARGS[@]}" "${EXTRA[@]}"
