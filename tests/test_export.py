"""export.py: MINDIR / ONNX / MindSpore Lite round-trips match the Cell; bad requests fail cleanly."""
import os
import re

import mindspore as ms
import numpy as np
import pytest

from deploy_helpers import NUM_CLASSES, SIZE, SMALL, checkpoint, exported, lite_side_env, reference_cell, run
from src.deploy.runtimes import MindirRunner, OnnxRunner, onnxruntime_available
from src.record import read_sidecar


@pytest.fixture(scope="session")
def base(tmp_path_factory):
    return str(tmp_path_factory.getbasetemp() / "deploy")


@pytest.fixture(scope="session", autouse=True)
def _make_base(base):
    os.makedirs(base, exist_ok=True)


def reported_diff(stdout):
    return float(re.search(r"max abs diff vs Cell (\S+)", stdout).group(1))


def cell_logits(net, x):
    return net(ms.Tensor(x)).asnumpy()


def batch(n, seed=3):
    return np.random.default_rng(seed).normal(size=(n, 3, SIZE, SIZE)).astype(np.float32)


@pytest.mark.parametrize("name,fmt,dynamic", [
    ("ghostnet_050", "MINDIR", False), ("repghostnet_050", "MINDIR", True),
    ("ghostnet_050", "ONNX", False), ("repghostnet_050", "ONNX", False),
    ("ghostnet_050_nose", "MINDIR", True), ("ghostnet_600m", "ONNX", False), ("ghost_resnet56_cifar", "ONNX", False)])
def test_round_trip_matches_cell(base, name, fmt, dynamic):
    """The exported file, run here independently, equals the train-form Cell (RepGhost re-parameterized)."""
    if fmt == "ONNX" and not onnxruntime_available():
        pytest.skip("onnxruntime not installed")
    path, stdout = exported(base, name, fmt, dynamic)
    assert reported_diff(stdout) <= 1e-4
    assert ("re-parameterized" in stdout) == name.startswith("repghostnet")
    assert f"wrote {path}" in stdout
    record = read_sidecar(path)
    assert (record["model"], record["num_classes"], record["image_size"], record["batch_size"]) == \
        (name, NUM_CLASSES, SIZE, None if dynamic else 1)
    assert record["form"] == ("deploy" if name.startswith("repghostnet") else "train")
    runner = (MindirRunner if fmt == "MINDIR" else OnnxRunner)(path)
    assert runner.record == record and runner.num_classes == NUM_CLASSES
    assert runner.input_shape == [-1 if dynamic else 1, 3, SIZE, SIZE]
    net = reference_cell(name, checkpoint(base, name))
    x = batch(2 if dynamic else 1)
    assert np.abs(runner(x) - cell_logits(net, x)).max() <= 1e-4
    if dynamic:
        assert "at batch 1 and 3" in stdout


@pytest.mark.parametrize("name", ["repghostnet_050", "ghostnet_600m"])
def test_lite_round_trip_matches_cell(base, name):
    """ONNX -> .ms through the Python 3.7 Lite side env; Lite inference equals the Cell (<= 1e-3). GhostNet-600M
    checks its hard-swish (written with ReLU6: MindSpore cannot export HSwish to ONNX)."""
    from src.deploy import lite

    python, reason = lite_side_env()
    if python is None:
        pytest.skip(f"MindSpore Lite side env cannot be created: {reason}")
    path, stdout = exported(base, name, "MINDIR_LITE")
    assert reported_diff(stdout) <= 1e-3 and ("re-parameterized" in stdout) == name.startswith("repghostnet")
    net = reference_cell(name, checkpoint(base, name))
    x = batch(3)
    assert np.abs(lite.predict(path, x) - cell_logits(net, x)).max() <= 1e-3


def no_output_left(folder, stem):
    """Neither the file, its record, nor a temporary directory of the atomic writer."""
    return not [n for n in os.listdir(folder) if stem in n or n.startswith(".")]


def test_air_on_cpu_is_a_one_line_error(tmp_path):
    proc = run("export.py", "--model", "ghostnet_050", "--file_format", "AIR", "--file_name", str(tmp_path / "m"))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Ascend" in lines[0] and "MINDIR or ONNX" in lines[0]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("model,num_classes", [("ghostnet_050", NUM_CLASSES), ("repghostnet_050", 37)])
def test_mismatched_checkpoint_fails_without_output(base, tmp_path, model, num_classes):
    """A repghostnet_050 checkpoint exported as ghostnet_050, or with another class count."""
    proc = run("export.py", "--model", model, "--num_classes", str(num_classes), "--image_size", str(SIZE),
               "--ckpt_file", checkpoint(base, "repghostnet_050"), "--file_name", str(tmp_path / "m"))
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "does not match" in errors[0] and f"--model {model}" in errors[0]
    assert "train-form vs deploy-form" not in errors[0]  # that hint is only for a RepGhost net in the other form
    assert no_output_left(tmp_path, "m")


def test_failed_verification_leaves_no_file(base, tmp_path):
    proc = run("export.py", "--model", "ghostnet_050", "--ckpt_file", checkpoint(base, "ghostnet_050"),
               "--file_name", str(tmp_path / "m"), "--verify_tolerance", "-1", *SMALL)
    assert proc.returncode != 0
    assert "verify_tolerance" in proc.stderr.strip().splitlines()[-1]
    assert no_output_left(tmp_path, "m")
