"""``python -m benchmarks.plots``: the documentation's figures, drawn with matplotlib from the JSON the project's
runs already write, copied into ``docs/data`` so the figures can be made again with one command.

Read from ``--data`` (default ``docs/data``)::

    benchmark.json           python -m benchmarks.run --out DIR            (DIR/benchmark.json)
    quant_latency.json       python -m benchmarks.quant_latency --json FILE
    int8_accuracy/NAME.json  eval.py's eval_metrics.json of each variant, the file named by the variant
    int8_accuracy/model.txt  optional: one line saying which model and data these are (the JSON does not say)
    training/NAME.jsonl      train.py's metrics.jsonl of each run, the file named by the run

Written to ``--out`` (default ``docs/img``)::

    accuracy_vs_latency.png  published ImageNet top-1 against measured batch-1 latency: a colour per family,
                             a marker per runtime (ours filled, the peers hollow)
    int8_vs_float.png        file size, batch-1 and batch-32 latency, and top-1 of float and int8
    training_curves.png      train loss and val top-1 per epoch, a line per run

Each figure's footer names its source files and, where the JSON has them, the command, date and commit. A missing
matplotlib, or a missing or malformed data file, is one ``error:`` line and exit code 2, and nothing is written:
every file is read and every figure drawn before the first PNG is saved (atomically).
"""
import argparse
import glob
import json
import os
import sys
import textwrap

from src.errors import ROOT, DataError, ProjectError
from src.extras import require
from src.files import atomic_path

from .models import MODELS

DPI = 110
FIGSIZE = {"accuracy_vs_latency": (11.0, 6.0), "int8_vs_float": (12.0, 9.0), "training_curves": (12.0, 5.0)}
# runtime of a benchmark.json row -> (legend label, marker, ours, dodge); the other runtimes are not plotted. Each
# marker sits DODGE * dodge points above or below its family's line, so runtimes of about the same latency (GRAPH
# and its MINDIR, our ONNX and timm's) do not hide each other
RUNTIMES = {
    "mindspore-graph": ("MindSpore GRAPH", "o", True, 3),
    "mindir-graphcell": ("MINDIR (GraphCell)", "s", True, -3),
    "onnxruntime": ("onnxruntime, our ONNX", "D", True, 2),
    "mindspore-lite": ("MindSpore Lite, our .ms", "^", True, 1),
    "torch-eager": ("timm, PyTorch eager", "v", False, -1),
    "onnxruntime-timm": ("onnxruntime, timm's ONNX", "P", False, -2),
    "mindcv-graph": ("mindcv GRAPH", "X", False, 0),
}
DODGE = 0.045
OUTLIER = 8
# quant_latency.json file labels -> (legend label, colour, hatch); int8 before padding is left out
QUANT_FILES = {
    "fp32": ("float ONNX", "#4c72b0", ""),
    "int8": ("int8 ONNX (ours)", "#dd8452", ""),
    "stock_int8": ("int8 ONNX (onnxruntime stock PTQ)", "#55a868", ""),
    "ms_fp32": (".ms fp32 (Lite)", "#a6bddb", "//"),
    "ms_int8": (".ms int8 (Lite)", "#fdbb84", "//"),
}
PLOTS = ("accuracy_vs_latency", "int8_vs_float", "training_curves")


