"""Training pipeline end to end on a tiny real-image set: outputs, resume exactness, fine-tuning, evaluation."""
import json
import os

import mindspore as ms
import numpy as np
import pytest

from helpers import make_imagenet_subset, randomize_state, run_entry
from src.models import create_model
from src.config import run_cli
from src.train.trainer import train

# augmentation and dropout off, so an interrupted + resumed run must equal an uninterrupted one
EXACT = ["--config", "configs/quickstart.yaml", "--num_classes", "4", "--batch_size", "16", "--random_crop", "false",
         "--dropout", "0.0", "--ema", "true", "--ema_decay", "0.9", "--lr", "0.05", "--warmup_lr", "0.01",
         "--log_interval", "1", "--num_workers", "1"]


def ok(proc):
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_imagenet_subset(str(tmp_path_factory.mktemp("data")), classes=4, n_train=16, n_val=8)


@pytest.fixture(scope="module")
def full_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    ok(run_entry("train.py", *EXACT, "--data_path", data, "--epochs", 3, "--output_dir", out))
    return out


def read_metrics(out):
    with open(os.path.join(out, "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def state(out):
    params = ms.load_checkpoint(os.path.join(out, "last_state.ckpt"))
    return {k: v.asnumpy() for k, v in params.items() if hasattr(v, "asnumpy")}


def test_training_lowers_the_loss_and_writes_every_output(full_run):
    records = read_metrics(full_run)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert all(0.0 <= r["val_top1"] <= 1.0 and "ema_top1" in r for r in records)
    files = set(os.listdir(full_run))
    assert {"best.ckpt", "last_state.ckpt", "config.yaml", "class_names.txt", "metrics.jsonl", "curves.png",
            "train.log", "ghostnet_050-e0003.ckpt", "ghostnet_050-e0003-ema.ckpt"} <= files
    assert "ghostnet_050-e0001.ckpt" not in files  # keep_checkpoints: 1 in the quickstart recipe
    assert not [f for f in files if ".tmp" in f]
    assert os.path.getsize(os.path.join(full_run, "curves.png")) > 5000
    log = open(os.path.join(full_run, "train.log"), encoding="utf-8").read()
    assert "img/s" in log and "ETA" in log and "lr 0.01 " in log


def test_interrupted_then_resumed_run_equals_uninterrupted(data, full_run, tmp_path):
    out = tmp_path / "resumed"
    proc = run_entry("train.py", *EXACT, "--data_path", data, "--epochs", 3, "--output_dir", out,
                     "--stop_after_steps", 6)  # dies in the middle of epoch 2 (4 steps per epoch)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert [r["epoch"] for r in read_metrics(out)] == [1]
    ok(proc := run_entry("train.py", *EXACT, "--data_path", data, "--epochs", 3, "--output_dir", out,
                         "--resume", out / "last_state.ckpt"))
    expected_lr = read_metrics(full_run)[0]["lr"]
    assert "resumed from" in proc.stdout and "at epoch 1 (step 4," in proc.stdout
    assert [r["epoch"] for r in read_metrics(out)] == [1, 2, 3]
    a, b = state(full_run), state(out)
    assert set(a) == set(b) and any(k.startswith("moments.") for k in a) and any(k.startswith("ema.") for k in a)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert read_metrics(out)[0]["lr"] == pytest.approx(expected_lr)


def test_finetune_with_another_number_of_classes(data, full_run, tmp_path):
    three = make_imagenet_subset(str(tmp_path), classes=3, n_train=16, n_val=8)
    proc = ok(run_entry("train.py", *EXACT, "--data_path", three, "--num_classes", 3, "--epochs", 1,
                        "--output_dir", tmp_path / "ft", "--pretrained", full_run / "best.ckpt"))
    assert "classifier re-initialised (checkpoint classifier.weight (4, 1280) vs model (3, 1280)" in proc.stdout
    tuned = ms.load_checkpoint(str(tmp_path / "ft" / "best.ckpt"))
    assert tuned["classifier.weight"].shape == (3, 1280)


def test_eval_of_checkpoint_matches_the_training_log(data, full_run, tmp_path):
    proc = ok(run_entry("eval.py", "--config", "configs/quickstart.yaml", "--num_classes", 4, "--data_path", data,
                        "--ckpt_file", full_run / "ghostnet_050-e0003.ckpt", "--output_dir", tmp_path,
                        "--batch_size", 7))
    result = json.load(open(tmp_path / "eval_metrics.json", encoding="utf-8"))
    assert result["count"] == 32 and result["class_names"][0] == "ankle_boot"
    assert result["top1"] == pytest.approx(read_metrics(full_run)[-1]["val_top1"])
    assert f"top-1 {result['top1']:.4f}" in proc.stdout


@pytest.mark.parametrize("args,message", [
    (["--data_path", "/nonexistent"], "/nonexistent"),
    (["--num_classes", "10"], "the dataset has 4 classes but num_classes=10; pass --num_classes 4"),
    (["--pretrained", "missing.ckpt"], "pretrained checkpoint not found: missing.ckpt"),
    (["--model", "ghostnet_10"], "unknown model 'ghostnet_10'"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--deploy"], "training uses the train form"),
    (["--amp_level", "O4"], "--amp_level must be O0, O1, O2 or O3"),
    (["--device_target", "TPU"], "device_target must be one of CPU, GPU, Ascend"),
])
def test_bad_training_input_is_one_line_error(data, tmp_path, args, message, capsys):
    argv = ["--config", "configs/quickstart.yaml", "--num_classes", "4", "--data_path", data, "--output_dir",
            str(tmp_path), *args]
    try:
        assert run_cli(train, "train", argv) == 2
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_resume_from_a_model_checkpoint_is_refused(data, full_run, tmp_path):
    proc = run_entry("train.py", *EXACT, "--data_path", data, "--epochs", 3, "--output_dir", tmp_path,
                     "--resume", full_run / "best.ckpt")
    assert proc.returncode == 2 and "is a model checkpoint, not a training state" in proc.stderr


def test_eval_of_exported_mindir_agrees_with_the_checkpoint(data, full_run, tmp_path):
    ckpt = full_run / "ghostnet_050-e0003.ckpt"
    ok(run_entry("export.py", "--config", "configs/quickstart.yaml", "--num_classes", 4, "--ckpt_file", ckpt,
                 "--file_name", tmp_path / "net", "--batch_size", 8))
    common = ["--config", "configs/quickstart.yaml", "--num_classes", 4, "--data_path", data, "--batch_size", 8]
    ok(run_entry("eval.py", *common, "--ckpt_file", tmp_path / "net.mindir", "--output_dir", tmp_path / "m"))
    ok(run_entry("eval.py", *common, "--ckpt_file", ckpt, "--output_dir", tmp_path / "c"))
    from_mindir = json.load(open(tmp_path / "m" / "eval_metrics.json", encoding="utf-8"))
    from_ckpt = json.load(open(tmp_path / "c" / "eval_metrics.json", encoding="utf-8"))
    assert from_mindir["count"] == from_ckpt["count"] == 32
    assert from_mindir["top1"] == from_ckpt["top1"] and from_mindir["top5"] == from_ckpt["top5"]


def test_repghost_checkpoint_evaluates_the_same_in_train_and_deploy_form(data, tmp_path):
    ckpt = str(tmp_path / "rg.ckpt")
    ms.save_checkpoint(randomize_state(create_model("repghostnet_050", num_classes=4)), ckpt)
    common = ["--model", "repghostnet_050", "--num_classes", 4, "--data_path", data, "--ckpt_file", ckpt,
              "--image_size", 32, "--mode", "PYNATIVE"]
    train_form = ok(run_entry("eval.py", *common, "--output_dir", tmp_path / "t")).stdout
    deploy_form = ok(run_entry("eval.py", *common, "--deploy", "--output_dir", tmp_path / "d")).stdout
    assert "(train form)" in train_form and "(deploy form)" in deploy_form
    metrics = [json.load(open(tmp_path / d / "eval_metrics.json", encoding="utf-8")) for d in ("t", "d")]
    assert metrics[0]["top1"] == metrics[1]["top1"] and metrics[0]["per_class"] == metrics[1]["per_class"]
