"""Quantization library: the int8 arithmetic, BN folding, QAT networks and the int8 ONNX graph (in-process)."""
import collections
import os

import mindspore as ms
import numpy as np
import onnx
import pytest
from mindspore import Tensor, nn

from benchmarks.onnx_profile import conv_kinds
from helpers import randomize_state
from src.config import Config, load_config
from src.data import ensure_quickstart
from src.deploy.onnx_graph import optimize_qdq
from src.models import create_model
from src.models.ghostnet import GhostNet
from src.models.layers import batch_norm, conv2d
from src.quant.calibrate import batched, calibrate, calibration_images
from src.quant.fake_quant import (ActQuant, QuantControl, act_qparams, fake_quant, quantize_weight,
                                  requantize_gemmlowp)
from src.quant.fold import QuantConv
from src.quant.onnx_qdq import build_model
from src.quant import QuantError
from src.quant.qat import (QuantScheme, is_qat_network, is_qat_params, legacy_weight_grid_note, load_qat_network,
                           quantize_network, quantizers, scheme_of_params)
from src.quant.training import qat_record

SCHEME = QuantScheme()


def control(delay=0, step=0):
    ctl = QuantControl(SCHEME.vector(), delay)
    ctl.step.set_data(Tensor(float(step), ms.float32))
    return ctl


def quick_cfg(size):
    return Config(image_size=size, crop_pct=1.0, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225],
                  interpolation="bilinear", model="", num_classes=10, dropout=0.0)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    return ensure_quickstart(str(tmp_path_factory.getbasetemp() / "quickstart"))


def real_images(root, split, count, size, seed=0):
    return calibration_images(os.path.join(root, split), count, quick_cfg(size), seed=seed)


# ---- the int8 arithmetic -------------------------------------------------------------------------------------

def test_activation_grid_covers_zero_and_has_an_integer_zero_point():
    scale, zp = act_qparams(Tensor(-1.0, ms.float32), Tensor(3.0, ms.float32))
    assert float(scale.asnumpy()) == pytest.approx(4.0 / 255, rel=1e-6)
    assert float(zp.asnumpy()) == 64.0  # round(63.75)
    for lo, hi, expected_zp in ((1.0, 3.0, 0.0), (-3.0, -1.0, 255.0)):  # the range is widened to contain 0
        _, zp = act_qparams(Tensor(lo, ms.float32), Tensor(hi, ms.float32))
        assert float(zp.asnumpy()) == expected_zp


def test_fake_quant_gives_exactly_the_uint8_grid_values():
    s, zp = np.float32(4.0 / 255), 64.0
    x = np.array([-1.0, 3.0, -5.0, 7.0, 0.0, 0.5 * s, -0.5 * s, 1.5 * s, -1.5 * s, 0.49 * s], np.float32)
    out = fake_quant(Tensor(x), Tensor(s), Tensor(zp, ms.float32), 0, 255).asnumpy()
    steps = np.array([-64, 191, -64, 191, 0, 0, 0, 2, -2, 0], np.float32)  # edges clip to 0/255; .5 to even
    np.testing.assert_array_equal(out, steps * s)


def gemmlowp_requantize(acc, multiplier):
    """gemmlowp's integer requantization (QuantizeMultiplier, SaturatingRoundingDoublingHighMul and
    RoundingDivideByPOT, as in TFLite), in int64: the reference Lite 2.0's int8 kernels matched bit for bit."""
    mantissa, exponent = np.frexp(multiplier)
    m = int(round(mantissa * 2 ** 31))
    if m == 2 ** 31:
        m, exponent = m // 2, exponent + 1
    ab = (acc << max(exponent, 0)) * m
    high = (ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))) // 2 ** 31  # floor division, then towards zero:
    high = np.where((ab < 0) & ((ab + 1 - (1 << 30)) % 2 ** 31 != 0), high + 1, high)
    shift = max(-exponent, 0)
    mask = (1 << shift) - 1
    return (high >> shift) + ((high & mask) > (mask >> 1) + (high < 0))


