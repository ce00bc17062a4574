"""Interleaved timing: every row runs a few calls in turn, round after round, so that the load of a shared machine
falls on all rows alike; statistics are taken over all calls of a row."""
import os
import time

import numpy as np


def time_calls(fn, calls):
    """Wall-clock milliseconds of ``calls`` consecutive calls of ``fn``."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
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


def stats(ms_per_call, batch):
    """Median, p10, p90, min of the per-call times and the median throughput (images/s)."""
    a = np.asarray(ms_per_call)
    p10, median, p90 = np.percentile(a, [10, 50, 90])
    return {"n": int(a.size), "median_ms": float(median), "p10_ms": float(p10), "p90_ms": float(p90),
            "min_ms": float(a.min()), "images_per_s": float(batch * 1000.0 / median)}