def shown(path):
    """``path`` as a reader of the docs finds it: relative to the repository when inside it."""
    path = os.path.abspath(path)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def read_json(path, hint=""):
    """The JSON document at ``path``; a missing or unreadable file is a :class:`DataError` naming it (and ``hint``:
    how to make it)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{shown(path)} is missing" + (f" ({hint})" if hint else "")) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{shown(path)} is not a readable JSON file: {exc}") from None


def checked(path, what, read):
    """``read()``, with a wrong shape of the data (a missing key, a string for a number) as one line naming the
    file."""
    try:
        return read()
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise DataError(f"{shown(path)} is not {what}: {type(exc).__name__} {exc}") from None


def stamp(doc):
    """``command, date, commit`` of a document that records them (benchmark.json does)."""
    parts = [f"`{doc['command']}`" if doc.get("command") else "",
             str(doc.get("date") or ""), f"commit {doc['commit']}" if doc.get("commit") else ""]
    return ", ".join(p for p in parts if p)


def load_benchmark(data_dir):
    """Per plotted model: ``{"spec", "points": {runtime: batch-1 median ms}}``, and the footer."""
    path = os.path.join(data_dir, "benchmark.json")
    doc = read_json(path, "write it with python -m benchmarks.run --out DIR and copy DIR/benchmark.json")

    def read():
        latency = {}
        for row in doc["rows"]:
            results = row["results"]
            if not results:
                continue
            small = min(results, key=int)
            spec = MODELS.get(row["model"])
            if spec is None or spec.published_top1 is None or row["runtime"] not in RUNTIMES or not results[small]:
                continue
            latency.setdefault(spec.key, {})[row["runtime"]] = float(results[small]["median_ms"])
        machine = doc.get("machine") or {}
        cpu = f"{machine['cpu']}, {machine['usable_cores']} usable cores; " if "cpu" in machine else ""
        return latency, cpu + str(doc.get("settings", "")).split(";")[0]

    latency, threads = checked(path, "a benchmark.json of python -m benchmarks.run", read)
    # one spec per architecture: the deployed form where it was measured (what a user deploys)
    chosen = {}
    for key in latency:
        spec = MODELS[key]
        if spec.name not in chosen or spec.deploy:
            chosen[spec.name] = spec
    if not chosen:
        raise DataError(f"{shown(path)} has no batch-1 row of a model with a published top-1 in a plotted runtime "
                        f"({', '.join(RUNTIMES)})")
    models = [{"spec": s, "points": latency[s.key]} for s in chosen.values()]
    footer = (f"Source: {shown(path)} ({stamp(doc)}). Batch 1, 224 px, median wall-clock ms of interleaved calls, "
              f"{threads}; random weights (latency does not depend on them). Top-1: the published ImageNet figure "
              "of each architecture at 1.0x (benchmarks/models.py), not measured here: the line at that value; "
              f"each runtime's marker is drawn up to {3 * DODGE:.2f} above or below it so that none hides "
              "another.")
    return {"models": models, "footer": footer}


def load_quant(data_dir):
    """quant_latency.json's results and sizes, the eval JSONs of the int8 accuracy variants, and the footer."""
    path = os.path.join(data_dir, "quant_latency.json")
    doc = read_json(path, "write it with python -m benchmarks.quant_latency --json FILE")

    def read():
        groups = []
        for r in doc["results"]:
            threads = int(r["threads"])
            col = 1 if threads == 1 else 0  # as its table: CPU time at 1 thread, wall time at more
            times = {batch: {k: float(r[f"{k}_bs{batch}"][col]) for k in QUANT_FILES if f"{k}_bs{batch}" in r}
                     for batch in (1, 32)}
            if "fp32" not in times[1] or "fp32" not in times[32]:
                raise KeyError(f"fp32_bs1/fp32_bs32 of {r['model']}")
            groups.append({"model": str(r["model"]), "threads": threads, "times": times})
        sizes = {m: {k: float(v[k]) for k in QUANT_FILES if k in v} for m, v in doc["sizes_mb"].items()}
        if not groups or not sizes:
            raise ValueError("no results")
        return groups, sizes

    groups, sizes = checked(path, "a --json file of python -m benchmarks.quant_latency", read)
    acc_dir = os.path.join(data_dir, "int8_accuracy")
    acc_files = sorted(glob.glob(os.path.join(acc_dir, "*.json")))
    if not acc_files:
        raise DataError(f"{shown(acc_dir)} has no eval JSON (copy eval.py's eval_metrics.json of each variant "
                        "there as VARIANT.json)")
    accuracy = []
    for acc_path in acc_files:
        metrics = read_json(acc_path)

        def read_acc(m=metrics):
            top1, count = float(m["top1"]), int(m["count"])
            if not 0 <= top1 <= 1 or count < 1:
                raise ValueError(f"top1 {top1}, count {count}")
            return top1, count
        top1, count = checked(acc_path, "an eval_metrics.json of eval.py", read_acc)
        accuracy.append({"variant": os.path.splitext(os.path.basename(acc_path))[0], "top1": top1, "count": count})
    about = ""
    if os.path.isfile(os.path.join(acc_dir, "model.txt")):
        with open(os.path.join(acc_dir, "model.txt"), encoding="utf-8") as f:
            about = " ".join(f.read().split())
    footer = (f"Sources: {shown(path)} (python -m benchmarks.quant_latency; latency: ms per batch, median of "
              "interleaved calls, process CPU time at 1 thread, wall time at 2; 224 px, files of the harness's "
              f"random-weight checkpoint); top-1: {shown(acc_dir)}/{{{','.join(a['variant'] for a in accuracy)}}}"
              ".json (eval.py's eval_metrics.json).")
    return {"groups": groups, "sizes": sizes, "accuracy": accuracy, "about": about, "footer": footer}


