#!/usr/bin/env bash
# Make the aarch64 MindSpore Lite runner ready (scripts/run_arm_infer.sh uses it; setup_test_env.sh calls this):
#  1. tools: on x86_64 the cross compiler and user-mode emulation (Debian g++-aarch64-linux-gnu, qemu-user), on
#     aarch64 a native g++; installed with apt-get when missing and running as root (not with --no_install);
#  2. the aarch64 Lite 2.0 runtime: the mindspore-lite==2.0.0 aarch64 wheel from PyPI (sha256-checked), its
#     mindspore_lite/include and lib unpacked into $ARM_LITE_DIR (default <repo>/.cache/lite-aarch64), once;
#  3. $ARM_LITE_DIR/bin/lite_runner, rebuilt when src/deploy/arm/lite_runner.cc or build.sh is newer.
# Idempotent and quiet when ready. Exit 3: impossible on this machine (no toolchain and not root, another CPU),
# with the reason; 1: a failed download or build. Usage: scripts/setup_arm_env.sh [--no_install]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${ARM_LITE_DIR:-$ROOT/.cache/lite-aarch64}"
PY=${PYTHON:-python3}
WHEEL=mindspore_lite-2.0.0-cp37-none-any.whl
WHEEL_SHA256=9006b56a0285833802b4880f34cbce5f94111ef5ca4071d5df5c61e8c2a3a6f7
INSTALL=1
[[ "${1:-}" == --no_install ]] && INSTALL=0
impossible() { echo "error: $*" >&2; exit 3; }
fail() { echo "error: $*" >&2; exit 1; }

case "$(uname -m)" in
  x86_64) TOOLS=(aarch64-linux-gnu-g++ qemu-aarch64) PACKAGES=(g++-aarch64-linux-gnu qemu-user) ;;
  aarch64) TOOLS=(g++) PACKAGES=(g++) ;;
  *) impossible "the aarch64 Lite runner needs an aarch64 or x86_64 (qemu) host, this is $(uname -m)" ;;
esac
missing() { local t; for t in "${TOOLS[@]}"; do command -v "$t" >/dev/null || echo "$t"; done; }
if [[ -n "$(missing)" && $INSTALL == 1 && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  echo "installing ${PACKAGES[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null; }
  apt_install || { apt-get update -qq >/dev/null && apt_install; } || fail "apt-get install ${PACKAGES[*]} failed"
fi
[[ -z "$(missing)" ]] \
  || impossible "$(missing | tr '\n' ' ')not found: install the Debian packages ${PACKAGES[*]} (as root: $0)"

LITE="$DIR/mindspore_lite"
if [[ "$(cat "$DIR/wheel.sha256" 2>/dev/null)" != "$WHEEL_SHA256" || ! -d "$LITE/lib" ]]; then
  echo "fetching the aarch64 MindSpore Lite 2.0.0 runtime from PyPI into $DIR"
  mkdir -p "$DIR"
  TMP=$(mktemp -d "$DIR/.fetch.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux2014_aarch64 \
    --python-version 37 --implementation cp --abi cp37m -d "$TMP" mindspore-lite==2.0.0 2>"$TMP/pip.log" \
    || fail "pip download of the aarch64 mindspore-lite==2.0.0 wheel failed:" \
            "$(grep -m1 -i error "$TMP/pip.log" || tail -n1 "$TMP/pip.log")"
  [[ "$(sha256sum "$TMP/$WHEEL" | cut -d' ' -f1)" == "$WHEEL_SHA256" ]] \
    || fail "$WHEEL from PyPI does not have the expected sha256 $WHEEL_SHA256"
  "$PY" - "$TMP/$WHEEL" "$TMP" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    wanted = ("mindspore_lite/include/", "mindspore_lite/lib/")
    wheel.extractall(sys.argv[2], [n for n in wheel.namelist() if n.startswith(wanted)])
PY
  rm -rf "$LITE" "$DIR/wheel.sha256"
  mv "$TMP/mindspore_lite" "$LITE"
  echo "$WHEEL_SHA256" > "$DIR/wheel.sha256"
  rm -rf "$TMP"
  trap - EXIT
fi

RUNNER="$DIR/bin/lite_runner" SOURCES="$ROOT/src/deploy/arm"
if [[ ! -x "$RUNNER" || "$SOURCES/lite_runner.cc" -nt "$RUNNER" || "$SOURCES/build.sh" -nt "$RUNNER" ]]; then
  echo "building $RUNNER"
  bash "$SOURCES/build.sh" "$LITE" "$RUNNER" || fail "building lite_runner failed (see above)"
fi
