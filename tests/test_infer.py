"""infer.py: the same weights give the same top-5 on real photos through ckpt, MINDIR, ONNX and Lite .ms."""
import os
import re

import numpy as np
import pytest

from deploy_helpers import SMALL, checkpoint, exported, foolbox_photo_list, lite_side_env, run
from src.deploy import DeployError
from src.deploy.infer import list_images, predict
from src.deploy.labels import PETS_BREEDS, class_names

NAME = "repghostnet_050"


@pytest.fixture(scope="module")
def photo_list(tmp_path_factory):
    return foolbox_photo_list(str(tmp_path_factory.mktemp("photos")))[1]


def parse_top(stdout):
    """{image path: [class indices, best first]} from infer.py output."""
    result, current = {}, None
    for line in stdout.splitlines():
        match = re.match(r"\s+\d+\. class\s+(\d+)", line)
        if match:
            result[current].append(int(match.group(1)))
        elif line and not line.startswith("note:"):
            current = line
            result[current] = []
    return result


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
    with pytest.raises(FileNotFoundError):
        list_images(str(tmp_path / "bad.txt"))
    with pytest.raises(DeployError):
        list_images("")


def test_predict_pads_to_a_fixed_batch():
    class Fixed:
        input_shape = [4, 3, 8, 8]

        def __call__(self, x):
            assert x.shape[0] == 4
            return x.reshape(4, -1)[:, :2]

    x = np.arange(6 * 3 * 8 * 8, dtype=np.float32).reshape(6, 3, 8, 8)
    np.testing.assert_array_equal(predict(Fixed(), x), x.reshape(6, -1)[:, :2])


def test_class_names(tmp_path):
    assert class_names("", 37) == PETS_BREEDS and class_names("", 10) is None
    imagenet = class_names("", 1000)
    assert len(imagenet) == 1000 and imagenet[0] == "tench, Tinca tinca" and imagenet[243] == "bull mastiff"
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    assert class_names(str(tmp_path / "labels.txt"), 2) == ["cat", "dog"]
    with pytest.raises(DeployError):
        class_names(str(tmp_path / "labels.txt"), 3)
