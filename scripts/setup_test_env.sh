#!/usr/bin/env bash
# Install everything the test suite uses: runtime + test requirements, the two test packages that must be installed
# without their dependencies (timm: its torchvision dependency is replaced by a test stand-in; foolbox: only its 20
# bundled ImageNet photos are used), the Python 3.7 MindSpore Lite side environment when an interpreter exists, and
# the aarch64 Lite runner (cross toolchain and qemu from apt when root, Lite aarch64 libraries from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install --quiet -r requirements.txt -r requirements-test.txt
"$PY" -m pip install --quiet --no-deps timm==1.0.31 foolbox==3.3.4
# optional SCRIPT WHAT: run a setup script whose exit code 3 means "impossible on this machine" (its reason is
# printed): the tests of WHAT then skip; any other failure stops the setup.
optional() {
  local status=0
  bash "$1" || status=$?
  if [[ $status == 3 ]]; then
    echo "note: the $2 tests will be skipped"
  elif [[ $status != 0 ]]; then
    exit "$status"
  fi
}
optional scripts/setup_lite_env.sh "MindSpore Lite (.ms)"
optional scripts/setup_arm_env.sh "aarch64 Lite runner"
