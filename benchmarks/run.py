"""``python -m benchmarks.run``: inference speed of our models in every runtime we ship, next to the peers a user
would pick instead, interleaved in one process.

Rows: our ghostnet_100, repghostnet_100 (train form and deployed), ghostnetv2_100, ghostnetv3_100 (deployed) and the
quickstart model in MindSpore PyNative and GRAPH, the exported MINDIR (GraphCell), onnxruntime on our ONNX (and on the ONNX as MindSpore
writes it, before :mod:`src.deploy.onnx_graph`) and MindSpore Lite on our ``.ms``; peers, each skipped with a note
when its package is missing: mindcv's ghostnet_100 (MindSpore), timm's model in PyTorch eager and ``torch.compile``,
and onnxruntime on the ONNX PyTorch exports from timm. ``--model_file MODEL:NAME=PATH`` adds any exported file
(e.g. an int8 ONNX or ``.ms``) as a row in the runtime its extension names.

Every row runs ``--calls`` calls in turn, ``--rounds`` times, so that a shared machine's load falls on all rows
alike; the table gives medians, p10–p90, process CPU time per call and the load average. ``--quick`` is the smoke test (quickstart model,
small batches, one or two calls per row; asserts nothing about speed).
"""
import argparse
import os
import shlex
import sys
import tempfile

from src.deploy import lite

from . import models, report
from .rows import Skip, file_row, mindir, mindspore_cell, onnxruntime_row, torch_row
from .timing import interleave, stats

TORCHVISION_STUB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests",
                                "torchvision_stub")
PEER_HINTS = {"mindcv": "pip install --no-deps mindcv==0.3.0 tqdm",
              "torch": "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu",
              "timm": "pip install --no-deps timm==1.0.31", "onnxruntime": "pip install onnxruntime"}
RAW_ONNX = ("ghostnet_100", "repghostnet_100_deploy", "quickstart")
QUICK_SKIPS = ("mindir-graphcell", "onnxruntime-raw", "torch-compile")  # an export or a compile each: not in --quick


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: quickstart model, 1-2 calls per row, "
                        "no MINDIR, raw-ONNX or torch.compile rows")
    parser.add_argument("--models", nargs="+", choices=sorted(models.MODELS), help="default: all")
    parser.add_argument("--threads", type=int, default=2, help="threads of every runtime (default 2)")
    parser.add_argument("--batches", type=int, nargs=2, metavar=("LATENCY", "THROUGHPUT"),
                        help="batch sizes (default 1 32; quick 1 4)")
    parser.add_argument("--rounds", type=int, nargs=2, help="rounds at each batch size (default 10 5; quick 2 1)")
    parser.add_argument("--calls", type=int, nargs=2, help="calls per row per round (default 5 2; quick 1 1)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per row and batch size (default 3)")
    parser.add_argument("--out", default="outputs/bench", help="where benchmark.json/.md go (default outputs/bench)")
    parser.add_argument("--work_dir", help="exported model files, reused across runs (default OUT/models; "
                        "quick: a temporary directory)")
    parser.add_argument("--rebuild", action="store_true", help="export the model files again")
    parser.add_argument("--no_peers", action="store_true", help="only our models")
    parser.add_argument("--no_compile", action="store_true", help="skip the torch.compile rows (slow to compile)")
    parser.add_argument("--mindspore_defaults", action="store_true",
                        help="keep MindSpore's own CPU settings (25 threads, oneDNN at full ISA) to compare")
    parser.add_argument("--model_file", action="append", default=[], metavar="MODEL:NAME=PATH",
                        help="extra row: PATH (.onnx/.ms/.mindir) for MODEL, shown as runtime NAME")
    args = parser.parse_args(argv)
    for item in args.model_file:
        head, _, path = item.partition("=")
        if head.partition(":")[0] not in models.MODELS or not head.partition(":")[2] or not os.path.isfile(path):
            parser.error(f"--model_file {item}: expected MODEL:NAME=PATH with MODEL one of "
                         f"{', '.join(models.MODELS)} and PATH an existing .onnx/.ms/.mindir file")
    quick = args.quick
    args.models = args.models or (["quickstart"] if quick else list(models.MODELS))
    args.batches = args.batches or ([1, 4] if quick else [1, 32])
    args.rounds = args.rounds or ([2, 1] if quick else [10, 5])
    args.calls = args.calls or ([1, 1] if quick else [5, 2])
    if quick:
        args.warmup = 1
    return args