def load_training(data_dir):
    """``{run name: [metrics records]}`` of every ``training/*.jsonl``, and the footer."""
    folder = os.path.join(data_dir, "training")
    paths = sorted(glob.glob(os.path.join(folder, "*.jsonl")))
    if not paths:
        raise DataError(f"{shown(folder)} has no metrics file (copy train.py's metrics.jsonl of each run there "
                        "as RUN.jsonl)")
    runs = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                lines = [(n, line) for n, line in enumerate(f, 1) if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{shown(path)} cannot be read: {exc}") from None
        records = []
        for n, line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{shown(path)} line {n} is not JSON: {exc}") from None

            def read(r=record):
                return {"epoch": int(r["epoch"]), "train_loss": float(r["train_loss"]),
                        "val_top1": None if r.get("val_top1") is None else float(r["val_top1"])}
            records.append(checked(f"{path} line {n}", "a metrics record of train.py", read))
        if not records:
            raise DataError(f"{shown(path)} is empty")
        runs[os.path.splitext(os.path.basename(path))[0]] = records
    footer = (f"Sources: {shown(folder)}/{{{','.join(runs)}}}.jsonl (train.py's metrics.jsonl, one file per run; "
              "the legend is the file name). Train loss is each run's own objective (with a teacher: the "
              "distillation loss).")
    return {"runs": runs, "footer": footer}


LOADERS = {"accuracy_vs_latency": load_benchmark, "int8_vs_float": load_quant, "training_curves": load_training}


def new_figure(name, footer, margins=None):
    """A matplotlib Figure (Agg canvas, no pyplot state) with ``footer`` wrapped below the axes; laid out by
    matplotlib's constrained layout, or by hand with ``margins`` (left, right, top, bottom above the footer:
    fractions of the figure)."""
    require("matplotlib", "python -m benchmarks.plots")
    # lazy: matplotlib is an optional extra (requirements-test.txt); importing this module must not need it
    from matplotlib.figure import Figure

    width, height = FIGSIZE[name]
    lines = textwrap.wrap(footer, width=int(width * 17))
    bottom = (len(lines) * 0.15 + 0.1) / height
    fig = Figure(figsize=(width, height), dpi=DPI, layout=None if margins else "constrained")
    if margins:
        left, right, top, above = margins
        fig.subplots_adjust(left=left, right=right, top=top, bottom=bottom + above)
    else:
        fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))
    fig.text(0.01, 0.012, "\n".join(lines), fontsize=7.5, color="#444444", va="bottom", ha="left")
    return fig


