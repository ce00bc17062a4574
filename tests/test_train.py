"""Training pipeline end to end on a tiny real-image set: outputs, records, resume exactness, refusals, evaluation."""
import json
import os
import shutil
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest

from helpers import ROOT, make_imagenet_subset, ok, randomize_state, refused, run_entry, run_main
from src.config import load_config, run_cli
from src.models import create_model
from src.record import CKPT_KEY
from src.flows.train import train

# random augmentation off and the recipes' dropout on: an interrupted + resumed run must equal an uninterrupted one
EXACT = ["--config", "configs/quickstart.yaml", "--num_classes", "4", "--batch_size", "16", "--random_crop", "false",
         "--hflip", "0", "--color_jitter", "0", "--dropout", "0.1", "--ema", "true", "--ema_decay", "0.9",
         "--lr", "0.05", "--warmup_lr", "0.01", "--log_interval", "1", "--num_workers", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_imagenet_subset(str(tmp_path_factory.mktemp("data")), classes=4, n_train=16, n_val=8)


@pytest.fixture(scope="module")
def full_run(data, tmp_path_factory):
    """A 3-epoch run (~40 s): every test that uses it is marked slow."""
    out = tmp_path_factory.mktemp("full") / "run"
    ok(run_entry("train.py", *EXACT, "--data_path", data, "--epochs", 3, "--output_dir", out))
    return out


def read_metrics(out):
    with open(os.path.join(out, "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def state(out):
    params = ms.load_checkpoint(os.path.join(out, "last_state.ckpt"))
    return {k: v.asnumpy() for k, v in params.items() if hasattr(v, "asnumpy")}


@pytest.mark.slow
def test_a_run_writes_every_output_with_its_record(full_run):
    records = read_metrics(full_run)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert all(np.isfinite(r["train_loss"]) and r["overflow_steps"] == 0 for r in records)
    assert all(0.0 <= r["val_top1"] <= 1.0 and "ema_top1" in r for r in records)
    files = set(os.listdir(full_run))
    assert {"best.ckpt", "last_state.ckpt", "config.yaml", "class_names.txt", "metrics.jsonl", "curves.png",
            "train.log", "ghostnet_050-e0003.ckpt", "ghostnet_050-e0003-ema.ckpt"} <= files
    assert "ghostnet_050-e0001.ckpt" not in files  # keep_checkpoints: 1 in the quickstart recipe
    assert not [f for f in files if ".tmp" in f or f.startswith(".")]
    assert os.path.getsize(os.path.join(full_run, "curves.png")) > 5000
    log = open(os.path.join(full_run, "train.log"), encoding="utf-8").read()
    assert "img/s" in log and "ETA" in log and "lr 0.01 " in log
    for name in ("best.ckpt", "ghostnet_050-e0003-ema.ckpt", "last_state.ckpt"):
        record = json.loads(ms.load_checkpoint(str(full_run / name))[CKPT_KEY])
        assert (record["model"], record["num_classes"], record["image_size"], record["form"]) == \
            ("ghostnet_050", 4, 32, "train")
        assert record["class_names"] == ["ankle_boot", "bag", "coat", "dress"] and record["crop_pct"] == 1.0


@pytest.mark.slow
def test_overfitting_one_fixed_batch_lowers_the_loss(tmp_path):
    """What training must do: 16 images in one batch (augmentation and dropout off), the loss falls."""
    tiny = make_imagenet_subset(str(tmp_path), classes=4, n_train=4, n_val=1)
    out = tmp_path / "overfit"
    ok(run_entry("train.py", *EXACT, "--data_path", tiny, "--epochs", 10, "--output_dir", out, "--mode", "PYNATIVE",
                 "--ema", "false", "--eval_interval", 0, "--lr", 0.05, "--warmup_epochs", 0, "--label_smoothing", 0,
                 "--dropout", 0))
    losses = [r["train_loss"] for r in read_metrics(out)]
    assert len(losses) == 10 and losses[-1] < 0.5 * losses[0], losses


@pytest.mark.slow
def test_interrupted_then_resumed_run_equals_uninterrupted(data, full_run, tmp_path):
    out = tmp_path / "resumed"
    proc = run_entry("train.py", *EXACT, "--data_path", data, "--epochs", 3, "--output_dir", out,
                     "--stop_after_steps", 6)  # dies in the middle of epoch 2 (4 steps per epoch)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert [r["epoch"] for r in read_metrics(out)] == [1]
    ok(run_entry("train.py", *EXACT, "--data_path", data, "--epochs", 3, "--output_dir", out,
                 "--resume", out / "last_state.ckpt"))
    expected_lr = read_metrics(full_run)[0]["lr"]
    log = (out / "train.log").read_text()
    assert "resumed from" in log and "at epoch 1 (step 4," in log
    assert [r["epoch"] for r in read_metrics(out)] == [1, 2, 3]  # no epoch twice
    a, b = state(full_run), state(out)
    assert set(a) == set(b) and any(k.startswith("moments.") for k in a) and any(k.startswith("ema.") for k in a)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert read_metrics(out)[0]["lr"] == pytest.approx(expected_lr)


@pytest.mark.slow
def test_finetune_with_another_number_of_classes(data, full_run, tmp_path):
    three = make_imagenet_subset(str(tmp_path), classes=3, n_train=16, n_val=8)
    out = ok(run_entry("train.py", *EXACT, "--data_path", three, "--num_classes", 3, "--epochs", 1,
                       "--output_dir", tmp_path / "ft", "--pretrained", full_run / "best.ckpt"))
    assert "classifier re-initialised (checkpoint classifier.weight (4, 1280) vs model (3, 1280)" in out
    tuned = ms.load_checkpoint(str(tmp_path / "ft" / "best.ckpt"))
    assert tuned["classifier.weight"].shape == (3, 1280)


@pytest.mark.slow
def test_eval_of_checkpoint_matches_the_training_log(data, full_run, tmp_path):
    """No --config, --model or --num_classes: the checkpoint's record says what it is and how to feed it."""
    out = ok(run_entry("eval.py", "--data_path", data, "--ckpt_file", full_run / "ghostnet_050-e0003.ckpt",
                       "--output_dir", tmp_path, "--batch_size", 7, "--mode", "PYNATIVE"))
    result = json.load(open(tmp_path / "eval_metrics.json", encoding="utf-8"))
    assert result["count"] == 32 and result["class_names"][0] == "ankle_boot"
    assert result["top1"] == pytest.approx(read_metrics(full_run)[-1]["val_top1"])
    assert f"top-1 {result['top1']:.4f}" in out


@pytest.mark.parametrize("args,message", [
    (["--data_path", "/nonexistent"], "/nonexistent"),
    (["--num_classes", "10"], "the dataset has 4 classes but num_classes=10; pass --num_classes 4"),
    (["--pretrained", "missing.ckpt"], "pretrained checkpoint not found: missing.ckpt"),
    (["--model", "ghostnet_10"], "unknown model 'ghostnet_10'"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--deploy"], "training uses the train form"),
    (["--amp_level", "O4"], "--amp_level must be O0, O1, O2 or O3"),
    (["--device_target", "TPU"], "device_target must be one of CPU, GPU, Ascend"),
    (["--device_target", "GPU"], "device_target GPU is not available in this MindSpore 2.10.0 build (it runs on "
                                 "CPU); pass --device_target CPU"),
    (["--model", "ghostnetv2_100"], "image_size must be >= 64 for ghostnetv2_100, got 32"),
    (["--data_sink", "true"], "--data_sink needs Ascend or GPU"),
    (["--loss_scale_type", "auto"], "--loss_scale_type must be dynamic or static"),
])
def test_bad_training_input_is_one_line_error_and_writes_nothing(data, tmp_path, args, message, capsys):
    out = tmp_path / "out"
    argv = ["--config", "configs/quickstart.yaml", "--num_classes", "4", "--data_path", data, "--output_dir",
            str(out), *args]
    try:
        assert run_cli(train, "train", argv) == 2
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # validated before any output (no empty train.log)
    assert not [f for f in os.listdir(ROOT) if f.startswith("analyze_fail")]


@pytest.mark.slow
def test_a_used_output_dir_is_refused_without_resume(data, full_run, capsys):
    before = read_metrics(full_run)
    proc = run_main(capsys, "train.py", *EXACT, "--data_path", data, "--epochs", 1, "--output_dir", full_run)
    error = refused(proc, "already holds a run (last_state.ckpt)")
    assert "--resume" in error and "fresh --output_dir" in error
    assert read_metrics(full_run) == before


@pytest.mark.parametrize("where,message", [("file", "exists and is not a directory"),
                                           ("proc", "cannot create directory /proc/ghostnet_out")])
def test_an_unusable_output_dir_is_a_one_line_error(data, tmp_path, where, message, capsys):
    out = tmp_path / "a_file" if where == "file" else "/proc/ghostnet_out"
    if where == "file":
        out.write_text("x")
    refused(run_main(capsys, "train.py", *EXACT, "--data_path", data, "--epochs", 1, "--output_dir", out,
                     "--mode", "PYNATIVE"), message)


def test_a_checkpoint_on_a_full_disk_is_a_one_line_error_and_leaves_nothing(tmp_path):
    """MindSpore writes ``<name>.tmp`` itself and leaves it behind when the disk is full; the private temporary
    directory of the atomic writer catches it (a file-size limit stands in for the full disk)."""
    script = f"""
import resource, signal, sys
sys.path.insert(0, {ROOT!r})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))
from src.models import create_model
from src.models import write_checkpoint
from src.errors import OutputError
try:
    write_checkpoint(create_model("ghostnet_050", num_classes=10), {str(tmp_path / "m.ckpt")!r})
except OutputError as exc:
    print("error:", exc)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert f"error: cannot write {tmp_path / 'm.ckpt'}: File too large" in proc.stdout, proc.stderr[-2000:]
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_resume_keeps_the_saved_best_score(data, full_run, tmp_path):
    """An EMA score that won before the interruption still counts: a worse model never overwrites best.ckpt."""
    out = tmp_path / "run"
    shutil.copytree(full_run, out)
    params = ms.load_checkpoint(str(out / "last_state.ckpt"))
    extra = {k: params.pop(k) for k in (CKPT_KEY, "epoch", "best_top1")}
    assert float(extra["best_top1"].asnumpy()) == max(max(r["val_top1"], r["ema_top1"]) for r in read_metrics(out))
    os.chmod(out / "last_state.ckpt", 0o600)
    ms.save_checkpoint([{"name": k, "data": v} for k, v in params.items()], str(out / "last_state.ckpt"),
                       append_dict={CKPT_KEY: extra[CKPT_KEY], "epoch": 3, "best_top1": 1.0})  # say EMA scored 1.0
    best = (out / "best.ckpt").read_bytes()
    ok(run_entry("train.py", *EXACT, "--data_path", data, "--epochs", 4, "--output_dir", out,
                 "--resume", out / "last_state.ckpt", "--mode", "PYNATIVE"))
    assert "best val top-1 1.0000" in (out / "train.log").read_text()
    assert (out / "best.ckpt").read_bytes() == best
    assert [r["epoch"] for r in read_metrics(out)] == [1, 2, 3, 4] and read_metrics(out)[-1]["best_top1"] == 1.0


@pytest.mark.slow
def test_the_saved_config_reloads_in_every_entry_point(data, full_run, tmp_path):
    """The run used --config configs/quickstart.yaml; its saved config.yaml is a recipe for every entry point."""
    saved = str(full_run / "config.yaml")
    for section in ("train", "eval", "export", "infer"):
        cfg = load_config(section, ["--config", saved])
        assert (cfg.model, cfg.num_classes, cfg.image_size, cfg.crop_pct) == ("ghostnet_050", 4, 32, 1.0)
    assert load_config("train", ["--config", saved]).lr == 0.05
    ok(run_entry("eval.py", "--config", saved, "--data_path", data, "--ckpt_file", full_run / "best.ckpt",
                 "--output_dir", tmp_path, "--mode", "PYNATIVE"))


def test_skipped_files_are_named_in_train_log(data, tmp_path, capsys):
    tree = tmp_path / "tree"
    shutil.copytree(data, tree)
    good = sorted((tree / "train" / "bag").iterdir())[0].read_bytes()
    (tree / "train" / "bag" / "cut.png").write_bytes(good[:len(good) // 2])
    (tree / "train" / "coat" / "notes.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    ok(run_main(capsys, "train.py", *EXACT, "--data_path", tree, "--epochs", 1, "--max_steps_per_epoch", 1,
                "--eval_interval", 0, "--output_dir", out, "--mode", "PYNATIVE"))
    log = (out / "train.log").read_text()
    assert "skipped train/bag/cut.png: its data ends early (truncated file)" in log
    assert "skipped train/coat/notes.jpg: not a decodable image" in log
    assert "skipped 2 of 66 image files" in log


@pytest.mark.slow
def test_resuming_a_finished_run_is_refused_before_anything_is_written(data, full_run, capsys):
    before = {f: os.path.getmtime(full_run / f) for f in os.listdir(full_run)}
    argv = [*EXACT, "--data_path", data, "--epochs", "3", "--output_dir", str(full_run), "--resume",
            str(full_run / "last_state.ckpt")]
    assert run_cli(train, "train", argv) == 2
    assert capsys.readouterr().err == (f"error: --resume {full_run / 'last_state.ckpt'} already finished 3 epochs "
                                       "(--epochs 3); raise --epochs to train further, or start a new run in a "
                                       "fresh --output_dir\n")
    assert {f: os.path.getmtime(full_run / f) for f in os.listdir(full_run)} == before


@pytest.mark.slow
def test_resume_from_a_model_checkpoint_is_refused(data, full_run, tmp_path, capsys):
    proc = run_main(capsys, "train.py", *EXACT, "--data_path", data, "--epochs", 3, "--output_dir", tmp_path,
                    "--resume", full_run / "best.ckpt")
    refused(proc, "is a model checkpoint, not a training state")


@pytest.mark.slow
def test_eval_of_exported_mindir_agrees_with_the_checkpoint(data, full_run, tmp_path):
    ckpt = full_run / "ghostnet_050-e0003.ckpt"
    ok(run_entry("export.py", "--ckpt_file", ckpt, "--file_name", tmp_path / "net", "--batch_size", 8))
    common = ["--data_path", data, "--batch_size", 8]
    ok(run_entry("eval.py", *common, "--ckpt_file", tmp_path / "net.mindir", "--output_dir", tmp_path / "m"))
    ok(run_entry("eval.py", *common, "--ckpt_file", ckpt, "--output_dir", tmp_path / "c"))
    from_mindir = json.load(open(tmp_path / "m" / "eval_metrics.json", encoding="utf-8"))
    from_ckpt = json.load(open(tmp_path / "c" / "eval_metrics.json", encoding="utf-8"))
    assert from_mindir["count"] == from_ckpt["count"] == 32
    assert from_mindir["top1"] == from_ckpt["top1"] and from_mindir["top5"] == from_ckpt["top5"]


@pytest.mark.slow
def test_repghost_checkpoint_evaluates_the_same_in_train_and_deploy_form(data, tmp_path):
    ckpt = str(tmp_path / "rg.ckpt")
    ms.save_checkpoint(randomize_state(create_model("repghostnet_050", num_classes=4)), ckpt)
    common = ["--model", "repghostnet_050", "--num_classes", 4, "--data_path", data, "--ckpt_file", ckpt,
              "--image_size", 32, "--mode", "PYNATIVE"]
    train_form = ok(run_entry("eval.py", *common, "--output_dir", tmp_path / "t"))
    deploy_form = ok(run_entry("eval.py", *common, "--deploy", "--output_dir", tmp_path / "d"))
    assert "(train form)" in train_form and "(deploy form)" in deploy_form
    metrics = [json.load(open(tmp_path / d / "eval_metrics.json", encoding="utf-8")) for d in ("t", "d")]
    assert metrics[0]["top1"] == metrics[1]["top1"] and metrics[0]["per_class"] == metrics[1]["per_class"]
