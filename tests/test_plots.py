"""The documentation's figures (``python -m benchmarks.plots``) from tiny JSON written here, the refusals that leave
nothing behind, the published top-1 they plot, and the axes of the ``curves.png`` a training run writes."""
import json
import os

import cv2
import numpy as np
import pytest

from benchmarks import plots
from benchmarks.models import MODELS
from src import extras
from src.errors import ROOT
from src.train.metrics import PLOT_BOTTOM, PLOT_LEFT, plot_curves


def write_json(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f)


def benchmark_doc():
    """benchmark.json as benchmarks.report.build writes it, cut to a few rows (and rows the plot leaves out)."""
    rows = []
    for model, base in (("ghostnet_100", 6.0), ("repghostnet_100", 5.0), ("repghostnet_100_deploy", 4.0),
                        ("quickstart", 1.0)):
        for runtime, factor in (("mindspore-graph", 5.0), ("onnxruntime", 1.0), ("torch-eager", 3.0),
                                ("mindspore-pynative", 40.0)):
            rows.append({"key": f"{model}/{runtime}", "model": model, "runtime": runtime, "source": "ours",
                         "settings": "", "ref": None, "file": None,
                         "results": {"1": {"median_ms": base * factor, "cpu_median_ms": base * factor},
                                     "32": {"median_ms": 30 * base * factor}}})
    rows.append({"key": "ghostnet_100/mindcv-graph", "model": "ghostnet_100", "runtime": "mindcv-graph",
                 "results": {"1": {"median_ms": 100.0}, "32": None}})
    rows.append({"key": "ghostnetv2_100/mindir-graphcell", "model": "ghostnetv2_100", "runtime": "mindir-graphcell",
                 "results": {"1": None, "32": None}})  # a row without a batch-1 result is left out
    return {"command": "python -m benchmarks.run --threads 1", "date": "2026-12-02T15:10:00", "commit": "abc1234",
            "settings": "threads per runtime: 1; batches 1 and 32", "ratio_basis": "cpu_median_ms", "rows": rows,
            "skipped": []}


def quant_doc():
    results = []
    for model in ("ghostnet_100", "repghostnet_100_deploy"):
        for threads in (1, 2):
            r = {"model": model, "threads": threads, "load_bs1": 1.0, "load_bs32": 1.0}
            for label, ms in (("fp32", 6.0), ("int8_unpadded", 5.0), ("int8", 4.4), ("stock_int8", 5.1),
                              ("ms_fp32", 7.7), ("ms_int8", 160.0)):
                r[f"{label}_bs1"], r[f"{label}_bs32"] = [ms, ms], [30 * ms, 30 * ms]
            results.append(r)
    sizes = {m: {"fp32": 20.6, "int8_unpadded": 5.3, "int8": 5.4, "stock_int8": 5.6, "ms_fp32": 20.7,
                 "ms_int8": 9.7} for m in ("ghostnet_100", "repghostnet_100_deploy")}
    return {"results": results, "sizes_mb": sizes}


def training_runs(folder):
    for name, shift in (("v3_s0", 0.0), ("v3kd_s0", 0.02)):
        with open(os.path.join(folder, f"{name}.jsonl"), "w", encoding="utf-8") as f:
            for epoch in range(1, 5):
                f.write(json.dumps({"epoch": epoch, "train_loss": 1.5 / epoch, "lr": 0.1,
                                    "val_top1": 0.7 + 0.04 * epoch + shift, "val_top5": 0.99}) + "\n")


@pytest.fixture
def matplotlib():
    return pytest.importorskip("matplotlib", reason="an optional extra: pip install -r requirements-test.txt")


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "data"
    write_json(str(root / "benchmark.json"), benchmark_doc())
    write_json(str(root / "quant_latency.json"), quant_doc())
    for variant, top1 in (("float", 0.8619), ("ptq_int8", 0.8571), ("qat_int8", 0.857)):
        write_json(str(root / "int8_accuracy" / f"{variant}.json"),
                   {"top1": top1, "top5": 0.99, "count": 9000, "per_class": [top1] * 10,
                    "class_names": list("abcdefghij")})
    (root / "int8_accuracy" / "model.txt").write_text("GhostNetV3 0.5x\non held-out images\n", encoding="utf-8")
    os.makedirs(root / "training")
    training_runs(str(root / "training"))
    return root


