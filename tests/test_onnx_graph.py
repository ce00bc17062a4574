"""src/deploy/onnx_graph.py: the passes keep the outputs and leave onnxruntime a graph it can keep in its blocked
(NCHWc) layout."""
import collections
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from deploy_helpers import SIZE, checkpoint, run
from src.deploy import onnx_graph

ort = pytest.importorskip("onnxruntime")


def _const(name, array):
    return numpy_helper.from_array(np.asarray(array, np.float32), name)


def ghost_like_model():
    """A small graph with every pattern the passes handle: Conv+BN, a Ghost concat, a channel slice, a residual
    Add, squeeze-excite with ReduceMean and the Add/Clip/Div hard sigmoid, a 4-D graph output of 8 channels
    (padded inside, so it must come out restored) and a Flatten/Gemm head."""
    rng = np.random.default_rng(0)
    w = lambda *shape: rng.normal(0, 0.5, shape)  # noqa: E731
    inits = [
        _const("stem_w", w(8, 3, 3, 3)), _const("bn_g", rng.uniform(0.5, 1, 8)), _const("bn_b", w(8)),
        _const("bn_m", w(8)), _const("bn_v", rng.uniform(1, 2, 8)),
        _const("prim_w", w(5, 8, 1, 1)), _const("cheap_w", w(5, 1, 3, 3)), _const("cheap_b", w(5)),
        _const("se_r_w", w(4, 8, 1, 1)), _const("se_r_b", w(4)), _const("se_e_w", w(8, 4, 1, 1)),
        _const("se_e_b", w(8)), _const("three", 3.0), _const("zero", 0.0), _const("six", 6.0),
        _const("fc_w", w(10, 8)), _const("fc_b", w(10)),
        numpy_helper.from_array(np.array([0], np.int64), "s0"), numpy_helper.from_array(np.array([8], np.int64), "s8"),
        numpy_helper.from_array(np.array([1], np.int64), "ax1"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "stem_w"], ["c0"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c0", "bn_g", "bn_b", "bn_m", "bn_v"], ["b0"], epsilon=1e-5),
        helper.make_node("Relu", ["b0"], ["s"]),
        helper.make_node("Conv", ["s", "prim_w"], ["p0"]),
        helper.make_node("Relu", ["p0"], ["p"]),
        helper.make_node("Conv", ["p", "cheap_w", "cheap_b"], ["q0"], group=5, pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["q0"], ["q"]),
        helper.make_node("Concat", ["p", "q"], ["g10"], axis=1),
        helper.make_node("Slice", ["g10", "s0", "s8", "ax1"], ["g"]),
        helper.make_node("ReduceMean", ["g"], ["se0"], axes=[2, 3], keepdims=1),
        helper.make_node("Conv", ["se0", "se_r_w", "se_r_b"], ["se1"]),
        helper.make_node("Relu", ["se1"], ["se2"]),
        helper.make_node("Conv", ["se2", "se_e_w", "se_e_b"], ["se3"]),
        helper.make_node("Add", ["se3", "three"], ["se4"]),
        helper.make_node("Clip", ["se4", "zero", "six"], ["se5"]),
        helper.make_node("Div", ["se5", "six"], ["gate"]),
        helper.make_node("Mul", ["g", "gate"], ["gs"]),
        helper.make_node("Add", ["gs", "s"], ["feat"]),
        helper.make_node("ReduceMean", ["feat"], ["pool"], axes=[2, 3], keepdims=1),
        helper.make_node("Flatten", ["pool"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(nodes, "ghost_like", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 16, 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [2, 10]),
                               helper.make_tensor_value_info("feat", TensorProto.FLOAT, [2, 8, 8, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])


def run_onnx(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def op_counts(model):
    return collections.Counter(n.op_type for n in model.graph.node)


def conv_weights(model):
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return [(inits[n.input[1]], n) for n in model.graph.node if n.op_type == "Conv"]


def test_passes_keep_outputs_and_align_every_conv():
    model = ghost_like_model()
    x = np.random.default_rng(1).normal(size=(2, 3, 16, 16)).astype(np.float32)
    before = run_onnx(model, x)
    report = onnx_graph.optimize(model)
    assert report == {"batch_norms_folded": 1, "hard_sigmoids_fused": 1, "global_pools": 2, "tensors_aligned": 16}
    after = run_onnx(model, x)
    for a, b in zip(before, after):
        assert a.shape == b.shape and np.abs(a - b).max() <= 1e-5 * max(1.0, np.abs(a).max())
    ops = op_counts(model)
    assert ops["BatchNormalization"] == ops["ReduceMean"] == ops["Clip"] == ops["Div"] == ops["Slice"] == 0
    assert ops["HardSigmoid"] == 1 and ops["GlobalAveragePool"] == 2
    # only the pooled features before Flatten and the 4-D graph output go back to their original 8 channels
    assert ops["Gather"] == 2
    for weight, node in conv_weights(model):
        assert weight.shape[0] % 16 == 0, node.output
        group = onnx_graph.attribute(node, "group", 1)
        assert group == 1 and (weight.shape[1] % 16 == 0 or weight.shape[1] == 3) or group == weight.shape[0]


def test_align_channels_leaves_aligned_graphs_alone():
    model = ghost_like_model()
    onnx_graph.optimize(model)
    assert onnx_graph.align_channels(model) == 0 and op_counts(model)["Gather"] == 2


def nchwc_reorders(path, tmp_path):
    """Layout reorders onnxruntime puts into the graph (its optimized model, all levels)."""
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / ("opt_" + os.path.basename(path)))
    ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    ops = op_counts(onnx.load(options.optimized_model_filepath))
    return ops["ReorderInput"] + ops["ReorderOutput"]


@pytest.mark.slow
def test_exported_ghostnet_keeps_onnxruntime_in_blocked_layout(tmp_path):
    """MindSpore's own ONNX of GhostNet 0.5x vs the same file after the passes: the same logits, and most of
    onnxruntime's NCHWc layout reorders (one each side of every unaligned Ghost concat) are gone."""
    base = str(tmp_path)
    raw = str(tmp_path / "raw")
    proc = run("export.py", "--model", "ghostnet_050", "--ckpt_file", checkpoint(base, "ghostnet_050"),
               "--num_classes", "10", "--image_size", str(SIZE), "--mode", "PYNATIVE", "--file_format", "ONNX",
               "--file_name", raw, "--optimize_graph", "false")
    assert proc.returncode == 0, proc.stderr[-2000:]
    model = onnx.load(raw + ".onnx")
    onnx_graph.optimize(model)
    optimized = str(tmp_path / "optimized.onnx")
    onnx.save(model, optimized)
    x = np.random.default_rng(2).normal(size=(1, 3, SIZE, SIZE)).astype(np.float32)
    a, b = run_onnx(onnx.load(raw + ".onnx"), x)[0], run_onnx(model, x)[0]
    assert np.abs(a - b).max() <= 1e-4 * max(1.0, np.abs(a).max())
    assert op_counts(model)["Gather"] == 0
    reorders_raw, reorders = nchwc_reorders(raw + ".onnx", tmp_path), nchwc_reorders(optimized, tmp_path)
    if reorders_raw == 0:
        pytest.skip("onnxruntime uses no NCHWc layout on this CPU")
    assert reorders <= reorders_raw / 3, (reorders_raw, reorders)
