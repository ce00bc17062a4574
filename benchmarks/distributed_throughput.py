"""Training throughput of 1 vs 2 data-parallel workers on this machine (quickstart model and data).

Runs ``train.py`` (1 worker) and ``scripts/run_distribute_train.sh --worker_num 2`` (msrun, mccl on CPU) for a fixed
number of steps of the same per-worker batch, and reports the median global img/s of the logged intervals after the
first (which includes graph compilation). Usage: ``python benchmarks/distributed_throughput.py [--steps 120]``.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from src.data import ensure_quickstart  # noqa: E402  (after the sys.path set-up)


def throughput(log_path):
    """Median img/s of the logged intervals, skipping the first (compile)."""
    with open(log_path, encoding="utf-8") as f:
        rates = [float(x) for x in re.findall(r"([\d.]+) img/s", f.read())]
    if len(rates) < 2:
        raise RuntimeError(f"too few logged steps in {log_path}")
    return statistics.median(rates[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120, help="steps per run")
    parser.add_argument("--batch_size", type=int, default=64, help="per-worker batch")
    args = parser.parse_args()
    data = ensure_quickstart(os.path.join(ROOT, "data", "quickstart"))
    common = ["--config", "configs/quickstart.yaml", "--data_path", data, "--epochs", "1", "--eval_interval", "0",
              "--max_steps_per_epoch", str(args.steps), "--log_interval", "20", "--batch_size", str(args.batch_size)]
    with tempfile.TemporaryDirectory() as tmp:
        single = os.path.join(tmp, "single")
        subprocess.run([sys.executable, "train.py", *common, "--output_dir", single], cwd=ROOT, check=True,
                       capture_output=True)
        double = os.path.join(tmp, "double")
        subprocess.run(["bash", "scripts/run_distribute_train.sh", "--worker_num", "2", "--run_dir", double, "--",
                        *common], cwd=ROOT, check=True, capture_output=True)
        one, two = throughput(os.path.join(single, "train.log")), throughput(os.path.join(double, "train.log"))
    print(f"ghostnet_050, 32 px, batch {args.batch_size} per worker, {args.steps} steps, {os.cpu_count()} cores")
    print(f"1 worker : {one:8.1f} img/s")
    print(f"2 workers: {two:8.1f} img/s (global)  speed-up {two / one:.2f}x")


if __name__ == "__main__":
    main()