def accuracy_vs_latency(data):
    fig = new_figure("accuracy_vs_latency", data["footer"], margins=(0.07, 0.74, 0.94, 0.08))
    ax = fig.add_subplot()
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    family_handles, runtime_handles = [], {}
    for i, model in enumerate(sorted(data["models"], key=lambda m: m["spec"].published_top1)):
        spec, colour = model["spec"], colours[i % len(colours)]
        y = spec.published_top1
        xs = sorted(model["points"].values())
        ax.plot([xs[0], xs[-1]], [y, y], color=colour, lw=1, alpha=0.45, zorder=1)
        for runtime, ms in model["points"].items():
            label, marker, ours, dodge = RUNTIMES[runtime]
            ax.plot([ms, ms], [y, y + DODGE * dodge], color=colour, lw=0.8, alpha=0.6, zorder=2)
            ax.scatter([ms], [y + DODGE * dodge], s=55, marker=marker, zorder=3, linewidths=1.4, edgecolors=colour,
                       facecolors=colour if ours else "white")
            runtime_handles[runtime] = (label, marker, ours)
        family_handles.append(ax.scatter([], [], s=70, marker="o", color=colour,
                                         label=f"{spec.label} ({y:.1f}%)"))
    ax.set_xscale("log")
    ax.set_xlabel("batch-1 latency, ms (median, log scale)")
    ax.set_ylabel("ImageNet top-1, % (published)")
    ax.set_title("Accuracy vs latency on this machine's CPU: each family in our runtimes and the peers'")
    ax.grid(True, which="both", alpha=0.25)
    plain_log_ticks(ax)
    tops = [m["spec"].published_top1 for m in data["models"]]
    ax.set_ylim(min(tops) - 0.8, max(tops) + 0.8)
    ax.add_artist(ax.legend(handles=family_handles, title="family (colour), published top-1", loc="upper left",
                            bbox_to_anchor=(1.02, 1), fontsize=8.5, title_fontsize=9))
    handles = [ax.scatter([], [], s=60, marker=marker, edgecolors="#333333",
                          facecolors="#333333" if ours else "white", linewidths=1.5, label=label)
               for runtime, (label, marker, ours) in sorted(runtime_handles.items(),
                                                            key=lambda kv: list(RUNTIMES).index(kv[0]))]
    ax.legend(handles=handles, title="runtime (marker; hollow: peers)", loc="lower left", bbox_to_anchor=(1.02, 0),
              fontsize=8.5, title_fontsize=9)
    return fig


def plain_log_ticks(ax):
    """Plain-number ticks (1, 2, 5, 10, ...) on a log x axis."""
    # lazy: matplotlib is optional (see new_figure)
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    lo, hi = ax.get_xlim()
    ticks = [m * 10 ** e for e in range(-1, 5) for m in (1, 2, 3, 5) if lo <= m * 10 ** e <= hi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def grouped_bars(ax, groups):
    """Bars of ``[(group label, {file label: value})]``, grouped, each with its value on a linear axis. Bars more
    than OUTLIER times the panel's median (Lite's int8 ``.ms`` on x86, 20-60x the others) would flatten the rest:
    the axis stops above the other bars and those run off its top, their value written inside."""
    keys = [k for k in QUANT_FILES if any(k in values for _, values in groups)]
    every = sorted(v for _, values in groups for v in values.values())
    median = every[len(every) // 2]
    top = 1.18 * max(v for v in every if v <= OUTLIER * median)
    width = 0.8 / len(keys)
    vertical = len(keys) * len(groups) > 12
    for i, (_, values) in enumerate(groups):
        for j, key in enumerate(k for k in keys if k in values):
            label, colour, hatch = QUANT_FILES[key]
            x, value = i + (keys.index(key) - (len(keys) - 1) / 2) * width, values[key]
            ax.bar(x, value, width * 0.92, color=colour, hatch=hatch, edgecolor="#555555", linewidth=0.5,
                   label=label)
            text = f"{value:.0f}" if value >= 100 else f"{value:.3g}"
            if value > top:
                ax.annotate(text + " \u2191", (x, top), xytext=(0, -3), textcoords="offset points", ha="center",
                            va="top", fontsize=7, rotation=90, bbox={"fc": "white", "ec": "none", "pad": 0.5})
            else:
                ax.annotate(text, (x, value), xytext=(0, 2), textcoords="offset points", ha="center",
                            va="bottom", fontsize=7, rotation=90 if vertical else 0)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g for g, _ in groups], fontsize=8)
    ax.set_ylim(0, top)
    ax.grid(True, axis="y", alpha=0.25)


def model_label(key):
    """The model's label (its spec's, else the key) on lines of at most 17 characters, for a bar group."""
    spec = MODELS.get(key)
    return textwrap.fill(spec.label if spec else key, 17)