def test_plots_are_made_from_the_runs_json(matplotlib, data, tmp_path, capsys):
    out = tmp_path / "img"
    assert plots.main(["--data", str(data), "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == [f"{name}.png" for name in sorted(plots.PLOTS)]  # no temporary left
    for name in plots.PLOTS:
        path = out / f"{name}.png"
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert 20_000 < os.path.getsize(path) < 1_000_000
        image = cv2.imread(str(path))
        width, height = plots.FIGSIZE[name]
        assert image.shape[:2] == (round(height * plots.DPI), round(width * plots.DPI))
        assert (image < 128).any() and (image > 250).mean() > 0.5  # drawn, mostly white
    assert "wrote" in capsys.readouterr().out


def test_the_committed_figures_regenerate_from_the_committed_data(matplotlib, tmp_path):
    """docs/data holds everything `python -m benchmarks.plots` needs for the figures docs/ shows."""
    out = tmp_path / "img"
    assert plots.main(["--data", os.path.join(ROOT, "docs", "data"), "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == sorted(os.listdir(os.path.join(ROOT, "docs", "img")))


def test_accuracy_vs_latency_plots_deployed_forms_with_published_top1(data):
    models = plots.load_benchmark(str(data))["models"]
    assert {m["spec"].key for m in models} == {"ghostnet_100", "repghostnet_100_deploy"}  # train form, quickstart out
    ghostnet = next(m for m in models if m["spec"].key == "ghostnet_100")
    assert ghostnet["points"] == {"mindspore-graph": 30.0, "onnxruntime": 6.0, "torch-eager": 18.0,
                                  "mindcv-graph": 100.0}
    footer = plots.load_benchmark(str(data))["footer"]
    assert "benchmark.json" in footer and "2026-12-02T15:10:00" in footer and "abc1234" in footer


def test_int8_accuracy_reads_each_variant_and_what_model_they_are(data):
    quant = plots.load_quant(str(data))
    assert [(a["variant"], a["top1"], a["count"]) for a in quant["accuracy"]] == \
        [("float", 0.8619, 9000), ("ptq_int8", 0.8571, 9000), ("qat_int8", 0.857, 9000)]
    assert quant["about"] == "GhostNetV3 0.5x on held-out images"
    assert {g["model"] for g in quant["groups"]} == {"ghostnet_100", "repghostnet_100_deploy"}
    assert quant["groups"][0]["times"][1] == {"fp32": 6.0, "int8": 4.4, "stock_int8": 5.1, "ms_fp32": 7.7,
                                              "ms_int8": 160.0}  # int8 before padding is not drawn


def test_every_plotted_model_has_its_published_top1():
    published = {"ghostnet_100": 73.9, "repghostnet_100": 74.2, "ghostnetv2_100": 75.3, "ghostnetv3_100": 77.1}
    for spec in MODELS.values():
        if spec.key == "quickstart":
            assert spec.published_top1 is None
        else:
            assert spec.published_top1 == published[spec.name], spec.key


def test_missing_matplotlib_is_one_line_and_writes_nothing(data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(extras, "available", lambda name: name != "matplotlib")
    out = tmp_path / "img"
    assert plots.main(["--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "pip install 'matplotlib" in err
    assert not out.exists()


@pytest.mark.parametrize("name, content, expected", [
    ("benchmark.json", "{not json", "benchmark.json is not a readable JSON file"),
    ("benchmark.json", json.dumps({"rows": [{"model": "ghostnet_100"}]}), "benchmark.json is not a benchmark.json"),
    ("quant_latency.json", json.dumps({"results": [{"model": "x", "threads": 1}], "sizes_mb": {}}),
     "quant_latency.json is not a --json file"),
    ("int8_accuracy/float.json", json.dumps({"top1": "high"}), "float.json is not an eval_metrics.json"),
    ("training/v3_s0.jsonl", '{"epoch": 1, "train_loss": 1.0}\n{"epoch": 2,', "v3_s0.jsonl line 2 is not JSON"),
    ("training/v3_s0.jsonl", '{"epoch": 1}\n', "v3_s0.jsonl line 1 is not a metrics record"),
])
def test_malformed_data_is_one_line_naming_the_file_and_writes_nothing(matplotlib, data, tmp_path, capsys, name,
                                                                       content, expected):
    (data / name).write_text(content, encoding="utf-8")
    out = tmp_path / "img"
    assert plots.main(["--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and expected in err, err
    assert not out.exists()


def test_a_missing_data_file_is_named(matplotlib, data, tmp_path, capsys):
    os.remove(data / "quant_latency.json")
    assert plots.main(["--data", str(data), "--out", str(tmp_path / "img")]) == 2
    err = capsys.readouterr().err
    assert "quant_latency.json is missing" in err and "benchmarks.quant_latency --json" in err
    assert not (tmp_path / "img").exists()
    assert plots.main(["--data", str(data), "--out", str(tmp_path / "img"), "--only", "training_curves"]) == 0
    assert os.listdir(tmp_path / "img") == ["training_curves.png"]


def curve_records(epochs=6):
    return [{"epoch": e, "train_loss": 2.0 / e, "val_top1": 0.5 + 0.05 * e} for e in range(1, epochs + 1)]


def test_training_curves_png_has_labelled_axes_and_ticks(tmp_path):
    """plot_curves (train.py's curves.png, OpenCV) writes tick values and axis names in the margins left of and
    below each plot box; without records the margins stay blank but the axis names are still there."""
    path = plot_curves(curve_records(), str(tmp_path / "curves.png"))
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    empty = cv2.imread(plot_curves([], str(tmp_path / "empty.png")), cv2.IMREAD_GRAYSCALE)
    height, width = image.shape
    assert not np.array_equal(image, empty)
    panel = width // 2
    for x0 in (0, panel):
        left = image[:height - PLOT_BOTTOM, x0:x0 + PLOT_LEFT - 4]
        below = image[height - PLOT_BOTTOM + 4:, x0 + PLOT_LEFT:x0 + panel - 20]
        ink_rows = np.flatnonzero((left < 160).any(axis=1))
        # several tick values at different heights, not a single label
        assert len(ink_rows) and np.ptp(ink_rows) > (height - PLOT_BOTTOM) // 2
        ink_cols = np.flatnonzero((below < 160).any(axis=0))
        assert len(ink_cols) and np.ptp(ink_cols) > (panel - PLOT_LEFT) // 2  # epoch ticks across the axis
        # the blank figure keeps only the axis names: less ink in the margins
        assert (left < 160).sum() > (empty[:height - PLOT_BOTTOM, x0:x0 + PLOT_LEFT - 4] < 160).sum()
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
