#!/usr/bin/env bash
# Install everything the test suite uses: runtime + test requirements, the two test packages that must be installed
# without their dependencies (timm: its torchvision dependency is replaced by a test stand-in; foolbox: only its 20
# bundled ImageNet photos are used), and the Python 3.7 MindSpore Lite side environment when an interpreter exists.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install --quiet -r requirements.txt -r requirements-test.txt
"$PY" -m pip install --quiet --no-deps timm==1.0.31 foolbox==3.3.4
status=0
bash scripts/setup_lite_env.sh || status=$?
if [[ $status == 3 ]]; then
  echo "note: no Python 3.7 here: the MindSpore Lite tests will be skipped"
elif [[ $status != 0 ]]; then
  exit "$status"
fi
