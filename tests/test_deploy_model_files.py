"""What infer.py / eval.py say about an exported model file itself: a corrupt one is named, one without its record
gets its size and classes from the graph and a warning for what is guessed (in-process, tiny graphs)."""
import logging

import cv2
import mindspore as ms
import numpy as np
import onnx
import pytest
from mindspore import nn
from onnx import TensorProto, helper

from src.config import Config, load_config
from src.deploy import DeployError
from src.flows.infer import infer_main
from src.flows.model import open_model
from src.record import make_record, write_sidecar

CLASSES, SIZE = 10, 32


class Tiny(nn.Cell):
    """conv -> global mean -> dense: a 32 px, 10-class classifier graph."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Dense(4, CLASSES)

    def construct(self, x):
        return self.fc(self.conv(x).mean(axis=(2, 3)))


def tiny_onnx(path):
    """A [1, 3, 32, 32] -> [1, 10] ONNX graph built with onnx.helper (no MindSpore ONNX export in-process)."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [3, CLASSES], np.ones(3 * CLASSES, np.float32))
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
         helper.make_node("MatMul", ["f", "w"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CLASSES])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{"mindir": path, "onnx": path} of the tiny model, with no record beside them."""
    base = tmp_path_factory.mktemp("tiny")
    ms.export(Tiny(), ms.Tensor(np.zeros((1, 3, SIZE, SIZE), np.float32)), file_name=str(base / "tiny"),
              file_format="MINDIR")
    return {"mindir": str(base / "tiny.mindir"), "onnx": tiny_onnx(str(base / "tiny.onnx"))}


def infer_cfg(path, *flags):
    return load_config("infer", ["--model_file", path, *flags])


@pytest.mark.parametrize("fmt,ext", [("MINDIR", "mindir"), ("ONNX", "onnx")])
@pytest.mark.parametrize("damage", ["text", "empty", "cut"])
def test_a_corrupt_model_file_is_named(models, tmp_path, fmt, ext, damage):
    data = open(models[ext], "rb").read()
    bad = tmp_path / f"bad.{ext}"
    bad.write_bytes({"text": b"just some text\n" * 20, "empty": b"", "cut": data[:len(data) // 2]}[damage])
    with pytest.raises(DeployError) as info:
        open_model(infer_cfg(str(bad)), str(bad))
    message = str(info.value)
    assert message.startswith(f"{bad} is not a valid {fmt} file (corrupt, cut short or another format")
    assert message.endswith("; re-export it") and "\n" not in message


@pytest.mark.parametrize("ext", ["mindir", "onnx"])
def test_a_file_without_record_takes_size_and_classes_from_its_graph_and_warns(models, ext, caplog):
    cfg = infer_cfg(models[ext], "--crop_pct", "0.75")
    with caplog.at_level(logging.WARNING, logger="ghostnet.deploy"):
        open_model(cfg, models[ext])
    assert (cfg.image_size, cfg.num_classes) == (SIZE, CLASSES)
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: {models[ext]} has no model record ({models[ext]}.json is missing): input size 32 and 10 classes "
        f"are read from the file, but model ghostnet_100, interpolation bilinear, mean {cfg.mean}, std {cfg.std} "
        "are defaults, not necessarily the model's; pass the training values as flags"]


@pytest.mark.parametrize("ext", ["mindir", "onnx"])
@pytest.mark.parametrize("flag,value,held", [("--image_size", "224", "image_size 32"),
                                             ("--num_classes", "1000", "num_classes 10")])
def test_flags_that_contradict_an_unrecorded_file_are_refused(models, ext, flag, value, held):
    with pytest.raises(DeployError, match=f"^{flag} {value} contradicts .*tiny.{ext}, which has {held}; drop {flag}$"):
        open_model(infer_cfg(models[ext], flag, value), models[ext])


def test_a_recorded_file_gives_no_warning(tmp_path, caplog):
    path = tiny_onnx(str(tmp_path / "rec.onnx"))
    write_sidecar(path, make_record(Config(model="ghostnet_050", num_classes=CLASSES, image_size=SIZE, crop_pct=1.0,
                                           interpolation="bicubic", mean=[0.5] * 3, std=[0.25] * 3), "deploy"))
    cfg = infer_cfg(path)
    with caplog.at_level(logging.WARNING, logger="ghostnet.deploy"):
        open_model(cfg, path)
    assert not caplog.records and (cfg.model, cfg.crop_pct, cfg.std) == ("ghostnet_050", 1.0, [0.25] * 3)


@pytest.mark.parametrize("k", ["0", "-2"])
def test_top_k_below_one_is_refused(models, k):
    with pytest.raises(DeployError, match=f"^--top_k must be >= 1 \\(how many classes to print per image\\), got {k}$"):
        infer_main(infer_cfg(models["onnx"], "--top_k", k, "--input", "unused.jpg"))


def test_top_k_above_the_class_count_prints_every_class_with_a_note(models, tmp_path, capsys):
    image = str(tmp_path / "x.png")
    cv2.imwrite(image, np.full((40, 40, 3), 128, np.uint8))
    assert infer_main(infer_cfg(models["onnx"], "--top_k", "12", "--input", image)) == 0
    out = capsys.readouterr().out.splitlines()
    assert "note: --top_k 12 is more than the model's 10 classes: printing all of them" in out
    assert out[-11] == image and len([line for line in out[-10:] if ". class " in line]) == 10
