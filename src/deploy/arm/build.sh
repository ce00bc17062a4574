#!/usr/bin/env bash
# Build lite_runner for aarch64 against an unpacked MindSpore Lite 2.0 aarch64 package (the mindspore_lite/ folder
# of the PyPI wheel, or any folder with include/api/*.h and lib/libmindspore-extendrt_python.so):
#   src/deploy/arm/build.sh LITE_DIR OUT_BINARY
# Natively on aarch64 with $CXX (default g++); elsewhere cross-compiled with aarch64-linux-gnu-g++. The binary
# is written atomically. Exit 2: a missing compiler or Lite package, with a one-line reason.
set -euo pipefail
die() { echo "error: $*" >&2; exit 2; }
[[ $# == 2 ]] || die "usage: $0 LITE_DIR OUT_BINARY"
LITE=$1 OUT=$2
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lite_runner.cc"
if [[ "$(uname -m)" == aarch64 ]]; then CXX=${CXX:-g++}; else CXX=aarch64-linux-gnu-g++; fi
PACKAGE=$([[ $CXX == aarch64-linux-gnu-g++ ]] && echo g++-aarch64-linux-gnu || echo g++)
command -v "$CXX" >/dev/null || die "$CXX not found: apt-get install $PACKAGE"
[[ -f "$LITE/include/api/model.h" && -f "$LITE/lib/libmindspore-extendrt_python.so" ]] \
  || die "$LITE is not an aarch64 MindSpore Lite package" \
         "(needs include/api/model.h and lib/libmindspore-extendrt_python.so)"
mkdir -p "$(dirname "$OUT")"
TMP=$(mktemp "$OUT.XXXXXX")
trap 'rm -f "$TMP"' EXIT
# -isystem: the Lite headers are not warning-clean; -rpath-link: resolve the Lite libraries' own dependencies.
"$CXX" -std=c++17 -O2 -Wall -Wextra -isystem "$LITE" -o "$TMP" "$SRC" \
  -L"$LITE/lib" -lmindspore-extendrt_python -Wl,-rpath-link,"$LITE/lib"
chmod 755 "$TMP"
mv "$TMP" "$OUT"
trap - EXIT
