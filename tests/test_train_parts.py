"""Training building blocks: LR schedule, EMA, weight-decay groups, training-step behaviour, dropout, optimizers,
epoch loss, QAT set-up."""
import logging

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

from helpers import images
from src.config import load_config
from src.errors import ConfigError
from src.models import create_model
from src.train.dropout import StepDropout, attach_step_clock, use_step_dropout
from src.train.schedule import warmup_cosine_lr
from src.train.step import EMA, LossSum, TrainStep, epoch_loss, loss_scale_sense, make_optimizer, param_groups
from src.train.trainer import check_train_config, prepare_qat


def test_schedule_warms_up_linearly_then_follows_a_cosine():
    rates = warmup_cosine_lr(lr=0.4, min_lr=0.0, warmup_lr=0.1, warmup_epochs=1, epochs=3, steps_per_epoch=10)
    assert len(rates) == 30
    np.testing.assert_allclose(rates[:10], 0.1 + 0.03 * np.arange(10), rtol=1e-6)
    assert rates[10] == pytest.approx(0.4)
    assert rates[20] == pytest.approx(0.2, rel=1e-5)  # half-way through the cosine
    assert rates[-1] == pytest.approx(0.4 * 0.5 * (1 + np.cos(np.pi * 19 / 20)), rel=1e-5)
    assert np.all(np.diff(rates[10:]) < 0)


def test_weight_decay_skips_batchnorm_and_biases():
    net = create_model("ghostnet_050", num_classes=10)
    decay, no_decay = param_groups(net, 4e-5)
    assert decay["weight_decay"] == 4e-5 and no_decay["weight_decay"] == 0.0
    assert all(p.name.endswith(".weight") for p in decay["params"])
    assert {"bn1.gamma", "bn1.beta", "conv_head.bias", "classifier.bias"} <= {p.name for p in no_decay["params"]}
    assert len(decay["params"]) + len(no_decay["params"]) == len(net.trainable_params())


def test_ema_tracks_weights_with_warmup_decay():
    w = ms.Parameter(ms.Tensor(np.ones(3, np.float32)), name="w")
    ema = EMA([w], decay=0.99)
    w.set_data(ms.Tensor(np.full(3, 3.0, np.float32)))
    ema()  # decay min(0.99, 1/10) = 0.1 -> 0.1 * 1 + 0.9 * 3
    np.testing.assert_allclose(ema.shadow[0].asnumpy(), 2.8, rtol=1e-6)
    ema()  # decay 2/11
    np.testing.assert_allclose(ema.shadow[0].asnumpy(), 2.8 * 2 / 11 + 3 * 9 / 11, rtol=1e-6)
    assert ema.shadow[0].name == "ema.w" and float(ema.num_updates.asnumpy()) == 2


@pytest.mark.slow
def test_train_step_lowers_the_loss_and_updates_ema():
    ms.set_seed(0)
    net = create_model("ghostnet_050", num_classes=4, dropout=0.0)
    opt = nn.Momentum(param_groups(net, 0.0), learning_rate=0.05, momentum=0.9)
    ema = EMA(net.get_parameters(), 0.9)
    step = TrainStep(nn.WithLossCell(net, nn.CrossEntropyLoss()), opt, loss_scale_sense("O0", "dynamic", 1.0),
                     clip_norm=5.0, ema=ema)
    step.set_train(True)
    x, y = images(8, 32), ms.Tensor(np.arange(8, dtype=np.int32) % 4)
    losses = [float(step(x, y).asnumpy()) for _ in range(8)]
    assert losses[-1] < 0.5 * losses[0]
    assert int(opt.global_step.asnumpy()) == 8
    moved = np.abs(ema.shadow[0].asnumpy() - net.conv_stem.weight.asnumpy()).max()
    assert 0 < moved < np.abs(net.conv_stem.weight.asnumpy()).max()


@pytest.mark.parametrize("kind", ["dynamic", "static"])
def test_an_overflowing_step_is_skipped_and_counted(kind):
    """Loss-scaled gradients that overflow leave weights, optimizer step and EMA untouched; the dynamic scale
    halves, the static one stays (MindSpore's own overflow check does not run on CPU; ours does)."""
    net = nn.SequentialCell([nn.Flatten(), nn.Dense(12, 4)])
    opt = nn.Momentum(param_groups(net, 0.0), learning_rate=0.1, momentum=0.9)
    ema = EMA(net.get_parameters(), 0.9)
    step = TrainStep(nn.WithLossCell(net, nn.CrossEntropyLoss()), opt, loss_scale_sense("O2", kind, 2.0 ** 20),
                     ema=ema)
    step.set_train(True)
    y = ms.Tensor(np.arange(8, dtype=np.int32) % 4)
    before = net[1].weight.asnumpy().copy()
    step(ms.Tensor(np.full((8, 3, 2, 2), 1e35, np.float32)), y)  # gradients x 2^20 overflow float32
    assert int(step.overflows.asnumpy()) == 1 and int(opt.global_step.asnumpy()) == 0
    np.testing.assert_array_equal(net[1].weight.asnumpy(), before)
    assert float(ema.num_updates.asnumpy()) == 0
    assert float(step.scale_sense.asnumpy()) == (2.0 ** 19 if kind == "dynamic" else 2.0 ** 20)
    step(ms.Tensor(np.random.default_rng(0).normal(size=(8, 3, 2, 2)).astype(np.float32)), y)
    assert int(opt.global_step.asnumpy()) == 1 and int(step.overflows.asnumpy()) == 1


class Head(nn.Cell):
    """A model head with a dropout layer, as the networks hold theirs (an attribute)."""

    def __init__(self, p):
        super().__init__()
        self.dropout = nn.Dropout(p=p)

    def construct(self, x):
        return self.dropout(x)


