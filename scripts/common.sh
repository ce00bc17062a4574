# Shared helpers of the scripts/ launchers (sourced, not run).
die() { echo "error: $*" >&2; exit 2; }
need_value() { [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || die "$1 needs a value (see -h)"; }
check_device() { [[ "$1" =~ ^(CPU|GPU|Ascend)$ ]] || die "--device_target must be CPU, GPU or Ascend, got '$1'"; }
check_file() { [[ -f "$2" ]] || die "$1 file not found: $2"; }
check_dir() { [[ -d "$2" ]] || die "$1 directory not found: $2"; }
PY=${PYTHON:-python3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
