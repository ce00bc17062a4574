"""The exported ``.ms`` files run in the aarch64 MindSpore Lite 2.0 runtime (natively on aarch64, under qemu-aarch64
on x86) through ``scripts/run_arm_infer.sh`` and give the x86 Lite runtime's answers on real photos.

Input size 128 px, not 224: qemu emulates the ARM kernels ~1.4 s per 224 px GhostNet 1.0x image, and 128 px keeps
the same stride pattern (every downsampling input even, 4x4 last map) at a third of the cost. The runner's start
under qemu (~6 s: loading the Lite libraries) is paid twice per script call; the module used 103 s of CPU here.
"""
import dataclasses
import os
import re
import shutil
import subprocess
from typing import Callable, Optional

import cv2
import mindspore as ms
import numpy as np
import pytest

from deploy_helpers import NUM_CLASSES, ROOT, exported, foolbox_photo_list, lite_side_env, reference_cell, run
from src.config import load_config
from src.deploy.arm import prepare
from src.deploy.infer import preprocess
from src.record import make_record, read_sidecar, write_sidecar

RUN_ARM = os.path.join(ROOT, "scripts", "run_arm_infer.sh")
SETUP_ARM = os.path.join(ROOT, "scripts", "setup_arm_env.sh")
ARM_SIZE = 128
CLASS_NAMES = [f"class name {i}" for i in range(NUM_CLASSES)]  # what the models' sidecar records carry


def fp32_ms(base, model):
    """The float32 ``.ms`` export of ``model`` (export.py re-parameterizes RepGhost nets: the deployed form)."""
    return exported(base, model, "MINDIR_LITE", image_size=ARM_SIZE)[0]


@dataclasses.dataclass
class ArmCase:
    """A model file checked on aarch64 against the x86 Lite runtime: logits within ``logit_rtol`` of the largest
    x86 logit (None: not compared, as for int8) and top-1 agreement on at least ``min_top1`` of the photos."""
    model: str
    form: str  # of the model record: train (GhostNet), deploy (re-parameterized RepGhost), int8
    make: Callable[[str, str], str] = fp32_ms  # (directory holding <model>.ckpt, model) -> .ms path
    logit_rtol: Optional[float] = 1e-4
    min_top1: float = 1.0

    @property
    def label(self):
        return f"{self.model}_{self.form}"


CASES = [
    ArmCase("ghostnet_100", "train"),
    ArmCase("repghostnet_100", "deploy"),
]


def run_arm(*args, env=None):
    return subprocess.run(["bash", RUN_ARM, *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})))


def assert_one_line_error(proc, phrase):
    assert proc.returncode == 2 and proc.stdout == "", (proc.returncode, proc.stdout)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], proc.stderr


def photo_checkpoint(base, model, images):
    """``randomize_state``'s realistic state with the classifier bias lowered by the mean logits over ``images``.

    With random weights alone every photo gets the same top-1 (measured: class 5 for all 20), so top-1 agreement
    would prove nothing; centring the logits on these photos makes the top-1 differ between them.
    """
    path = os.path.join(base, f"{model}.ckpt")
    if not os.path.exists(path):
        net = reference_cell(model)
        mean_logits = net(ms.Tensor(images)).asnumpy().mean(axis=0)
        net.classifier.bias.set_data(ms.Tensor(net.classifier.bias.asnumpy() - mean_logits))
        ms.save_checkpoint(net, path)
    return path


@pytest.fixture(scope="module")
def arm_env():
    """The aarch64 runner is ready (toolchain and qemu, or a native compiler), else skip with the reason."""
    proc = subprocess.run(["bash", SETUP_ARM, "--no_install"], capture_output=True, text=True)
    if proc.returncode == 3:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """The 20 real ImageNet photos: (paths, a .txt list of them, their network input as infer.py makes it)."""
    paths, listing = foolbox_photo_list(str(tmp_path_factory.mktemp("arm_photos")))
    return paths, listing, preprocess(paths, load_config("infer", []), ARM_SIZE)[0]