def int8_vs_float(data):
    fig = new_figure("int8_vs_float", data["footer"])
    (size_ax, acc_ax), (bs1_ax, bs32_ax) = fig.subplots(2, 2)
    grouped_bars(size_ax, [(model_label(m), v) for m, v in data["sizes"].items()])
    size_ax.set_ylabel("file size, MB")
    size_ax.set_title("File size")
    for ax, batch in ((bs1_ax, 1), (bs32_ax, 32)):
        groups = [(f"{model_label(g['model'])}\n{g['threads']} thread{'s' if g['threads'] > 1 else ''}",
                   g["times"][batch]) for g in data["groups"]]
        grouped_bars(ax, groups)
        ax.set_ylabel(f"ms per batch of {batch}")
        ax.set_title(f"Latency, batch {batch} (1 thread: CPU time; 2: wall time)")
    variants = data["accuracy"]
    ys = range(len(variants))
    top1 = [100 * a["top1"] for a in variants]
    acc_ax.hlines(ys, min(top1) - 100, top1, color="#bbbbbb", lw=1)
    acc_ax.scatter(top1, ys, s=60, color=["#dd8452" if "int8" in a["variant"] or "qat" in a["variant"]
                                          or "ptq" in a["variant"] else "#4c72b0" for a in variants], zorder=3)
    for y, value in zip(ys, top1):
        acc_ax.annotate(f"{value:.2f}", (value, y), xytext=(6, 0), textcoords="offset points", va="center",
                        fontsize=8.5)
    acc_ax.set_yticks(list(ys))
    acc_ax.set_yticklabels([a["variant"] for a in variants], fontsize=8.5)
    acc_ax.invert_yaxis()
    span = max(top1) - min(top1)
    acc_ax.set_xlim(min(top1) - max(1.0, span), max(top1) + max(1.0, span))
    acc_ax.set_xlabel("top-1, % (axis does not start at 0)")
    counts = " / ".join(f"{c:,}" for c in sorted({a["count"] for a in variants}))
    about = textwrap.wrap(data["about"], 62, break_on_hyphens=False)
    acc_ax.set_title("\n".join([f"Accuracy, float vs int8 ({counts} images)"] + about), fontsize=9.5 if about else 12)
    acc_ax.grid(True, axis="x", alpha=0.25)
    seen = {}  # one legend entry per file kind drawn in any panel, in QUANT_FILES order
    for ax in (size_ax, bs1_ax, bs32_ax):
        for bars in ax.containers:
            seen.setdefault(bars.get_label(), bars)
    order = [label for label, _, _ in QUANT_FILES.values()]
    fig.legend(handles=sorted(seen.values(), key=lambda b: order.index(b.get_label())),
               loc="outside upper center", ncols=len(seen), fontsize=8.5)
    return fig


def training_curves(data):
    fig = new_figure("training_curves", data["footer"])
    loss_ax, acc_ax = fig.subplots(1, 2)
    for i, (name, records) in enumerate(data["runs"].items()):
        style = {"marker": "osD^vP*X"[i % 8], "ms": 5, "alpha": 0.9}  # a marker per run tells overlapping lines apart
        epochs = [r["epoch"] for r in records]
        line, = loss_ax.plot(epochs, [r["train_loss"] for r in records], label=name, **style)
        val = [(r["epoch"], r["val_top1"]) for r in records if r["val_top1"] is not None]
        if val:
            scale = 100 if max(v for _, v in val) <= 1 else 1
            acc_ax.plot([e for e, _ in val], [scale * v for _, v in val], color=line.get_color(), label=name, **style)
    for ax, ylabel, title in ((loss_ax, "train loss", "Training loss per epoch"),
                              (acc_ax, "val top-1, %", "Validation top-1 per epoch")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.25)
        ax.xaxis.get_major_locator().set_params(integer=True)
    acc_ax.legend(title="run (file name)", fontsize=8.5, title_fontsize=9, loc="best")
    return fig


DRAW = {"accuracy_vs_latency": accuracy_vs_latency, "int8_vs_float": int8_vs_float,
        "training_curves": training_curves}


def make(data_dir, out_dir, names=PLOTS):
    """Read every source, draw every figure, then save each PNG atomically; returns the paths written."""
    require("matplotlib", "python -m benchmarks.plots")
    figures = {name: DRAW[name](LOADERS[name](data_dir)) for name in names}
    paths = []
    for name, fig in figures.items():
        path = os.path.join(out_dir, f"{name}.png")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})  # no version: stable bytes
        paths.append(path)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.path.join(ROOT, "docs", "data"), help="the JSON (default docs/data)")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "img"), help="the PNGs (default docs/img)")
    parser.add_argument("--only", nargs="+", choices=PLOTS, default=list(PLOTS), help="draw only these figures")
    args = parser.parse_args(argv)
    try:
        paths = make(args.data, args.out, args.only)
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"wrote {shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