def test_dropout_masks_are_a_function_of_the_step_so_a_resumed_run_repeats_them():
    x = ms.Tensor(np.ones((64, 160), np.float32))
    holder = Head(0.1)
    clock = ms.Parameter(ms.Tensor([7], ms.int32), name="global_step", requires_grad=False)
    use_step_dropout(holder, seed=0)
    attach_step_clock(holder, clock)
    holder.set_train(True)
    first, again = holder(x).asnumpy(), holder(x).asnumpy()
    assert isinstance(holder.dropout, StepDropout) and (first == again).all()  # what a resumed run at step 7 drops
    assert set(np.unique(first)) == {0.0, np.float32(1 / 0.9)}  # inverted dropout keeps the expected value
    assert 0.08 < (first == 0).mean() < 0.12  # rate 0.1 (10240 elements)
    clock.set_data(ms.Tensor([8], ms.int32))
    assert 0.15 < ((holder(x).asnumpy() == 0) != (first == 0)).mean() < 0.21  # an independent mask at step 8
    holder.set_train(False)
    assert (holder(x).asnumpy() == 1).all()


@pytest.mark.slow
def test_step_dropout_survives_the_amp_o1_rewrite():
    """AMP O1 rebuilds the network (MindSpore's rewrite) with copies of its Cells: the copies get the clock."""
    net = create_model("ghostnet_050", num_classes=10, dropout=0.5)
    assert use_step_dropout(net, seed=0) == 1
    amp = ms.amp.auto_mixed_precision(net, "O1")
    attach_step_clock(amp, ms.Parameter(ms.Tensor([3], ms.int32), name="global_step", requires_grad=False))
    amp.set_train(True)
    x = images(2, 32)
    np.testing.assert_array_equal(amp(x).asnumpy(), amp(x).asnumpy())  # the mask of step 3, twice


def test_every_dropout_of_a_model_is_replaced_and_checkpoints_keep_their_names():
    net = create_model("ghostnet_050", num_classes=10, dropout=0.2)
    names = [p.name for p in net.get_parameters()]
    use_step_dropout(net, seed=0)
    assert isinstance(net.dropout, StepDropout) and net.dropout.p == pytest.approx(0.2)
    assert not [c for _, c in net.cells_and_names() if isinstance(c, nn.Dropout)]
    assert [p.name for p in net.get_parameters()] == names  # the step counter is the optimizer's


@pytest.mark.parametrize("name,kind", [("momentum", nn.Momentum), ("sgd", nn.SGD), ("adamw", nn.AdamWeightDecay)])
def test_the_optimizer_key_chooses_the_optimizer_with_weight_decay_groups(name, kind):
    net = create_model("ghostnet_050", num_classes=10)
    cfg = load_config("train", ["--optimizer", name, "--weight_decay", "1e-5"])
    optimizer = make_optimizer(cfg, net, np.full(4, 0.1, np.float32))
    assert type(optimizer) is kind
    decays = {p.name: d for p, d in zip(optimizer.parameters, optimizer.group_weight_decay)}
    assert decays["conv_stem.weight"] == pytest.approx(1e-5) and decays["bn1.gamma"] == decays["bn1.beta"] == 0.0


def test_an_unknown_optimizer_is_refused():
    cfg = load_config("train", ["--optimizer", "lamb", "--data_path", "x"])
    with pytest.raises(ConfigError, match="^--optimizer must be one of momentum, sgd, adamw, got lamb$"):
        check_train_config(cfg)


class Losses(nn.Cell):
    """Stands in for the training step: returns the given losses one per call."""

    def __init__(self, values):
        super().__init__()
        self.values = ms.Tensor(np.array(values, np.float32))
        self.i = ms.Parameter(ms.Tensor(0, ms.int32), name="i", requires_grad=False)

    def construct(self, x):
        loss = self.values[self.i]
        return ops.depend(loss, ops.assign_add(self.i, ms.Tensor(1, ms.int32)))


def test_the_epoch_loss_is_the_mean_of_every_step_also_when_the_device_runs_several_per_call():
    steps = LossSum(Losses([1.0, 2.0, 3.0, 6.0]))
    outputs = [steps(ms.Tensor(0.0)) for _ in range(4)]
    last_per_call = [outputs[1][0].asnumpy(), outputs[3][0].asnumpy()]  # a sink of 2 steps per call sees these
    assert float(outputs[-1][1].asnumpy()) == 12.0
    assert epoch_loss(last_per_call, steps=4, total=outputs[-1][1].asnumpy()) == 3.0  # not (2 + 6) / 2
    assert epoch_loss([1.0, 2.0, 3.0, 6.0], steps=4) == 3.0  # host mode: one loss per step


class OneBatch:
    """A training set of one batch of two 32 px images (what QAT calibration reads)."""

    def create_tuple_iterator(self, num_epochs):
        return iter([(images(2, 32), ms.Tensor(np.zeros(2, np.int32)))])


@pytest.mark.slow
def test_qat_without_pretrained_warns_that_it_quantizes_a_random_network(caplog):
    cfg = load_config("train", ["--config", "configs/quickstart_qat.yaml", "--qat_calib_batches", "1"])
    assert not cfg.pretrained
    with caplog.at_level(logging.WARNING, logger="ghostnet"):
        prepare_qat(create_model("ghostnet_050", num_classes=10), cfg, OneBatch(), logging.getLogger("ghostnet"))
    assert [r.message for r in caplog.records if r.levelno == logging.WARNING] == [
        "QAT without --pretrained: quantizing a randomly initialised ghostnet_050 (QAT fine-tunes a trained network; "
        "pass --pretrained CKPT)"]
