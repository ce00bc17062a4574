#!/usr/bin/env bash
# Single-device training: bash scripts/run_standalone_train.sh [--device_target D] [--config FILE]
#                                                             [--data_path DIR] [--device_id N] [-- overrides]
set -uo pipefail
source "$(dirname "$0")/common.sh"
usage() { sed -n '2,3p' "$0" | sed 's/^# //'; }
parse_args "--device_target --config --data_path --device_id" "$@"
entry_args
DEVICE_ID=$DEVICE_ID exec "$PY" "$ROOT/train.py" "${ARGS[@]}" "${EXTRA[@]}"
