"""Where an ONNX model's time goes in onnxruntime: per op type, after onnxruntime's own graph optimisation.

    python -m benchmarks.onnx_profile MODEL.onnx [MODEL.onnx ...] [--threads 1] [--runs 100] [--batch 1]

Convolutions are split by kind, read from the graph onnxruntime runs (``optimized_model_filepath``): ``depthwise``
(one channel per group), ``1x1`` and ``KxK`` (dense); an int8 conv at a width MLAS's fast kernels do not take
(:func:`src.deploy.onnx_graph.fast_int8_width`) is also marked ``generic``.

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

from src.deploy.onnx_graph import fast_int8_width, onnx
from src.deploy.runtimes import onnx_session


def profile(path, threads=1, runs=100, batch=1):
    """``(total ms, {op type: (ms, node count)})`` per run, from onnxruntime's profiler."""
    import onnxruntime as ort

    session = onnx_session(path, threads)
    options = session.get_session_options()
    with tempfile.TemporaryDirectory() as tmp:
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "profile")
        options.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        kinds = conv_kinds(onnx.load(options.optimized_model_filepath).graph)
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
            node = event["name"][:-len("_kernel_time")]
            op_of[event["name"]] = " ".join([event["args"]["op_name"]] + kinds.get(node, []))
    by_op = collections.defaultdict(lambda: [0.0, 0])
    for node, times in per_node.items():
        by_op[op_of[node]][0] += float(np.median(times))
        by_op[op_of[node]][1] += 1
    return sum(v[0] for v in by_op.values()), dict(by_op)


def conv_kinds(graph):
    """``{conv node name: [kind] or [kind, 'generic']}`` of the Conv / QLinearConv nodes of an optimized graph."""
    dims = {t.name: list(t.dims) for t in graph.initializer}
    kinds = {}
    for node in graph.node:
        weight = dims.get(node.input[3] if node.op_type == "QLinearConv" else node.input[1]) \
            if "Conv" in node.op_type else None
        if weight is None or len(weight) != 4:
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        out, per_group, k = weight[0], weight[1], weight[2:]
        kind = "depthwise" if group > 1 and per_group == 1 else "1x1" if k == [1, 1] else "KxK"
        generic = node.op_type == "QLinearConv" and not fast_int8_width(kind == "depthwise", out, per_group)
        kinds[node.name] = [kind] + (["generic"] if generic else [])
    return kinds


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