@pytest.fixture(scope="module")
def arm_model(tmp_path_factory, photos):
    """``arm_model(case)``: the case's .ms file (made once), its sidecar record carrying CLASS_NAMES (written here
    until export.py writes sidecars). Exporting needs the x86 Lite side env."""
    python, reason = lite_side_env()
    if python is None:
        pytest.skip(f"exporting .ms files needs the x86 Lite side env: {reason}")
    base = str(tmp_path_factory.mktemp("arm_models"))

    def make(case):
        photo_checkpoint(base, case.model, photos[2])
        path = case.make(base, case.model)
        record = read_sidecar(path) or make_record(load_config(
            "export", ["--model", case.model, "--num_classes", str(NUM_CLASSES), "--image_size", str(ARM_SIZE)]),
            form=case.form)
        write_sidecar(path, dict(record, class_names=CLASS_NAMES))
        return path
    return make


_arm_runs = {}


def arm_run(case, arm_model, photo_list, tmp_dir):
    """(model path, script result, logits) of ``case`` on the photos in the aarch64 runtime; run once per session."""
    if case.label not in _arm_runs:
        model, logits_file = arm_model(case), os.path.join(tmp_dir, f"{case.label}.f32")
        proc = run_arm("--logits", logits_file, model, photo_list)
        assert proc.returncode == 0, proc.stderr[-2000:]
        _arm_runs[case.label] = model, proc, np.fromfile(logits_file, np.float32).reshape(-1, NUM_CLASSES)
    return _arm_runs[case.label]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_aarch64_logits_match_x86_lite(case, arm_env, arm_model, photos, tmp_path):
    from src.deploy import lite

    model, proc, arm = arm_run(case, arm_model, photos[1], str(tmp_path))
    assert ("under qemu-aarch64" in proc.stderr) != ("natively" in proc.stderr)
    x86 = lite.predict(model, photos[2])
    assert arm.shape == x86.shape == (20, NUM_CLASSES)
    if case.logit_rtol is not None:
        assert np.abs(arm - x86).max() <= case.logit_rtol * np.abs(x86).max()
    assert np.mean(arm.argmax(1) == x86.argmax(1)) >= case.min_top1
    assert len(set(x86.argmax(1))) > 1  # the photos are told apart: agreement is not a constant answer


@pytest.mark.slow
def test_int8_ms_on_aarch64_agrees_with_x86_lite(arm_env, int8_ms, tmp_path):
    """The int8 .ms (PTQ of a trained Fashion-MNIST model, 32 px) on 300 real Fashion-MNIST test images: the aarch64
    runtime's top-1 agrees with the x86 runtime's (their int8 kernels round differently: logits are not equal)."""
    from src.deploy import lite
    from src.quant.calibrate import calibration_images

    images = calibration_images(os.path.join(int8_ms["data"], "val"), 300,
                                load_config("export", ["--config", "configs/quickstart.yaml"]), seed=2)
    raw = tmp_path / "images.f32"
    images.tofile(raw)
    logits_file = tmp_path / "arm.f32"
    proc = run_arm("--top_k", 1, "--logits", logits_file, int8_ms["ms"], raw)
    assert proc.returncode == 0, proc.stderr[-2000:]
    arm = np.fromfile(logits_file, np.float32).reshape(300, 10)
    x86 = lite.predict(int8_ms["ms"], images, chunk=1)  # one image per run, as the runner: x86 int8 logits vary
    # with the batch size (same images at batch 32: 97-98% agreement with aarch64). Both runtimes are deterministic
    # on a fixed model and batch; on 1,000 images the float32 original's .ms agreed on 99.5% (docs/deployment.md
    # "On-device ARM inference")
    assert np.mean(arm.argmax(1) == x86.argmax(1)) >= 0.99  # measured 100% (mean |Δlogit| 0.011, max 0.10)
    assert np.abs(arm - x86).mean() <= 0.02 * np.abs(x86).max()
    assert len(set(x86.argmax(1))) == 10


