"""benchmarks/run.py --quick: the harness runs end to end and reports every row it could build (nothing about
speed is asserted: the machine is shared). Also the CPU defaults the entry points apply."""
import json
import os
import subprocess
import sys

import pytest

from benchmarks.quant_latency import markdown
from benchmarks.timing import paired_ratios
from deploy_helpers import exported
from helpers import ROOT, run_main


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One ``--quick`` run, with an already exported quickstart-shaped ONNX added as an extra file row (~45 s: every
    test that uses it is marked slow)."""
    base = str(tmp_path_factory.getbasetemp() / "deploy")
    os.makedirs(base, exist_ok=True)
    extra, _ = exported(base, "ghostnet_050", "ONNX")
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out),
                           "--model_file", f"quickstart:extra-onnx={extra}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "benchmark.json", encoding="utf-8") as f:
        doc = json.load(f)
    with open(out / "benchmark.md", encoding="utf-8") as f:
        return doc, f.read()


@pytest.mark.slow
def test_quick_run_times_every_runtime_it_can(quick_run):
    doc, _ = quick_run
    rows = {row["runtime"]: row for row in doc["rows"]}
    expected = {"mindspore-pynative", "mindspore-graph", "onnxruntime", "extra-onnx"}
    skipped = {s["row"].split("/")[1]: s["reason"] for s in doc["skipped"]}
    for optional in ("mindspore-lite", "torch-eager", "onnxruntime-timm"):
        assert optional in rows or optional in skipped
    assert expected <= set(rows)
    for row in doc["rows"]:
        for batch, n in (("1", 2), ("4", 1)):
            result = row["results"][batch]
            if row["runtime"] == "extra-onnx" and batch == "4":
                assert result is None  # exported with a fixed batch of 1: timed at batch 1 only
                continue
            assert result["n"] == n and 0 < result["min_ms"] <= result["median_ms"] <= result["p90_ms"]
            assert result["cpu_median_ms"] > 0
    assert rows["onnxruntime"]["ref"] in (None, "quickstart/onnxruntime-timm")
    assert rows["extra-onnx"]["file"].endswith(".onnx") and rows["extra-onnx"]["ref"] == "quickstart/onnxruntime"
    assert doc["machine"]["usable_cores"] >= 1 and doc["versions"]["mindspore"]
    assert doc["load_avg_1min"]["max"] >= doc["load_avg_1min"]["min"] >= 0


@pytest.mark.slow
def test_quick_run_table_lists_every_row(quick_run):
    doc, table = quick_run
    lines = [ln for ln in table.splitlines() if ln.startswith("| quickstart |")]
    assert [ln.split("|")[2].strip() for ln in lines] == [row["runtime"] for row in doc["rows"]]
    assert doc["command"] in table and "load average" in table


def _python(code, env=None):
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})))


_DEPTHWISE = ("from src.runtime import cpu_defaults; cpu_defaults(); import numpy as np, mindspore as ms; "
              "ms.set_device('CPU'); ms.set_context(mode=ms.PYNATIVE_MODE); "
              "conv = ms.nn.Conv2d(16, 16, 3, pad_mode='pad', padding=1, group=16); "
              "conv(ms.Tensor(np.ones((1, 16, 8, 8), np.float32))).asnumpy()")


def test_cpu_defaults_keep_onednn_off_its_reference_convolution():
    """A depthwise 3x3 conv after cpu_defaults() runs an optimised oneDNN kernel, never 'ref:any' (which 2.10
    gets on AVX-512 CPUs otherwise); a user's own ONEDNN_MAX_CPU_ISA is kept."""
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    proc = subprocess.run([sys.executable, "-c", _DEPTHWISE], cwd=ROOT, capture_output=True, text=True,
                          env=dict(env, ONEDNN_VERBOSE="1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    convs = [ln for ln in proc.stdout.splitlines() if ",exec,cpu,convolution," in ln]
    assert convs and not any("ref:any" in ln for ln in convs), convs
    kept = _python("from src.runtime import cpu_defaults; cpu_defaults(); import os; "
                   "print(os.environ['ONEDNN_MAX_CPU_ISA'])", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"})
    assert kept.stdout.strip().splitlines()[-1] == "AVX512_CORE"


def test_negative_cpu_threads_is_a_one_line_error(tmp_path, capsys):
    proc = run_main(capsys, "export.py", "--model", "ghostnet_050", "--cpu_threads", "-1", "--file_name",
                    tmp_path / "m")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: cpu_threads must be >= 0 (0 = one per available core), got -1"]
    assert os.listdir(tmp_path) == []


def test_paired_ratios_compare_two_rows_round_by_round():
    """Three rounds of two calls each, (wall, CPU) per call: the ratio of a round is the median of a's calls over
    b's, so a round where the machine slowed both rows down still compares them fairly."""
    a = [(2, 1), (4, 1), (30, 3), (30, 3), (5, 1), (5, 1)]
    b = [(4, 2), (4, 2), (60, 4), (40, 4), (4, 2), (4, 2)]
    assert paired_ratios(a, b, 2, 0).tolist() == [0.75, 0.6, 1.25]
    assert paired_ratios(a, b, 2, 1).tolist() == [0.5, 0.75, 0.5]


def test_quant_latency_table_states_the_rounds_our_int8_won():
    row = {"model": "m", "threads": 1, "fp32_bs1": [9.0, 4.0], "int8_bs1": [9.0, 3.0], "stock_int8_bs1": [9.0, 3.2],
           "int8_vs_stock_int8_bs1": [0.94, 18, 20], "int8_vs_fp32_bs1": [0.75, 20, 20]}
    row.update({k.replace("bs1", "bs32"): v for k, v in row.items() if k.endswith("bs1")})
    table = markdown([row]).splitlines()
    assert table[0] == ("| model | batch | threads | float ONNX | int8 (ours) | stock PTQ | "
                        "ours / stock, per round (rounds won) | ours / float, per round |")
    assert table[2] == "| m | 1 | 1 | 4.00 (1.00×) | 3.00 (0.75×) | 3.20 (0.80×) | 0.94 (18/20) | 0.75 (20/20) |"