@pytest.mark.parametrize("multiplier", [0.1565948519, 0.0204164, 1 / 255, 0.5, 0.75, 1.0, 1.5, 3.52, 2.0 ** -20 * 1.3])
def test_lite_requantization_is_gemmlowps_double_rounding(multiplier):
    """The Cell's Lite arithmetic rounds acc * multiplier as gemmlowp does, not to the nearest integer: halves of
    the first rounding go up (towards zero below 0), of the second away from zero, and a value within
    2^-(shift+1) of a half step lands on the far side."""
    rng = np.random.default_rng(0)
    acc = np.concatenate([np.arange(-600, 600), rng.integers(-2 ** 21, 2 ** 21, size=20000)]).astype(np.int64)
    got = requantize_gemmlowp(Tensor(acc.astype(np.float64)), Tensor(np.float64(multiplier))).asnumpy()
    np.testing.assert_array_equal(got, gemmlowp_requantize(acc, multiplier))
    if multiplier == 0.1565948519:  # 0.157 = 0.626 * 2^-2: rounded to quarter steps first
        assert (got != np.rint(acc * multiplier)).mean() > 0.05
    if multiplier == 0.5:  # -1.5 .. 1.5: halves up (towards zero below 0); onnxruntime's: -2 -1 0 0 0 1 2
        assert list(got[600 - 3:600 + 4]) == [-1, -1, 0, 0, 1, 1, 2]


def test_weights_are_symmetric_7_bit_int8_per_output_channel():
    w = np.zeros((3, 2, 1, 1), np.float32)
    w[0, :, 0, 0] = [63 / 64, -31.5 / 64]  # scales 1/64 and 1/32 are exact, so the .5 ties are real
    w[1, :, 0, 0] = [-126 / 64, 63 / 64]
    w[2, :, 0, 0] = [0.0, 0.0]
    values, scale = (t.asnumpy() for t in quantize_weight(Tensor(w), per_channel=True))
    np.testing.assert_array_equal(scale[:2], [1 / 64, 1 / 32])  # max |w| / 63: [-63, 63], no int16 saturation
    np.testing.assert_array_equal(values[:, :, 0, 0], [[63, -32], [-63, 32], [0, 0]])  # -31.5, 31.5: to even
    values, scale = (t.asnumpy() for t in quantize_weight(Tensor(w), per_channel=False))
    assert scale.shape == () and float(scale) == 1 / 32
    np.testing.assert_array_equal(values[:, :, 0, 0], [[32, -16], [-63, 32], [0, 0]])  # 31.5 -> 32, -15.75


def test_straight_through_gradient_is_one_inside_the_range_and_zero_outside():
    q = ActQuant(control(), decay=0.0)
    q.fq_min.set_data(Tensor(-1.0, ms.float32))
    q.fq_max.set_data(Tensor(1.0, ms.float32))
    q.set_train(True)
    x = Tensor(np.array([-3.0, -0.5, 0.2, 0.9, 4.0], np.float32))
    grad = ms.grad(lambda t: (q(t) * Tensor(np.arange(1, 6, dtype=np.float32))).sum())(x).asnumpy()
    # decay 0: the observer takes the batch range [-3, 4] first, so nothing is clipped
    np.testing.assert_allclose(grad, [1, 2, 3, 4, 5])
    q.control.observing.set_data(Tensor(0.0, ms.float32))  # frozen range [-3, 4] stays; a wider input is clipped
    grad = ms.grad(lambda t: q(t).sum())(Tensor(np.array([-9.0, 0.0, 9.0], np.float32))).asnumpy()
    np.testing.assert_allclose(grad, [0, 1, 0])


def test_observer_tracks_the_range_by_ema_only_while_observing():
    q = ActQuant(control(), decay=0.9)
    q.set_train(True)
    q(Tensor(np.array([-2.0, 8.0], np.float32)))
    assert float(q.fq_min.asnumpy()) == pytest.approx(-0.2) and float(q.fq_max.asnumpy()) == pytest.approx(0.8)
    q.control.observing.set_data(Tensor(0.0, ms.float32))
    q(Tensor(np.array([-50.0, 50.0], np.float32)))
    assert float(q.fq_max.asnumpy()) == pytest.approx(0.8)


# ---- BN folding ----------------------------------------------------------------------------------------------

def conv_bn_pair(seed, groups=1):
    ms.set_seed(seed)
    conv, bn = conv2d(8, 8, 3, groups=groups), batch_norm(8)
    rng = np.random.default_rng(seed)
    bn.gamma.set_data(Tensor(rng.uniform(0.5, 1.5, 8).astype(np.float32)))
    bn.beta.set_data(Tensor(rng.normal(0, 0.2, 8).astype(np.float32)))
    bn.moving_mean.set_data(Tensor(rng.normal(0, 0.2, 8).astype(np.float32)))
    bn.moving_variance.set_data(Tensor(rng.uniform(0.5, 2.0, 8).astype(np.float32)))
    return conv, bn


