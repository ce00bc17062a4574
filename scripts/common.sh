# Shared helpers of the scripts/ launchers (sourced, not run). Each launcher defines usage() and calls
# parse_args "ALLOWED OPTIONS" "$@", which sets the variables below from --option value pairs; anything after
# "--" is kept in EXTRA and passed on to the Python entry point.
die() { echo "error: $*" >&2; exit 2; }
PY=${PYTHON:-python3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

parse_args() {
  local allowed=" $1 "; shift
  DEVICE=CPU; CONFIG=""; DATA=""; CKPT=""; FORMAT=MINDIR; DEVICE_ID=0; WORKERS=2; RANK_TABLE=""
  LAUNCHER=msrun; PORT=${MASTER_PORT:-8118}; RUN_DIR="outputs/dist_$(date +%Y%m%d_%H%M%S)"; EXTRA=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h|--help) usage; exit 0 ;;
      --) shift; EXTRA=("$@"); break ;;
    esac
    [[ "$allowed" == *" $1 "* ]] || { usage >&2; die "unknown argument '$1'"; }
    [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || die "$1 needs a value (see -h)"
    case "$1" in
      --device_target) DEVICE=$2 ;;
      --config) [[ -f "$2" ]] || die "--config file not found: $2"; CONFIG=$2 ;;
      --data_path) [[ -d "$2" ]] || die "--data_path directory not found: $2"; DATA=$2 ;;
      --ckpt_file) [[ -f "$2" ]] || die "--ckpt_file file not found: $2"; CKPT=$2 ;;
      --rank_table) [[ -f "$2" ]] || die "--rank_table file not found: $2"; RANK_TABLE=$2 ;;
      --file_format) FORMAT=$2 ;;
      --device_id) DEVICE_ID=$2 ;;
      --worker_num) WORKERS=$2 ;;
      --launcher) LAUNCHER=$2 ;;
      --master_port) PORT=$2 ;;
      --run_dir) RUN_DIR=$2 ;;
    esac
    shift 2
  done
  [[ "$DEVICE" =~ ^(CPU|GPU|Ascend)$ ]] || die "--device_target must be CPU, GPU or Ascend, got '$DEVICE'"
}

# entry_args: the overrides every Python entry point gets from the parsed options.
entry_args() {
  ARGS=(--device_target "$DEVICE")
  [[ -z "$CONFIG" ]] || ARGS+=(--config "$CONFIG")
  [[ -z "$DATA" ]] || ARGS+=(--data_path "$DATA")
  [[ -z "$CKPT" ]] || ARGS+=(--ckpt_file "$CKPT")
}

# failure_code LOG_DIR: the exit code of a failed multi-process run whose logs are under LOG_DIR: 2 (bad input, as
# every entry point) when a worker stopped on the project's one-line "error: ..." and none crashed with a
# traceback; 1 otherwise (a bug or a crash).
failure_code() {
  if grep -rqs "^error: " "$1" && ! grep -rqs "^Traceback" "$1"; then echo 2; else echo 1; fi
}
