"""infer.py: the same weights give the same top-5 on real photos through ckpt, MINDIR, ONNX and Lite .ms."""
import os
import re

import numpy as np
import pytest

from deploy_helpers import (NUM_CLASSES, SMALL, checkpoint, exported, foolbox_photo_list, lite_side_env,
                            recorded_checkpoint, run)
from helpers import make_imagenet_subset, ok, refused, run_main
from src.deploy import DeployError
from src.deploy.infer import list_images, predict
from src.deploy.labels import class_names
from src.deploy.runtimes import Runner
from src.record import read_sidecar

NAMES = [f"kind_{c}" for c in "abcdefghij"]

NAME = "repghostnet_050"


@pytest.fixture(scope="module")
def photo_list(tmp_path_factory):
    return foolbox_photo_list(str(tmp_path_factory.mktemp("photos")))[1]


def parse_top(stdout, names=False):
    """{image path: [class indices (or (index, name)), best first]} from infer.py output."""
    result, current = {}, None
    for line in stdout.splitlines():
        match = re.match(r"\s+\d+\. class\s+(\d+)  p=\S+(?:  (.*))?$", line)
        if match:
            result[current].append((int(match.group(1)), match.group(2)) if names else int(match.group(1)))
        elif line and not line.startswith("note:"):
            current = line
            result[current] = []
    return result


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = str(tmp_path_factory.getbasetemp() / "deploy")
    os.makedirs(path, exist_ok=True)
    return path


@pytest.mark.slow
def test_top5_identical_across_runtimes(tmp_path_factory, photo_list):
    """The .ms run also proves that Lite inference works with MindSpore unimportable."""
    base = str(tmp_path_factory.getbasetemp() / "deploy")
    os.makedirs(base, exist_ok=True)
    models = [checkpoint(base, NAME), exported(base, NAME, "MINDIR", dynamic=True)[0],
              exported(base, NAME, "ONNX")[0]]
    python, reason = lite_side_env()
    if python is not None:
        models.append(exported(base, NAME, "MINDIR_LITE")[0])
    tops = {}
    for model in models:
        proc = run("infer.py", "--model", NAME, "--model_file", model, "--input", photo_list, *SMALL,
                   without_mindspore=model.endswith(".ms"))
        assert proc.returncode == 0, proc.stderr[-2000:]
        tops[os.path.splitext(model)[1]] = parse_top(proc.stdout)
    reference = tops[".ckpt"]
    assert len(reference) == 20 and all(len(v) == 5 for v in reference.values())
    for ext, top in tops.items():
        assert top == reference, ext
    if python is None:
        pytest.skip(f".ms not compared: {reason}")


def test_list_images(tmp_path):
    for name in ("b.jpg", "a.PNG", "notes.md"):
        (tmp_path / name).write_bytes(b"")
    assert list_images(str(tmp_path)) == [str(tmp_path / "a.PNG"), str(tmp_path / "b.jpg")]
    assert list_images(str(tmp_path / "b.jpg")) == [str(tmp_path / "b.jpg")]
    (tmp_path / "list.txt").write_text("# comment\nb.jpg\n\na.PNG\n")
    assert list_images(str(tmp_path / "list.txt")) == [str(tmp_path / "b.jpg"), str(tmp_path / "a.PNG")]
    (tmp_path / "bad.txt").write_text("missing.jpg\n")
    with pytest.raises(DeployError, match="1 listed image"):
        list_images(str(tmp_path / "bad.txt"))
    with pytest.raises(DeployError):
        list_images("")


def test_predict_pads_to_a_fixed_batch():
    class Fixed(Runner):
        input_shape = [4, 3, 8, 8]

        def __call__(self, x):
            assert x.shape[0] == 4
            return x.reshape(4, -1)[:, :2]

    x = np.arange(6 * 3 * 8 * 8, dtype=np.float32).reshape(6, 3, 8, 8)
    np.testing.assert_array_equal(predict(Fixed(), x), x.reshape(6, -1)[:, :2])


def test_class_names(tmp_path):
    assert class_names("", 2, ["cat", "dog"]) == ["cat", "dog"]
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    assert class_names(str(tmp_path / "labels.txt"), 2) == ["cat", "dog"]
    with pytest.raises(DeployError):
        class_names(str(tmp_path / "labels.txt"), 3)


def test_class_names_are_never_guessed_from_the_class_count():
    """A user's own 37- or 1000-class model without names in its record is not labelled Pets / ImageNet."""
    assert class_names("", 37) is None and class_names("", 1000) is None and class_names("", 10) is None
    assert class_names("", 37, ["a", "b"]) is None


