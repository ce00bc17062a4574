#!/usr/bin/env bash
# Benchmark a MindSpore Lite model with Lite's `benchmark` tool: on an Android/ARM device over adb, or on this host.
#
#   scripts/run_lite_benchmark.sh MODEL.ms|MODEL.mindir
#
# Environment:
#   LITE_ARM_PKG  unpacked mindspore-lite-<version>-android-aarch64 package: push the model, `benchmark` and the
#                 runtime libraries to the device with adb and run there (device selected by ANDROID_SERIAL)
#   LITE_X86_PKG  unpacked mindspore-lite-<version>-linux-x64 package: run its benchmark on this host
#   THREADS (2), WARMUP (10), LOOPS (100), DEVICE_DIR (/data/local/tmp/ghostnet_lite)
# A .mindir is first converted with converter_lite (from LITE_X86_PKG or PATH). Without either package, a .ms
# file is timed in the Python 3.7 Lite side env (scripts/setup_lite_env.sh) instead of the benchmark tool.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODEL="${1:?usage: $0 MODEL.ms|MODEL.mindir}"
THREADS="${THREADS:-2}" WARMUP="${WARMUP:-10}" LOOPS="${LOOPS:-100}"
DEVICE_DIR="${DEVICE_DIR:-/data/local/tmp/ghostnet_lite}"
[ -f "$MODEL" ] || { echo "error: model file not found: $MODEL" >&2; exit 2; }
MODEL="$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")"

if [ -n "${LITE_X86_PKG:-}" ]; then
    export PATH="$LITE_X86_PKG/tools/converter/converter:$LITE_X86_PKG/tools/benchmark:$PATH"
    export LD_LIBRARY_PATH="$LITE_X86_PKG/tools/converter/lib:$LITE_X86_PKG/runtime/lib:${LD_LIBRARY_PATH:-}"
fi

case "$MODEL" in
    *.mindir)
        command -v converter_lite >/dev/null || {
            echo "error: converting $MODEL needs converter_lite (set LITE_X86_PKG to an unpacked Lite x64 package);" \
                 "or export a .ms directly: python export.py --file_format MINDIR_LITE" >&2; exit 2; }
        converter_lite --fmk=MINDIR --modelFile="$MODEL" --outputFile="${MODEL%.mindir}"
        MODEL="${MODEL%.mindir}.ms" ;;
    *.ms) ;;
    *) echo "error: expected a .ms or .mindir file, got $MODEL" >&2; exit 2 ;;
esac
ARGS=(--numThreads="$THREADS" --warmUpLoopCount="$WARMUP" --loopCount="$LOOPS")

if [ -n "${LITE_ARM_PKG:-}" ]; then
    command -v adb >/dev/null || { echo "error: adb not found (Android platform-tools)" >&2; exit 2; }
    adb shell "mkdir -p $DEVICE_DIR"
    adb push "$LITE_ARM_PKG/tools/benchmark/benchmark" "$DEVICE_DIR/"
    adb push "$LITE_ARM_PKG"/runtime/lib/*.so "$DEVICE_DIR/"
    adb push "$MODEL" "$DEVICE_DIR/"
    adb shell "cd $DEVICE_DIR && chmod +x benchmark && LD_LIBRARY_PATH=$DEVICE_DIR ./benchmark \
        --modelFile=$(basename "$MODEL") ${ARGS[*]}"
elif command -v benchmark >/dev/null; then
    benchmark --modelFile="$MODEL" "${ARGS[@]}"
else
    echo "no Lite benchmark tool (set LITE_ARM_PKG or LITE_X86_PKG): timing in the Python Lite side env" >&2
    cd "$ROOT"
    python - "$MODEL" "$THREADS" "$WARMUP" "$LOOPS" <<'PY'
import sys

import numpy as np

from src.deploy import lite

model, threads, warmup, loops = sys.argv[1], *map(int, sys.argv[2:])
shape = [1 if d < 0 else d for d in lite.io_shapes(model)[0]]
times = lite.benchmark(model, shape, threads, warmup, loops)
print(f"{model}: input {shape}, {threads} threads, median {np.median(times):.2f} ms over {loops} runs "
      f"(min {min(times):.2f}, max {max(times):.2f})")
PY
fi
