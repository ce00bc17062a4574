"""Interleaved timing: every row runs a few calls in turn, round after round, so that the load of a shared machine
falls on all rows alike; statistics are taken over all calls of a row."""
import os
import time

import numpy as np


def time_calls(fn, calls):
    """``(wall ms, process CPU ms)`` of each of ``calls`` consecutive calls of ``fn``. CPU time counts every thread
    of the process (idle MindSpore/onnxruntime/PyTorch pools cost none), so on a loaded machine it stays what the
    call costs while the wall time also counts the waits for a core."""
    times = []
    for _ in range(calls):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(((time.perf_counter() - start) * 1000.0, (time.process_time() - cpu) * 1000.0))
    return times


def interleave(rows, batch, rounds, calls, progress=print):
    """``{row.key: [ms per call]}`` after ``rounds`` rounds of ``calls`` calls per row; the starting row rotates
    every round. Load averages (1 min) are sampled after each round and returned as ``"_load"``."""
    times = {row.key: [] for row in rows}
    loads = []
    for r in range(rounds):
        shift = r % len(rows)
        for row in rows[shift:] + rows[:shift]:
            times[row.key] += row.time(batch, calls)
        loads.append(os.getloadavg()[0])
        progress(f"  batch {batch}: round {r + 1}/{rounds} done (load {loads[-1]:.1f})")
    times["_load"] = loads
    return times


def stats(calls, batch):
    """Median, p10, p90, min of the per-call wall times, the median throughput (images/s) and the same of the
    process CPU time per call."""
    wall, cpu = np.asarray(calls, dtype=np.float64).reshape(-1, 2).T
    p10, median, p90 = np.percentile(wall, [10, 50, 90])
    cpu10, cpu_median, cpu90 = np.percentile(cpu, [10, 50, 90])
    return {"n": int(wall.size), "median_ms": float(median), "p10_ms": float(p10), "p90_ms": float(p90),
            "min_ms": float(wall.min()), "images_per_s": float(batch * 1000.0 / median),
            "cpu_median_ms": float(cpu_median), "cpu_p10_ms": float(cpu10), "cpu_p90_ms": float(cpu90),
            "images_per_cpu_s": float(batch * 1000.0 / cpu_median)}


def paired_ratios(calls_a, calls_b, calls, column):
    """Per round, the median of ``a``'s calls over the median of ``b``'s (``column`` 0: wall, 1: CPU time). Both rows
    ran in the same rounds of :func:`interleave`, so a load that hits one round hits both: the ratio of one round is
    a paired comparison, and how many rounds ``a`` won says whether a small gap is real or noise."""
    a, b = (np.median(np.asarray(c, dtype=np.float64).reshape(-1, calls, 2)[:, :, column], axis=1)
            for c in (calls_a, calls_b))
    return a / b