@pytest.mark.parametrize("groups", [1, 8])
def test_folded_conv_equals_conv_then_bn_before_quantization_turns_on(groups):
    x = Tensor(np.random.default_rng(3).normal(size=(4, 8, 6, 6)).astype(np.float32))
    conv, bn = conv_bn_pair(0, groups)
    ref_conv, ref_bn = conv_bn_pair(0, groups)
    folded = QuantConv(conv, bn, "relu", control(delay=100), quantize=True)  # fake quant off for 100 steps
    reference = nn.SequentialCell([ref_conv, ref_bn, nn.ReLU()])
    for training in (False, True):  # running statistics, then batch statistics (and their update)
        folded.set_train(training)
        reference.set_train(training)
        expected = reference(x).asnumpy()
        if not training:
            folded.quantize = False  # in evaluation the weights are always quantized: compare the float fold
        np.testing.assert_allclose(folded(x).asnumpy(), expected, atol=1e-5)
        folded.quantize = True
    np.testing.assert_allclose(bn.moving_mean.asnumpy(), ref_bn.moving_mean.asnumpy(), atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.asnumpy(), ref_bn.moving_variance.asnumpy(), atol=1e-6)


def test_frozen_bn_trains_exactly_the_deployed_folded_conv():
    x = Tensor(np.random.default_rng(4).normal(size=(2, 8, 5, 5)).astype(np.float32))
    layer = QuantConv(*conv_bn_pair(1), None, control(), quantize=True)
    layer.control.bn_frozen.set_data(Tensor(1.0, ms.float32))
    layer.set_train(True)
    train_out = layer(x).asnumpy()
    layer.set_train(False)
    np.testing.assert_allclose(train_out, layer(x).asnumpy(), atol=1e-6)
    weight, bias = layer.folded()
    values, scale = layer.int8_weight()
    deployed = layer.layer.conv2d(x, values * scale.reshape(-1, 1, 1, 1)) + bias.reshape(1, -1, 1, 1)
    np.testing.assert_allclose(train_out, deployed.asnumpy(), atol=1e-5)
    assert np.abs(weight.asnumpy() - (values * scale.reshape(-1, 1, 1, 1)).asnumpy()).max() <= scale.max() / 2 + 1e-7


# ---- QAT networks --------------------------------------------------------------------------------------------

def qat_net(name, seed=1, scheme=SCHEME, deploy=False):
    net = create_model(name, num_classes=10, **({"deploy": True} if deploy else {}))
    randomize_state(net, seed)
    return quantize_network(net, scheme)


def test_every_layer_of_each_family_is_quantized():
    counts = {}
    for name in ("ghostnet_050", "repghostnet_050", "ghostnetv2_100", "ghostnetv3_100"):
        net = qat_net(name)
        layers = [c for _, c in net.cells_and_names() if isinstance(c, QuantConv)]
        assert layers and all(c.quantize for c in layers)
        folded = {id(c.layer) for c in layers} | {id(c.bn) for c in layers}
        plain = [n for n, c in net.cells_and_names()
                 if isinstance(c, (nn.Conv2d, nn.Dense, nn.BatchNorm2d)) and id(c) not in folded]
        assert not plain  # every conv, dense and BN belongs to a quantized (folded) layer
        convs = [c for c in layers if not c.dense]
        counts[name] = (len(convs), len(quantizers(net)))
    # convs: stem + last 1x1 + conv_head 3, 16 blocks x 2 modules x 2 convs 64, stride-2 depthwise 4, 5 conv
    # shortcuts x 2 = 10, 7 SE x 2 = 14 -> 95; GhostNetV2 adds 3 DFC convs in 14 blocks -> 137.
    # activation quantizers: input + stem 2, one per Ghost module 32 (RepGhost: primary and cheap, 64), 4 depthwise,
    # 10 shortcut convs, 7 SE x (pool, reduce, product) 21, 16 residual adds, last 1x1, pool, conv_head 3 -> 88
    # (RepGhost 120); GhostNetV2's 14 DFC branches add pool, 3 convs and the gated product -> 158. GhostNetV3 is
    # quantized in its deployed form (parallel branches folded first): GhostNetV2's layers exactly.
    assert counts == {"ghostnet_050": (95, 88), "repghostnet_050": (95, 120), "ghostnetv2_100": (137, 158),
                      "ghostnetv3_100": (137, 158)}


