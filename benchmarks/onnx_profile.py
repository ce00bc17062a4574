"""Where an ONNX model's time goes in onnxruntime: per op type, after onnxruntime's own graph optimisation.

    python -m benchmarks.onnx_profile MODEL.onnx [MODEL.onnx ...] [--threads 1] [--runs 100] [--batch 1]

Times are the sum over nodes of each node's *median* kernel time across runs (a shared machine preempts single
kernels; medians ignore that), so the total is close to an uncontended run. ``Reorder*`` ops are the NCHWc layout
conversions onnxruntime inserts; ``Conv`` includes its blocked (NCHWc) form.
"""
import argparse
import collections
import json
import os
import sys
import tempfile

import numpy as np

from src.deploy.runtimes import onnx_session


def profile(path, threads=1, runs=100, batch=1):
    """``(total ms, {op type: (ms, node count)})`` per run, from onnxruntime's profiler."""
    import onnxruntime as ort

    session = onnx_session(path, threads)
    options = session.get_session_options()
    with tempfile.TemporaryDirectory() as tmp:
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "profile")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        shape = [batch if not isinstance(d, int) else d for d in session.get_inputs()[0].shape]
        x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
        for _ in range(runs):
            session.run(None, {session.get_inputs()[0].name: x})
        with open(session.end_profiling(), encoding="utf-8") as f:
            events = json.load(f)
    per_node, op_of = collections.defaultdict(list), {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_node[event["name"]].append(event["dur"] / 1000.0)
            op_of[event["name"]] = event["args"]["op_name"]
    by_op = collections.defaultdict(lambda: [0.0, 0])
    for node, times in per_node.items():
        by_op[op_of[node]][0] += float(np.median(times))
        by_op[op_of[node]][1] += 1
    return sum(v[0] for v in by_op.values()), dict(by_op)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args(argv)
    for path in args.models:
        total, by_op = profile(path, args.threads, args.runs, args.batch)
        print(f"{path}: {total:.2f} ms per run (sum of per-node medians, {args.threads} thread(s), "
              f"batch {args.batch})")
        for op, (ms, count) in sorted(by_op.items(), key=lambda kv: -kv[1][0]):
            print(f"  {op:<20}{ms:8.3f} ms {100 * ms / total:5.1f}%  {count:4d} nodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