@pytest.mark.slow
def test_files_that_carry_their_record_need_no_flags(base, photo_list):
    """A training checkpoint and the ONNX exported from it are used with nothing but the file: model, class count,
    input size, crop (0.75, not the default 0.875) and class names come from the record, and give exactly the
    predictions the explicit flags give."""
    ckpt = recorded_checkpoint(base, NAME, NAMES)
    onnx_file, _ = exported(base, NAME, "ONNX", class_names=NAMES)
    record = read_sidecar(onnx_file)
    assert (record["model"], record["form"], record["num_classes"], record["image_size"], record["crop_pct"]) == \
        (NAME, "deploy", NUM_CLASSES, 32, 0.75) and record["class_names"] == NAMES
    explicit = parse_top(ok(run("infer.py", "--model", NAME, "--model_file", ckpt, "--input", photo_list, *SMALL,
                                "--crop_pct", "0.75")))
    from_ckpt = parse_top(ok(run("infer.py", "--model_file", ckpt, "--input", photo_list, "--mode", "PYNATIVE")),
                          names=True)
    from_onnx = parse_top(ok(run("infer.py", "--model_file", onnx_file, "--input", photo_list)), names=True)
    assert from_ckpt == from_onnx and len(from_ckpt) == 20
    assert {p: [i for i, _ in v] for p, v in from_ckpt.items()} == explicit
    assert all(name == NAMES[i] for v in from_ckpt.values() for i, name in v)


@pytest.mark.parametrize("flag,value,message", [
    ("--num_classes", "37", "--num_classes 37 contradicts"), ("--image_size", "64", "--image_size 64 contradicts"),
    ("--model", "ghostnet_050", "--model ghostnet_050 contradicts")])
def test_flags_that_contradict_the_file_are_refused(base, photo_list, flag, value, message, capsys):
    onnx_file, _ = exported(base, NAME, "ONNX", class_names=NAMES)
    proc = run_main(capsys, "infer.py", "--model_file", onnx_file, "--input", photo_list, flag, value)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {message}") and "drop " + flag in proc.stderr


def test_bad_image_files_are_named(base, tmp_path, photo_list, capsys, caplog):
    """One bad file given alone is an error naming it; inside a folder it is skipped with a warning (a logging
    warning: on stderr when infer.py runs as a script)."""
    onnx_file, _ = exported(base, NAME, "ONNX", class_names=NAMES)
    good = open(photo_list, encoding="utf-8").read().splitlines()[1]
    data = open(good, "rb").read()
    (tmp_path / "cut.jpg").write_bytes(data[:300])
    (tmp_path / "notes.jpg").write_bytes(b"just text")
    (tmp_path / "photo.jpg").write_bytes(data)
    for name, why in (("cut.jpg", "its data ends early (truncated file)"), ("notes.jpg", "not a decodable image")):
        proc = run_main(capsys, "infer.py", "--model_file", onnx_file, "--input", tmp_path / name)
        assert proc.returncode == 2 and proc.stderr.startswith(f"error: {tmp_path / name}: {why}"), proc.stderr
    caplog.clear()
    proc = run_main(capsys, "infer.py", "--model_file", onnx_file, "--input", tmp_path)
    assert proc.returncode == 0 and list(parse_top(proc.stdout)) == [str(tmp_path / "photo.jpg")]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(f"skipped {tmp_path / 'cut.jpg'}: its data ends early" in w for w in warnings), warnings
    assert any(f"skipped {tmp_path / 'notes.jpg'}: not a decodable image" in w for w in warnings), warnings


def test_eval_refuses_a_model_for_other_classes_or_sizes(base, tmp_path, capsys):
    """A 10-class exported model scored against a 4-class dataset, or fed another input size: refused. The first
    refusal runs eval.py as a script (one ``error:`` line, exit code 2, end to end), the others in this process."""
    four = make_imagenet_subset(str(tmp_path), classes=4, n_train=1, n_val=2)
    onnx_file, _ = exported(base, NAME, "ONNX", class_names=NAMES)
    proc = run("eval.py", "--ckpt_file", onnx_file, "--data_path", four, "--output_dir", str(tmp_path / "e"))
    refused(proc, "the dataset has 4 classes but the model has 10")
    proc = run_main(capsys, "eval.py", "--ckpt_file", onnx_file, "--data_path", four, "--image_size", "64")
    assert proc.returncode == 2 and "--image_size 64 contradicts" in proc.stderr
    ten = make_imagenet_subset(str(tmp_path / "ten"), classes=10, n_train=1, n_val=1)
    proc = run_main(capsys, "eval.py", "--ckpt_file", onnx_file, "--data_path", ten, "--output_dir", tmp_path / "e")
    assert proc.returncode == 2 and "the dataset's class 0 is 'ankle_boot' but the model's is 'kind_a'" in proc.stderr
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("content,message", [(b"", "is corrupt or not a MindSpore checkpoint"),
                                             (b"not a checkpoint at all" * 50, "is corrupt or not a MindSpore")])
def test_a_corrupt_checkpoint_is_called_corrupt(tmp_path, content, message, photo_list, capsys):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content)
    proc = run_main(capsys, "infer.py", "--model_file", bad, "--input", photo_list, *SMALL, "--model", NAME)
    assert proc.returncode == 2 and message in proc.stderr and "another architecture" not in proc.stderr


def test_a_truncated_checkpoint_is_called_corrupt(base, tmp_path, photo_list):
    """infer.py run as a script: one ``error:`` line on stderr, exit code 2, no traceback."""
    data = open(checkpoint(base, NAME), "rb").read()
    (tmp_path / "cut.ckpt").write_bytes(data[:len(data) // 2])
    proc = run("infer.py", "--model_file", str(tmp_path / "cut.ckpt"), "--input", photo_list, *SMALL,
               "--model", NAME)
    refused(proc, "is corrupt or not a MindSpore checkpoint")