def layer_counts(net):
    """(int8 layers: convs + dense, activation quantizers) of a QAT network."""
    return len([c for _, c in net.cells_and_names() if isinstance(c, QuantConv) and c.quantize]), len(quantizers(net))


def test_any_network_of_known_layers_is_quantized_without_family_code():
    # ghostnet_050's 95 convs + classifier and 88 quantizers without the 7 SE layers' 2 convs and 3 quantizers each
    assert layer_counts(qat_net("ghostnet_050_nose")) == (82, 67)
    # GhostNet-600M (hard-swish): 131 convs + classifier; one quantizer per conv output, SE pool/product, add
    assert layer_counts(qat_net("ghostnet_600m")) == (132, 133)
    # Ghost-ResNet-56: stem + 54 Ghost modules x 2 convs + linear; Ghost-VGG-16: first conv + 12 x 2 + 2 dense
    assert layer_counts(qat_net("ghost_resnet56_cifar")) == (110, 138)
    assert layer_counts(qat_net("ghost_vgg16_cifar")) == (27, 28)


class InlineAdd(nn.Cell):
    """A residual add written inline: the quantizer cannot see it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3)
        self.head = nn.Conv2d(3, 4, 1)

    def construct(self, x):
        y = self.conv(x)
        return self.head(y + x)


class UnknownLayer(InlineAdd):
    def __init__(self):
        super().__init__()
        self.act = nn.ELU()

    def construct(self, x):
        return self.head(self.act(self.conv(x)))


def test_networks_with_layers_the_quantizer_does_not_know_are_refused_by_name():
    with pytest.raises(QuantError, match=r"head \(Conv2d\) reads a tensor computed outside any layer"):
        quantize_network(InlineAdd(), SCHEME)
    with pytest.raises(QuantError, match=r"^act \(ELU\) has no int8 form"):
        quantize_network(UnknownLayer(), SCHEME)


def test_repghost_is_quantized_in_its_deployed_form():
    net = qat_net("repghostnet_050")
    names = [n for n, _ in net.parameters_and_names()]
    assert not any(".fusion_bn." in n for n in names)
    assert "blocks.0.0.ghost1.cheap_operation.layer.bias" in names  # the fused depthwise conv with bias


def test_mixed_precision_keeps_the_chosen_layers_float():
    net = qat_net("ghostnet_050", scheme=QuantScheme(keep_float=("depthwise", "first_conv", "classifier")))
    convs = {n: c for n, c in net.cells_and_names() if isinstance(c, QuantConv)}
    float_layers = sorted(n for n, c in convs.items() if not c.quantize)
    assert "conv_stem" in float_layers and "blocks.0.0.ghost1.cheap_operation.0" in float_layers
    assert all(convs[n].layer.group > 1 for n in float_layers if n not in ("conv_stem", "classifier"))
    assert not net.classifier.quantize and not net.conv_stem.has_in_quant


@pytest.mark.slow
def test_qat_checkpoint_rebuilds_the_same_network_from_its_contents(tmp_path):
    scheme = QuantScheme(per_channel=False, keep_float=("depthwise",))
    net = qat_net("ghostnet_050", scheme=scheme)
    for _, q in quantizers(net):
        q.fq_max.set_data(Tensor(4.0, ms.float32))
    net.set_train(False)
    path = str(tmp_path / "qat.ckpt")
    ms.save_checkpoint(net, path)
    params = ms.load_checkpoint(path)
    assert is_qat_params(params) and not is_qat_params(create_model("ghostnet_050").parameters_dict())
    assert scheme_of_params(params) == QuantScheme(per_channel=False, keep_float=("depthwise",))
    cfg = Config(model="ghostnet_050", num_classes=10, dropout=0.0)
    loaded = load_qat_network(cfg, path, params)
    assert is_qat_network(loaded)
    x = Tensor(np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32))
    np.testing.assert_array_equal(loaded(x).asnumpy(), net(x).asnumpy())


class TinyGhostNet(GhostNet):
    """Two Ghost bottlenecks (the second with SE, stride 2 and a conv shortcut): every QAT layer kind, small."""

    cfgs = [[[3, 16, 16, 0, 1]], [[3, 48, 24, 0.25, 2]]]


@pytest.mark.slow
def test_a_qat_step_lowers_the_loss(quickstart):
    from src.train.step import TrainStep, loss_scale_sense, param_groups

    ms.set_seed(0)
    net = quantize_network(TinyGhostNet(num_classes=10, dropout=0.0), SCHEME)
    images = real_images(quickstart, "train", 32, 32)
    labels = Tensor(np.repeat(np.arange(10), 4)[:32].astype(np.int32))  # class-sorted draw: any fixed labels do
    calibrate(net, batched(images, 16))
    loss_net = nn.WithLossCell(net, nn.CrossEntropyLoss())
    step = TrainStep(loss_net, nn.Momentum(param_groups(net, 0.0), learning_rate=0.05, momentum=0.9),
                     loss_scale_sense("O0", "dynamic", 1.0))
    step.set_train(True)
    losses = [float(step(Tensor(images), labels).asnumpy()) for _ in range(6)]
    assert losses[-1] < 0.9 * losses[0], losses
    assert float(net.quant_control.step.asnumpy()) == 6.0  # the stem counted the training steps


def test_a_qat_checkpoint_from_the_old_weight_grid_is_loaded_with_a_warning():
    """QAT records name the weight grid they were trained on; one that does not predates [-63, 63]."""
    cfg = load_config("train", ["--config", "configs/quickstart_qat.yaml"])
    assert legacy_weight_grid_note("new.ckpt", qat_record(cfg, None)) is None
    old = {"form": "qat", "quant": {"per_channel": True, "weights": "int8 symmetric"}}
    assert "old.ckpt was trained with int8 weights on [-127, 127]" in legacy_weight_grid_note("old.ckpt", old)
    assert legacy_weight_grid_note("float.ckpt", {"form": "train"}) is None


# ---- the int8 graph onnxruntime runs -------------------------------------------------------------------------

def ort_graph(model, tmp_path, name):
    """(session, the graph onnxruntime actually runs: its optimized model) of int8 ``model``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / f"{name}.optimized.onnx")
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session, onnx.load(options.optimized_model_filepath).graph


