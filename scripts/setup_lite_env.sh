#!/usr/bin/env bash
# Create the Python 3.7 side environment that runs MindSpore Lite 2.0 (the only mindspore-lite on PyPI: Python 3.7,
# Linux x86_64 as cp37-cp37m-manylinux1_x86_64 and Linux aarch64 as a wheel tagged cp37-none-any, which pip picks
# only where no x86_64 build fits): export.py --file_format MINDIR_LITE and infer.py on .ms files drive it through
# src/deploy/lite_worker.py. Idempotent: an existing, working env is left alone.
# Exit 3: no Python 3.7 / not Linux x86_64 or aarch64 (prerequisite missing). Usage: scripts/setup_lite_env.sh [ENV_DIR] (default .venv-lite)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENV_DIR="${1:-${LITE_ENV:-$ROOT/.venv-lite}}"
PACKAGES=(mindspore-lite==2.0.0 "numpy>=1.17,<1.22" "opencv-python-headless>=4.5,<4.9")

if [ -x "$ENV_DIR/bin/python" ] && "$ENV_DIR/bin/python" -c "import mindspore_lite, numpy, cv2" 2>/dev/null; then
    echo "Lite side env ready: $ENV_DIR"
    exit 0
fi

find_python37() {
    local candidate
    if command -v pyenv >/dev/null 2>&1; then
        for candidate in "$(pyenv root)"/versions/3.7.*/bin/python; do
            [ -x "$candidate" ] && { echo "$candidate"; return 0; }
        done
    fi
    for candidate in python3.7 /usr/bin/python3.7 /usr/local/bin/python3.7; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import sys; assert sys.version_info[:2] == (3, 7)" 2>/dev/null; then
            command -v "$candidate"; return 0
        fi
    done
    return 1
}

if ! PY37="$(find_python37)"; then
    echo "error: no Python 3.7 interpreter found (looked in \$(pyenv root)/versions/3.7.* and for python3.7 on PATH)." >&2
    echo "MindSpore Lite 2.0 on PyPI supports only Python 3.7 (Linux x86_64 and aarch64): install one (e.g. 'pyenv install 3.7.16')," >&2
    echo "or put a MindSpore Lite toolkit's converter_lite on PATH to convert without this env." >&2
    exit 3
fi
if [ "$(uname -s)" != Linux ] || { [ "$(uname -m)" != x86_64 ] && [ "$(uname -m)" != aarch64 ]; }; then
    # the aarch64 wheel's tag (none-any) would let pip install it anywhere: refuse where it cannot run
    echo "error: mindspore-lite 2.0.0 on PyPI has builds for Linux x86_64 and aarch64 only (this is $(uname -s) $(uname -m))." >&2
    exit 3
fi

echo "Creating Lite side env $ENV_DIR with $PY37"
rm -rf "$ENV_DIR"
if ! "$PY37" -m venv "$ENV_DIR"; then
    echo "error: '$PY37 -m venv' failed (is the venv/ensurepip module of Python 3.7 installed?)." >&2
    rm -rf "$ENV_DIR"; exit 1
fi
if ! "$ENV_DIR/bin/python" -m pip install --quiet "${PACKAGES[@]}"; then
    echo "error: pip could not install ${PACKAGES[*]} into $ENV_DIR (is PyPI reachable?)." >&2
    rm -rf "$ENV_DIR"; exit 1
fi
"$ENV_DIR/bin/python" -c "import mindspore_lite, numpy, cv2; print('mindspore_lite', mindspore_lite.__version__, 'numpy', numpy.__version__, 'cv2', cv2.__version__)"
echo "Lite side env ready: $ENV_DIR"
