"""MindSpore Lite x86 CPU latency of deployed GhostNet 1.0x and RepGhostNet 1.0x (bs 1, 224x224, 2 threads).

Exports each model to ``.ms`` with ``export.py`` (random weights: latency does not depend on them; RepGhost is
re-parameterized as for deployment), then runs it in the Lite side env: median of ``--loops`` runs after
``--warmup`` runs. Usage: ``python benchmarks/lite_latency.py [--models ghostnet_100 repghostnet_100]``.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from src.deploy import lite  # noqa: E402  (after the sys.path set-up)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["ghostnet_100", "repghostnet_100"])
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--loops", type=int, default=100)
    args = parser.parse_args()
    lite.require_side_env()
    print(f"MindSpore Lite 2.0 CPU, batch 1, {args.image_size}x{args.image_size}, {args.threads} threads, "
          f"{args.warmup} warm-up + {args.loops} timed runs")
    print(f"{'model':<18}{'median ms':>10}{'p10 ms':>9}{'p90 ms':>9}{'.ms MB':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            stem = os.path.join(tmp, name)
            subprocess.run([sys.executable, os.path.join(ROOT, "export.py"), "--model", name, "--file_format",
                            "MINDIR_LITE", "--file_name", stem, "--image_size", str(args.image_size),
                            "--mode", "PYNATIVE"], check=True, capture_output=True, cwd=ROOT)
            times = lite.benchmark(stem + ".ms", (1, 3, args.image_size, args.image_size), args.threads,
                                   args.warmup, args.loops)
            p10, median, p90 = np.percentile(times, [10, 50, 90])
            print(f"{name:<18}{median:>10.2f}{p10:>9.2f}{p90:>9.2f}{os.path.getsize(stem + '.ms') / 1e6:>9.2f}")


if __name__ == "__main__":
    main()
