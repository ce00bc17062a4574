#!/usr/bin/env bash
# Data-parallel training with MindSpore's own launchers; every worker's log lands in one run directory.
set -uo pipefail
source "$(dirname "$0")/common.sh"

usage() {
  cat <<USAGE
usage: bash scripts/run_distribute_train.sh [--device_target Ascend|GPU|CPU] [--worker_num N] [--config FILE]
                                            [--data_path DIR] [--rank_table FILE] [--launcher msrun|mpirun]
                                            [--master_port P] [--run_dir DIR] [-- extra train.py overrides]
  Default launcher: msrun (CPU/GPU/Ascend). --rank_table FILE (Ascend): one process per device with
  RANK_TABLE_FILE, RANK_SIZE, DEVICE_ID, RANK_ID exported (HCCL). --launcher mpirun (GPU, needs Open MPI).
  Logs: RUN_DIR/logs/worker_<rank>.log; checkpoints and metrics (rank 0): RUN_DIR.
  Exits non-zero, with the failing worker's last log lines, if any worker fails: 2 when a worker refused bad
  input (its one-line error:), 1 when one crashed.
USAGE
}

parse_args "--device_target --worker_num --config --data_path --rank_table --launcher --master_port --run_dir" "$@"
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || die "--worker_num must be a positive integer, got '$WORKERS'"
[[ "$PORT" =~ ^[0-9]+$ && "$PORT" -ge 1024 && "$PORT" -le 65535 ]] || die "--master_port must be 1024..65535"
[[ "$LAUNCHER" =~ ^(msrun|mpirun)$ ]] || die "--launcher must be msrun or mpirun, got '$LAUNCHER'"
[[ -z "$RANK_TABLE" || "$DEVICE" == Ascend ]] || die "--rank_table is for Ascend (HCCL); use msrun on $DEVICE"
[[ "$LAUNCHER" != mpirun || "$DEVICE" != Ascend ]] || die "mpirun is for GPU/CPU; on Ascend use msrun or --rank_table"
[[ "$LAUNCHER" != mpirun ]] || command -v mpirun >/dev/null || die "mpirun not found: install Open MPI or use msrun"
if [[ "$LAUNCHER" == msrun && -z "$RANK_TABLE" ]] && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  die "port $PORT is in use on this machine (another run?): pick a free one with --master_port"
fi

rm -rf "$RUN_DIR/logs"; mkdir -p "$RUN_DIR/logs"  # this launch's logs only: the exit code is read from them
entry_args
ARGS+=(--output_dir "$RUN_DIR" "${EXTRA[@]}")
echo "run directory: $RUN_DIR ($WORKERS workers, $DEVICE, launcher: ${RANK_TABLE:+rank table}${RANK_TABLE:-$LAUNCHER})"

# follow_rank0 PID LOG: show rank 0's progress lines on the console until PID ends (tail --pid), so a long launch
# is never silent; everything stays in the worker logs.
follow_rank0() {
  tail --pid="$1" -n +1 -F "$2" 2>/dev/null | grep --line-buffered -E '^[0-9]{2}:[0-9]{2}:[0-9]{2} |^error: ' \
    | sed -u 's/^/[rank 0] /'
}

STATUS=()
if [[ -n "$RANK_TABLE" ]]; then
  PIDS=()
  for ((rank = 0; rank < WORKERS; rank++)); do
    RANK_TABLE_FILE=$(realpath "$RANK_TABLE") RANK_SIZE=$WORKERS DEVICE_ID=$rank RANK_ID=$rank \
      "$PY" "$ROOT/train.py" "${ARGS[@]}" > "$RUN_DIR/logs/worker_$rank.log" 2>&1 &
    PIDS+=($!)
  done
  follow_rank0 "${PIDS[0]}" "$RUN_DIR/logs/worker_0.log"
  for ((rank = 0; rank < WORKERS; rank++)); do wait "${PIDS[$rank]}"; STATUS+=($?); done
elif [[ "$LAUNCHER" == mpirun ]]; then
  mpirun --allow-run-as-root -n "$WORKERS" --output-filename "$RUN_DIR/logs/mpirun" \
    "$PY" "$ROOT/train.py" "${ARGS[@]}" > "$RUN_DIR/logs/mpirun.log" 2>&1 &
  PID=$!
  follow_rank0 "$PID" "$RUN_DIR/train.log"
  wait "$PID"; STATUS+=($?)
else
  msrun --worker_num="$WORKERS" --local_worker_num="$WORKERS" --master_addr=127.0.0.1 --master_port="$PORT" \
    --log_dir="$RUN_DIR/logs" --join=True "$ROOT/train.py" "${ARGS[@]}" > "$RUN_DIR/logs/msrun.log" 2>&1 &
  PID=$!
  follow_rank0 "$PID" "$RUN_DIR/logs/worker_0.log"
  wait "$PID"; STATUS+=($?)
fi

FAILED=0
if [[ -n "$RANK_TABLE" ]]; then
  for ((rank = 0; rank < WORKERS; rank++)); do
    echo "worker $rank: exit ${STATUS[$rank]} (log $RUN_DIR/logs/worker_$rank.log)"
    if [[ "${STATUS[$rank]}" != 0 ]]; then FAILED=1; tail -n 5 "$RUN_DIR/logs/worker_$rank.log" | sed "s/^/  [worker $rank] /"; fi
  done
else
  for log in "$RUN_DIR"/logs/worker_*.log; do
    [[ -f "$log" ]] || continue
    rank=${log##*worker_}; rank=${rank%.log}
    if grep -q "^error: \|^Traceback" "$log"; then
      FAILED=1; echo "worker $rank: FAILED (log $log)"
      { grep -m1 "^error: " "$log" || grep -A30 "^Traceback" "$log" | grep -m1 "^[A-Za-z]*Error"; } | sed "s/^/  [worker $rank] /"
    elif [[ "${STATUS[0]}" == 0 ]]; then
      echo "worker $rank: exit 0 (log $log)"
    else
      echo "worker $rank: stopped by the launcher after another worker failed (log $log)"
    fi
  done
  if [[ "${STATUS[0]}" != 0 ]]; then
    FAILED=1; echo "launcher exit ${STATUS[0]} (log $RUN_DIR/logs/msrun.log)"
  fi
fi
[[ $FAILED == 0 ]] || { echo "distributed training FAILED" >&2; exit "$(failure_code "$RUN_DIR/logs")"; }
echo "distributed training finished: $RUN_DIR"
{ grep -h "done\(: best\|;\)" "$RUN_DIR/train.log" 2>/dev/null || true; } | tail -n 1 | sed 's/^[0-9:]* /result: /' 