class Plan:
    """The rows of a run, those that could not be built (with the reason) and the Lite timing server."""

    def __init__(self, args):
        self.args, self.rows, self.skipped = args, [], []
        self.server = lite.TimingServer() if lite.side_env_python() else None

    def add(self, key, build):
        """Build a row with ``build()``; a missing optional package becomes a skip note."""
        if self.args.quick and key.split("/")[1] in QUICK_SKIPS:
            return
        try:
            self.rows.append(build())
        except Skip as exc:
            self.skipped.append((key, str(exc)))
        except ImportError as exc:
            name = (exc.name or "").split(".")[0]
            self.skipped.append((key, f"{name} is not installed ({PEER_HINTS.get(name, 'pip install ' + name)})"))

    def close(self):
        if self.server:
            self.server.close()


def import_timm():
    """timm, importable without torchvision through the test suite's stand-in (timm imports torchvision at module
    level but its CNNs never use it)."""
    try:
        import timm
    except ModuleNotFoundError as exc:
        if exc.name != "torchvision":
            raise
        sys.path.insert(0, TORCHVISION_STUB)
        import timm
    return timm


def add_torch_rows(plan, spec):
    """PyTorch peers (built and warmed first: see :func:`main`)."""
    args = plan.args

    def eager():
        import_timm()
        return torch_row(spec, False, args.threads)

    def compiled():
        import_timm()
        return torch_row(spec, True, args.threads, ref=f"{spec.key}/torch-eager")

    plan.add(f"{spec.key}/torch-eager", eager)
    if not args.no_compile:
        plan.add(f"{spec.key}/torch-compile", compiled)


def add_mindspore_rows(plan, spec, threads_note):
    """Our Cell in both modes, the MINDIR, and mindcv's ghostnet_100 for GhostNet 1.0x."""
    args, key = plan.args, spec.key
    peer = key == "ghostnet_100" and not args.no_peers
    eager = None if args.no_peers else f"{key}/torch-eager"
    for mode in ("pynative", "graph"):
        ref = f"{key}/mindcv-{mode}" if peer else eager
        plan.add(f"{key}/mindspore-{mode}",
                 lambda m=mode, r=ref: mindspore_cell(spec, models.build_cell(spec), m, "ours", threads_note, r))
    plan.add(f"{key}/mindir-graphcell", lambda: mindir(spec, models.export(spec, "mindir", args.work_dir,
                                                                              args.rebuild), threads_note,
                                                      f"{key}/mindspore-graph"))
    if peer:
        for mode in ("pynative", "graph"):
            plan.add(f"{key}/mindcv-{mode}", lambda m=mode: mindspore_cell(spec, mindcv_cell(), m, "mindcv",
                                                                          threads_note, eager))


def mindcv_cell():
    """mindcv 0.3's ghostnet_100 with the same kind of realistic random state as ours."""
    from mindcv.models import create_model

    from src.tools.random_state import randomize_state

    return randomize_state(create_model("ghostnet_100", num_classes=1000))


def add_deploy_rows(plan, spec):
    """onnxruntime on our ONNX (and MindSpore's raw ONNX), on timm's ONNX, and Lite on our ``.ms``."""
    args, key = plan.args, spec.key
    timm_ref = None if args.no_peers else f"{key}/onnxruntime-timm"

    def ours(kind, runtime, ref):
        return lambda: onnxruntime_row(spec, models.export(spec, kind, args.work_dir, args.rebuild), runtime, "ours",
                                       args.threads, ref)

    plan.add(f"{key}/onnxruntime", ours("onnx", "onnxruntime", timm_ref))
    if key in RAW_ONNX:
        plan.add(f"{key}/onnxruntime-raw", ours("onnx_raw", "onnxruntime-raw", f"{key}/onnxruntime"))
    if not args.no_peers:
        def timm_onnx():
            import_timm()
            return onnxruntime_row(spec, models.timm_onnx(spec, args.work_dir, args.rebuild), "onnxruntime-timm",
                                   "timm", args.threads, f"{key}/torch-eager")
        plan.add(f"{key}/onnxruntime-timm", timm_onnx)

    def lite_row():
        if plan.server is None:
            raise Skip("no MindSpore Lite side env (bash scripts/setup_lite_env.sh, needs Python 3.7)")
        return file_row(spec, models.export(spec, "lite", args.work_dir, args.rebuild), "mindspore-lite",
                        args.threads, plan.server, f"{key}/onnxruntime", "ours")
    plan.add(f"{key}/mindspore-lite", lite_row)


