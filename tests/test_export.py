"""export.py: MINDIR / ONNX / MindSpore Lite round-trips match the Cell; bad requests fail cleanly."""
import os
import re
import shutil

import mindspore as ms
import numpy as np
import pytest

from deploy_helpers import NUM_CLASSES, SIZE, SMALL, checkpoint, exported, lite_side_env, reference_cell, run
from helpers import run_main
from src import extras
from src.config import load_config
from src.data import ensure_quickstart
from src.deploy import lite
from src.flows.export import check_request
from src.deploy.runtimes import MindirRunner, OnnxRunner, onnxruntime_available
from src.models import create_model
from src.quant import QuantError
from src.quant.calibrate import calibration_images
from src.quant.export import is_quantized_export
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


@pytest.mark.parametrize("name,fmt,dynamic", [("repghostnet_050", "ONNX", False), *[  # one export in the fast tier
    pytest.param(*case, marks=pytest.mark.slow) for case in [
        ("ghostnet_050", "MINDIR", False), ("repghostnet_050", "MINDIR", True), ("ghostnet_050", "ONNX", False),
        ("ghostnet_050_nose", "MINDIR", True), ("ghostnet_600m", "ONNX", False),
        ("ghost_resnet56_cifar", "ONNX", False)]]])
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


@pytest.mark.slow
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


@pytest.mark.parametrize("fmt", ["ONNX", pytest.param("MINDIR", marks=pytest.mark.slow),
                                 pytest.param("MINDIR_LITE", marks=pytest.mark.slow)])
def test_ghostnetv3_exports_in_its_deployed_form(base, fmt):
    """A train-form GhostNetV3 checkpoint is re-parameterized on export (one conv per module) and the file, run in
    its runtime at 64 px, equals the train-form Cell."""
    if fmt == "ONNX" and not onnxruntime_available():
        pytest.skip("onnxruntime not installed")
    python, reason = lite_side_env() if fmt == "MINDIR_LITE" else (True, "")
    if python is None:
        pytest.skip(f"MindSpore Lite side env cannot be created: {reason}")
    path, stdout = exported(base, "ghostnetv3_050", fmt, image_size=64)
    assert "re-parameterized to the deploy form" in stdout and read_sidecar(path)["form"] == "deploy"
    x = np.random.default_rng(4).normal(size=(1, 3, 64, 64)).astype(np.float32)
    want = cell_logits(reference_cell("ghostnetv3_050", checkpoint(base, "ghostnetv3_050")), x)
    got = lite.predict(path, x) if fmt == "MINDIR_LITE" else (MindirRunner if fmt == "MINDIR" else OnnxRunner)(path)(x)
    assert np.abs(got - want).max() <= (1e-3 if fmt == "MINDIR_LITE" else 1e-4) * max(1.0, np.abs(want).max())


def no_output_left(folder, stem):
    """Neither the file, its record, nor a temporary directory of the atomic writer."""
    return not [n for n in os.listdir(folder) if stem in n or n.startswith(".")]


def test_air_on_cpu_is_a_one_line_error(tmp_path):
    """export.py run as a script: one line on stderr, a non-zero exit, nothing written."""
    proc = run("export.py", "--model", "ghostnet_050", "--file_format", "AIR", "--file_name", str(tmp_path / "m"))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Ascend" in lines[0] and "MINDIR or ONNX" in lines[0]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("model,num_classes", [("ghostnet_050", NUM_CLASSES), ("repghostnet_050", 37)])
def test_mismatched_checkpoint_fails_without_output(base, tmp_path, model, num_classes, capsys):
    """A repghostnet_050 checkpoint exported as ghostnet_050, or with another class count."""
    proc = run_main(capsys, "export.py", "--model", model, "--num_classes", num_classes, "--image_size", SIZE,
                    "--ckpt_file", checkpoint(base, "repghostnet_050"), "--file_name", tmp_path / "m")
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "does not match" in errors[0] and f"--model {model}" in errors[0]
    assert "train-form vs deploy-form" not in errors[0]  # that hint is only for a RepGhost net in the other form
    assert no_output_left(tmp_path, "m")


@pytest.mark.slow
def test_failed_verification_leaves_no_file(base, tmp_path, capsys):
    proc = run_main(capsys, "export.py", "--model", "ghostnet_050", "--ckpt_file", checkpoint(base, "ghostnet_050"),
                    "--file_name", tmp_path / "m", "--verify_tolerance", "-1", *SMALL)
    assert proc.returncode != 0
    assert "verify_tolerance" in proc.stderr.strip().splitlines()[-1]
    assert no_output_left(tmp_path, "m")


# ---- checks made before any work -----------------------------------------------------------------------------

def export_cfg(*args):
    return load_config("export", ["--config", "configs/quickstart.yaml", "--num_classes", "4", *map(str, args)])


@pytest.mark.parametrize("fmt", ["ONNX", "MINDIR_LITE"])
def test_a_format_whose_optional_package_is_missing_names_the_package(monkeypatch, fmt):
    monkeypatch.setattr(extras, "available", lambda name: name != "onnx")
    monkeypatch.setattr(lite, "require_side_env", lambda: None)
    with pytest.raises(extras.MissingPackage, match=r"needs the optional package onnx: pip install 'onnx>=1\.15'"):
        check_request(export_cfg("--file_format", fmt))
    assert check_request(export_cfg("--file_format", "MINDIR")) == "MINDIR"  # MINDIR needs requirements.txt only


def test_int8_options_for_a_float_export_are_refused_not_ignored(tmp_path):
    net = create_model("ghostnet_050", num_classes=4)
    cfg = export_cfg("--calib_data", tmp_path, "--file_format", "ONNX")
    with pytest.raises(QuantError, match="--calib_data only serve int8 exports.*add --quant ptq"):
        is_quantized_export(cfg, net, "ONNX")
    assert is_quantized_export(export_cfg("--calib_data", tmp_path, "--quant", "ptq"), net, "ONNX")


@pytest.mark.parametrize("value", [1.5, -0.1])
def test_quant_min_agreement_outside_0_1_is_refused_before_any_work(value):
    with pytest.raises(QuantError, match=r"--quant_min_agreement is a fraction .* in \[0, 1\]"):
        check_request(export_cfg("--quant_min_agreement", value))


def test_calibration_skips_images_that_do_not_decode_and_names_them(tmp_path, capsys):
    source = ensure_quickstart(str(tmp_path / "qs"))
    folder = tmp_path / "calib"
    shutil.copytree(os.path.join(source, "val", "bag"), folder)
    (folder / "a_cut.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    count = len(os.listdir(folder))
    images = calibration_images(str(folder), count, export_cfg())
    assert images.shape == (count - 1, 3, 32, 32)
    warning = capsys.readouterr().out
    assert "skipped 1 image file(s)" in warning and "a_cut.png" in warning