@pytest.mark.slow
def test_printout_is_infer_py_format(arm_env, arm_model, photos, tmp_path):
    """Same lines as infer.py on the x86 runtime (probabilities to the printed precision); names from the sidecar."""
    model, proc, _ = arm_run(CASES[0], arm_model, photos[1], str(tmp_path))
    labels = tmp_path / "names.txt"
    labels.write_text("\n".join(CLASS_NAMES) + "\n")
    reference = run("infer.py", "--model_file", model, "--input", photos[1], "--labels_file", str(labels))
    assert reference.returncode == 0, reference.stderr[-2000:]

    def lines(stdout):
        kept = [ln for ln in stdout.splitlines() if not ln.startswith("note:")]
        probs = [float(p) for p in re.findall(r"p=(\d\.\d{4})", stdout)]
        return [re.sub(r"p=\d\.\d{4}", "p=", ln) for ln in kept], probs

    (arm_lines, arm_p), (ref_lines, ref_p) = lines(proc.stdout), lines(reference.stdout)
    assert arm_lines == ref_lines and len(arm_lines) == 20 * 6
    assert re.fullmatch(r"  1\. class    \d  p=  class name \d", arm_lines[1])
    np.testing.assert_allclose(arm_p, ref_p, atol=1e-4 + 1e-9)


def test_bad_model_file(tmp_path):
    """Checked before anything is fetched or emulated."""
    assert_one_line_error(run_arm(tmp_path / "missing.ms", "x.jpg"), "model file not found")
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\0")
    assert_one_line_error(run_arm(onnx, "x.jpg"), "is not a MindSpore Lite .ms model")


@pytest.mark.slow
def test_corrupt_model_and_wrong_input_size(arm_env, arm_model, tmp_path):
    corrupt = tmp_path / "corrupt.ms"
    corrupt.write_bytes(b"not a flatbuffer" * 64)
    raw = tmp_path / "images.f32"
    np.zeros((3, 64, 64), np.float32).tofile(raw)
    assert_one_line_error(run_arm(corrupt, raw), "MindSpore Lite cannot load")
    model = arm_model(CASES[0])
    assert_one_line_error(run_arm(model, raw), f"not a whole number of 3x{ARM_SIZE}x{ARM_SIZE} float32 images")


def test_missing_library(arm_env, tmp_path):
    """A Lite package lacking one library: the loader's failure becomes one line naming it."""
    source = os.environ.get("ARM_LITE_DIR") or os.path.join(ROOT, ".cache", "lite-aarch64")
    broken = tmp_path / "lite-aarch64"
    shutil.copytree(source, broken, symlinks=True,
                    copy_function=os.symlink, ignore=shutil.ignore_patterns("libmindspore_core.so"))
    model = tmp_path / "model.ms"
    model.write_bytes(b"\0")
    assert_one_line_error(run_arm(model, "x.jpg", env={"ARM_LITE_DIR": str(broken)}),
                          "aarch64 Lite library libmindspore_core.so not found")


def test_prepare_takes_the_class_count_from_the_model_record(tmp_path, capsys):
    """The host step of the runner needs no --num_classes when the .ms carries a record, and a count that
    contradicts the record is refused; without a record it is a one-line error that names the flag. A refusal
    writes nothing."""
    image = str(tmp_path / "a.png")
    cv2.imwrite(image, np.arange(40 * 40 * 3, dtype=np.uint8).reshape(40, 40, 3))
    model = tmp_path / "m.ms"
    model.write_bytes(b"\0")
    cfg = load_config("export", ["--model", "ghostnet_050", "--num_classes", "3", "--image_size", "32"])
    write_sidecar(str(model), make_record(cfg, class_names=["sock", "shoe", "hat"]))
    out = tmp_path / "in"
    assert prepare.main(["--model", str(model), "--input_shape", "1", "3", "32", "32", "--out_dir", str(out),
                         image]) == 0
    assert (out / "labels.txt").read_text() == "sock\nshoe\nhat\n"
    assert os.path.getsize(out / "images.f32") == 3 * 32 * 32 * 4
    bare = tmp_path / "bare.ms"
    bare.write_bytes(b"\0")
    assert prepare.main(["--model", str(bare), "--input_shape", "1", "3", "32", "32", "--out_dir",
                         str(tmp_path / "in2"), image]) == 2
    assert capsys.readouterr().err == (f"error: {bare} has no record naming its class count; "
                                       "give --num_classes K (K > 0)\n")
    assert not (tmp_path / "in2").exists()
    assert prepare.main(["--model", str(model), "--input_shape", "1", "3", "32", "32", "--num_classes", "5",
                         "--out_dir", str(tmp_path / "in3"), image]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not (tmp_path / "in3").exists()