def add_file_rows(plan):
    """``--model_file MODEL:NAME=PATH`` rows (int8 exports and the like), referenced to our onnxruntime row."""
    for item in plan.args.model_file:
        head, path = item.split("=", 1)
        key, name = head.split(":", 1)
        spec = models.MODELS[key]
        plan.add(f"{key}/{name}", lambda s=spec, n=name, p=path: file_row(
            s, p, n, plan.args.threads, plan.server, f"{s.key}/onnxruntime"))


def build_plan(args, progress):
    """All rows, in the order that keeps the peers fair: PyTorch's rows are built and run once before MindSpore's
    CPU defaults cap oneDNN at AVX2 (both libraries read ONEDNN_MAX_CPU_ISA once, at their first convolution)."""
    plan = Plan(args)
    specs = [models.MODELS[k] for k in args.models]
    if not args.no_peers:
        for spec in specs:
            add_torch_rows(plan, spec)
        for row in plan.rows:
            progress(f"warming {row.key}")
            row.prepare(args.batches[0], 1)
    from src.runtime import cpu_defaults

    if not args.mindspore_defaults:
        cpu_defaults(args.threads)
    threads_note = ("MindSpore's default threads, oneDNN full ISA" if args.mindspore_defaults else
                    f"kernel threads {args.threads}, oneDNN <= AVX2")
    for spec in specs:
        progress(f"preparing {spec.key}")
        add_mindspore_rows(plan, spec, threads_note)
        add_deploy_rows(plan, spec)
    add_file_rows(plan)
    return plan


def run(args, progress=print):
    """Build the plan, warm every row up at each batch size, time interleaved rounds; returns the JSON document."""
    plan = build_plan(args, progress)
    try:
        results, loads = {}, {}
        for batch, rounds, calls in zip(args.batches, args.rounds, args.calls):
            rows = [row for row in plan.rows if row.supports(batch)]
            for row in rows:
                progress(f"warm-up {row.key} at batch {batch}")
                row.prepare(batch, args.warmup)
            times = interleave(rows, batch, rounds, calls, progress)
            loads[batch] = times.pop("_load")
            results[batch] = {key: stats(t, batch) for key, t in times.items()}
        lite_version = plan.server.version() if plan.server else None
    finally:
        plan.close()
    settings = (f"threads per runtime: {args.threads}; batches {args.batches[0]} and {args.batches[1]}: "
                f"{args.rounds[0]}x{args.calls[0]} and {args.rounds[1]}x{args.calls[1]} timed calls per row "
                f"after {args.warmup} warm-up calls, rounds interleaved; dynamic-batch exports; random weights "
                "with realistic BN statistics")
    command = "python -m benchmarks.run " + " ".join(shlex.quote(a) for a in args.argv)
    # one thread per runtime: CPU time is the call's cost however loaded the machine; with more threads it would
    # add the threads up, so ratios then use wall-clock time
    basis = "cpu_median_ms" if args.threads == 1 else "median_ms"
    return report.build(plan.rows, results, plan.skipped, loads, settings, command.strip(), lite_version, basis)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.argv = argv
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        args.work_dir = os.path.abspath(args.work_dir or (tmp if args.quick else os.path.join(args.out, "models")))
        doc = run(args)
    json_path, md_path = report.write(doc, args.out)
    with open(md_path, encoding="utf-8") as f:
        print(f.read())
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
