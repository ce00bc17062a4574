"""What a benchmark run writes: ``benchmark.json`` (every figure, settings, versions, machine, load) and
``benchmark.md`` (the table docs/benchmarks.md "Performance" quotes)."""
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess

import numpy as np

from src.errors import ROOT
from src.files import atomic_write

PACKAGES = ("mindspore", "onnxruntime", "onnx", "numpy", "torch", "timm", "mindcv")


def machine():
    """CPU model, usable cores and the SIMD features that set the compute limit."""
    info = {"platform": platform.platform(), "cpu": platform.processor(), "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            lines = f.read().splitlines()
        model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")
        flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
        info["cpu"] = model or info["cpu"]
        info["simd"] = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8") if f in flags]
    except OSError:
        pass
    return info


def versions(lite_version=None):
    """Installed versions of the packages the rows use (None when absent)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    found["mindspore_lite"] = lite_version
    return found


def git_commit():
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip() or None


def speed(results, batch, key, ref, basis):
    """``ref``'s time / ``key``'s time at ``batch`` (> 1: ``key`` is faster), or None when either is missing."""
    mine, other = results[batch].get(key), results[batch].get(ref)
    return other[basis] / mine[basis] if mine and other else None


def build(rows, results, skipped, loads, settings, command, lite_version, basis):
    """The JSON document of a run; ratios compare ``basis`` (``median_ms`` wall or ``cpu_median_ms``)."""
    batches = sorted(results)
    entries = []
    for row in rows:
        entry = row.describe()
        entry["results"] = {str(b): results[b].get(row.key) for b in batches}
        entry["speed_vs_ref"] = {str(b): speed(results, b, row.key, row.ref, basis) for b in batches}
        entry["speed_vs_torch_eager"] = {str(b): speed(results, b, row.key, f"{row.spec.key}/torch-eager", basis)
                                         for b in batches}
        entries.append(entry)
    all_loads = [v for b in batches for v in loads[b]]
    return {"command": command, "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "commit": git_commit(), "machine": machine(), "versions": versions(lite_version),
            "settings": settings, "ratio_basis": basis, "load_avg_1min": {"min": min(all_loads), "median": float(np.median(all_loads)),
                                                     "max": max(all_loads)} if all_loads else None,
            "rows": entries, "skipped": [{"row": k, "reason": r} for k, r in skipped]}


def _fmt(value, digits=1, suffix=""):
    return "—" if value is None else f"{value:.{digits}f}{suffix}"


def markdown(doc):
    """The results table with the run's conditions above it."""
    batches = sorted({int(b) for row in doc["rows"] for b in row["results"]})
    small, big = batches[0], batches[-1]
    m, load = doc["machine"], doc["load_avg_1min"]
    basis = "process CPU time" if doc["ratio_basis"] == "cpu_median_ms" else "wall-clock time"
    lines = [f"`{doc['command']}` — {doc['date']}, commit {doc['commit']}",
             "",
             f"Machine: {m['cpu']}, {m['usable_cores']} usable cores ({', '.join(m.get('simd', []))}); "
             f"load average (1 min) during the run {load['min']:.1f}–{load['max']:.1f} (median {load['median']:.1f}). "
             + "Versions: " + ", ".join(f"{k} {v}" for k, v in doc["versions"].items() if v) + ".",
             f"Settings: {doc['settings']}. Speed ratios compare {basis} medians (ref time / row time: > 1 is "
             "faster).",
             "",
             f"| model | runtime | source | bs {small} ms, median (p10–p90) | bs {small} CPU ms | bs {big} img/s | "
             f"bs {big} img per CPU-s | speed vs ref (bs {small} / bs {big}) | ref | speed vs PyTorch eager "
             f"(bs {small}) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in doc["rows"]:
        s, b = row["results"].get(str(small)), row["results"].get(str(big))
        rel = row["speed_vs_ref"]
        lines.append(
            f"| {row['model']} | {row['runtime']} | {row['source']} | {_fmt(s and s['median_ms'], 2)} "
            f"({_fmt(s and s['p10_ms'], 2)}–{_fmt(s and s['p90_ms'], 2)}) | {_fmt(s and s['cpu_median_ms'], 2)} | "
            f"{_fmt(b and b['images_per_s'])} | {_fmt(b and b['images_per_cpu_s'])} | "
            f"{_fmt(rel.get(str(small)), 2, '×')} / {_fmt(rel.get(str(big)), 2, '×')} | "
            f"{row['ref'].split('/', 1)[1] if row['ref'] else '—'} | "
            f"{_fmt(row['speed_vs_torch_eager'].get(str(small)), 2, '×')} |")
    if doc["skipped"]:
        lines += ["", "Skipped: " + "; ".join(f"{s['row']} ({s['reason']})" for s in doc["skipped"]) + "."]
    lines += ["", "Per row settings:", ""]
    lines += [f"- `{row['key']}`: {row['settings']}" + (f" — `{os.path.basename(row['file'])}`" if row["file"] else "")
              for row in doc["rows"]]
    return "\n".join(lines) + "\n"


def write(doc, out_dir):
    """``benchmark.json`` and ``benchmark.md`` in ``out_dir``; returns their paths."""
    paths = os.path.join(out_dir, "benchmark.json"), os.path.join(out_dir, "benchmark.md")
    with atomic_write(paths[0], "w") as f:
        json.dump(doc, f, indent=1)
    with atomic_write(paths[1], "w") as f:
        f.write(markdown(doc))
    return paths