@pytest.mark.parametrize("name, deploy", [("ghostnet_050", False),
                                          pytest.param("repghostnet_050", True, marks=pytest.mark.slow)])
def test_int8_graph_runs_fused_channels_last_and_at_fast_kernel_widths(quickstart, tmp_path, name, deploy):
    """The regression guard of docs/benchmarks.md "int8 vs float": in the graph onnxruntime runs, every
    layer is one int8 op (no float island: the only QuantizeLinear is the image's, no DequantizeLinear), the
    layout stays channels-last from the stem to the classifier (the 2 transposes at the ends), and every conv
    has a width MLAS's fast int8 kernels take (depthwise: multiple of 16 channels; dense: >= 16 outputs, input and
    output multiples of 4). Channel padding changes no logit."""
    net = qat_net(name, deploy=deploy)
    calibrate(net, batched(real_images(quickstart, "train", 16, 32), 16))
    net.set_train(False)
    plain, padded = build_model(net, 32, dynamic_batch=True), onnx.ModelProto()
    padded.CopyFrom(plain)
    report = optimize_qdq(padded)
    assert report["conv_inputs_padded"] == 1 and report["tensors_aligned"] > 20
    x = real_images(quickstart, "val", 32, 32)
    (plain_session, plain_graph), (session, graph) = (ort_graph(m, tmp_path, k) for m, k in
                                                      ((plain, "plain"), (padded, "padded")))
    np.testing.assert_array_equal(session.run(None, {"input": x})[0], plain_session.run(None, {"input": x})[0])

    ops = collections.Counter(node.op_type for node in graph.node)
    assert ops["QuantizeLinear"] == 1 and ops["DequantizeLinear"] == 0, ops
    assert ops["Transpose"] == 2 and ops["Conv"] == ops["Add"] == ops["Mul"] == 0, ops
    assert ops["QLinearAdd"] > 0 and ops["QLinearGlobalAveragePool"] > 0 and ops["QGemm"] == 1, ops
    kinds = conv_kinds(graph)  # MLAS's fast widths: src.deploy.onnx_graph.fast_int8_width
    slow = [name for name, kind in kinds.items() if "generic" in kind]
    assert len(kinds) == ops["QLinearConv"] > 40 and not slow, slow
    unpadded = [name for name, kind in conv_kinds(plain_graph).items() if kind == ["depthwise", "generic"]]
    assert len(unpadded) > 10  # what the padding is for: Ghost widths such as 8, 12, 36, 60
