"""Knowledge distillation in train.py: the loss, the frozen teacher inside the training step, runs that resume and
quantize with a teacher, and every refusal of a bad teacher before anything is written."""
import logging

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from helpers import images, make_imagenet_subset
from src.config import load_config, run_cli
from src.flows.train import train
from src.models import create_model, reparameterize, write_checkpoint
from src.quant.qat import QuantScheme, quantize_network
from src.quant.training import qat_record
from src.record import CKPT_KEY, make_record
from src.train.distill import DistillLoss, DistillWithLossCell, load_teacher
from src.train.step import TrainStep, loss_scale_sense, param_groups
from src.train.trainer import INTERRUPTED, check_train_config

LOG = logging.getLogger("ghostnet")
# the quickstart recipe on 10 classes x 8 images, augmentation off: runs repeat exactly (resume compares states)
KD = ["--config", "configs/quickstart.yaml", "--batch_size", "16", "--random_crop", "false", "--hflip", "0",
      "--color_jitter", "0", "--ema", "true", "--ema_decay", "0.9", "--lr", "0.05", "--warmup_lr", "0.01",
      "--log_interval", "1", "--num_workers", "1", "--max_steps_per_epoch", "2", "--mode", "PYNATIVE"]


def cfg_with(*argv):
    return load_config("train", ["--config", "configs/quickstart.yaml", "--data_path", "x", *map(str, argv)])


def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def reference_loss(student, teacher, labels, alpha, t, smoothing):
    """(1 - alpha) * CE with label smoothing + alpha * T^2 * KL(p_teacher || p_student), in float64."""
    classes = student.shape[1]
    target = np.full(student.shape, smoothing / classes) + (1 - smoothing) * np.eye(classes)[labels]
    ce = -(target * log_softmax(student)).sum(axis=1).mean()
    log_p, log_q = log_softmax(teacher / t), log_softmax(student / t)
    kl = (np.exp(log_p) * (log_p - log_q)).sum(axis=1).mean()
    return (1 - alpha) * ce + alpha * t * t * kl


@pytest.mark.parametrize("alpha,temperature", [(0.0, 1.0), (0.5, 1.0), (0.5, 4.0), (0.9, 2.0), (1.0, 3.0)])
def test_the_loss_is_label_smoothed_cross_entropy_plus_t_squared_kl(alpha, temperature):
    rng = np.random.default_rng(1)
    student, teacher = rng.normal(size=(2, 6, 5)) * 3
    teacher[0, 2] = 40.0  # a confident teacher row: probabilities underflow to 0 without a NaN
    labels = np.array([0, 1, 2, 3, 4, 2])
    loss = DistillLoss(alpha, temperature, label_smoothing=0.1)(
        ms.Tensor(student, ms.float32), ms.Tensor(teacher, ms.float32), ms.Tensor(labels, ms.int32))
    expected = reference_loss(student, teacher, labels, alpha, temperature, 0.1)
    assert float(loss.asnumpy()) == pytest.approx(expected, rel=1e-5)


def test_alpha_zero_is_the_plain_label_smoothed_cross_entropy():
    logits = ms.Tensor(np.random.default_rng(2).normal(size=(4, 10)), ms.float32)
    labels = ms.Tensor([1, 2, 3, 9], ms.int32)
    plain = nn.CrossEntropyLoss(label_smoothing=0.1)(logits, labels)
    kd = DistillLoss(0.0, 1.0, label_smoothing=0.1)(logits, logits * 5, labels)
    assert float(kd.asnumpy()) == pytest.approx(float(plain.asnumpy()), rel=1e-6)


@pytest.fixture(scope="module")
def teacher_ckpt(trained_model):
    """The trained Fashion-MNIST GhostNet 0.5x (10 classes, 32 px, with its record)."""
    return trained_model["ckpt"]


def student_and_teacher(teacher_ckpt, alpha):
    ms.set_seed(0)
    student = create_model("ghostnet_050", num_classes=10, dropout=0.0)
    teacher = load_teacher(cfg_with("--teacher_ckpt", teacher_ckpt, "--distill_alpha", alpha), LOG)
    return student, teacher


def test_the_teacher_moves_the_loss_and_the_student_gradient(teacher_ckpt):
    """Same student, batch and labels; only alpha changes: a teacher that were ignored would change nothing."""
    student, teacher = student_and_teacher(teacher_ckpt, 0.5)
    x, y = images(8, 32, seed=3), ms.Tensor(np.arange(8) % 10, ms.int32)
    results = {}
    for alpha in (0.0, 0.5, 1.0):
        cell = DistillWithLossCell(student, teacher, DistillLoss(alpha, 2.0, 0.1))
        cell.set_train(True)
        loss, grads = ms.value_and_grad(cell, None, student.trainable_params())(x, y)
        results[alpha] = (float(loss.asnumpy()), np.concatenate([g.asnumpy().ravel() for g in grads]))
    (ce, g0), (mix, g5), (kd, g1) = results[0.0], results[0.5], results[1.0]
    assert mix == pytest.approx(0.5 * ce + 0.5 * kd, rel=1e-5) and abs(kd - ce) > 0.1
    np.testing.assert_allclose(g5, 0.5 * g0 + 0.5 * g1, rtol=1e-3, atol=1e-6)
    assert np.abs(g1 - g0).max() > 0.1 * np.abs(g0).max()


@pytest.fixture(scope="module")
def distilled(teacher_ckpt):
    """Eight optimizer steps (alpha 1, T 1: the loss is the KL to the teacher), the teacher before and after, and
    the teacher's output in the training step against its output on its own in eval mode. (That no teacher
    parameter reaches the EMA: the run's checkpoints, below.)"""
    student, teacher = student_and_teacher(teacher_ckpt, 1.0)
    before = {p.name: p.asnumpy().copy() for p in teacher.get_parameters()}
    optimizer = nn.Momentum(param_groups(student, 0.0), learning_rate=0.01, momentum=0.9)
    step = TrainStep(DistillWithLossCell(student, teacher, DistillLoss(1.0, 1.0, 0.1)), optimizer,
                     loss_scale_sense("O0", "dynamic", 1.0))
    step.set_train(True)
    x, y = images(8, 32, seed=4), ms.Tensor(np.arange(8) % 10, ms.int32)
    losses = [float(step(x, y).asnumpy()) for _ in range(8)]
    alone = create_model("ghostnet_050", num_classes=10)
    ms.load_param_into_net(alone, {p.name[len("teacher."):]: p for p in teacher.get_parameters()})
    alone.set_train(False)
    return {"losses": losses, "teacher": teacher, "before": before, "step": step, "optimizer": optimizer,
            "in_step": teacher(x).asnumpy(), "eval": alone(x).asnumpy()}


def test_distilling_with_alpha_one_brings_the_student_to_the_teacher(distilled):
    losses = distilled["losses"]
    assert losses[0] > 0.5 and losses[-1] < 0.3 * losses[0], losses  # measured 0.92 -> 0.16


def test_the_teacher_is_frozen_in_eval_mode_and_outside_the_optimizer(distilled):
    teacher = distilled["teacher"]
    after = {p.name: p.asnumpy() for p in teacher.get_parameters()}
    assert after.keys() == distilled["before"].keys() and all(k.startswith("teacher.") for k in after)
    for name, value in after.items():  # weights and BN running statistics
        np.testing.assert_array_equal(value, distilled["before"][name], err_msg=name)
    assert not any(p.requires_grad for p in teacher.get_parameters())
    assert distilled["step"].training and not teacher.training
    assert not [c for _, c in teacher.cells_and_names() if c.training]
    np.testing.assert_allclose(distilled["in_step"], distilled["eval"], rtol=1e-5, atol=1e-5)
    trained = {p.name for p in distilled["optimizer"].parameters} | {p.name for p in distilled["step"].weights}
    assert trained and not [n for n in trained if "teacher" in n]
    assert int(distilled["optimizer"].global_step.asnumpy()) == 8


def test_a_deployed_repghost_teacher_loads_into_its_deployed_form(tmp_path):
    ms.set_seed(0)
    net = create_model("repghostnet_050", num_classes=10)
    net.set_train(False)
    x = images(2, 32)
    expected = net(x).asnumpy()
    reparameterize(net)
    cfg = cfg_with("--model", "repghostnet_050")
    path = write_checkpoint(net, str(tmp_path / "deployed.ckpt"), make_record(cfg, "deploy"))
    teacher = load_teacher(cfg_with("--teacher_ckpt", path), LOG)
    np.testing.assert_allclose(teacher(x).asnumpy(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("level", ["O1", "O2", "O3"])
def test_a_distillation_step_compiles_under_amp_with_a_frozen_float32_teacher(teacher_ckpt, level, graph_mode):
    student, teacher = student_and_teacher(teacher_ckpt, 0.5)
    net = ms.amp.auto_mixed_precision(student, level)
    step = TrainStep(DistillWithLossCell(net, teacher, DistillLoss(0.5, 2.0, 0.1)),
                     nn.Momentum(param_groups(net, 0.0), learning_rate=0.01, momentum=0.9),
                     loss_scale_sense(level, "dynamic", 1024.0))
    step.set_train(True)
    before = {p.name: p.asnumpy().copy() for p in teacher.get_parameters()}
    loss = step(images(4, 32), ms.Tensor(np.arange(4), ms.int32))
    assert np.isfinite(float(loss.asnumpy())) and int(step.optimizer.global_step.asnumpy()) == 1
    assert all(p.dtype == ms.float32 for p in teacher.get_parameters())
    for p in teacher.get_parameters():  # the compiled step kept BN running statistics: eval mode in the graph
        np.testing.assert_array_equal(p.asnumpy(), before[p.name], err_msg=p.name)


# ---- train.py end to end ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Ten quickstart classes (the teacher's), 8 training and 2 validation images each."""
    return make_imagenet_subset(str(tmp_path_factory.mktemp("data")), classes=10, n_train=8, n_val=2)


def run(*argv):
    try:
        return run_cli(train, "train", [*KD, *map(str, argv)])
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


def saved(path):
    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items() if hasattr(v, "asnumpy")}


@pytest.fixture(scope="module")
def kd_run(data, teacher_ckpt, tmp_path_factory):
    """Two epochs of two steps distilled from the trained teacher (alpha 0.7, T 2)."""
    out = tmp_path_factory.mktemp("kd") / "run"
    assert run("--data_path", data, "--epochs", 2, "--output_dir", out, "--teacher_ckpt", teacher_ckpt,
               "--distill_alpha", 0.7, "--distill_temperature", 2) == 0
    return out


@pytest.mark.slow
def test_a_distillation_run_logs_its_teacher_and_saves_only_the_student(kd_run, teacher_ckpt):
    log = (kd_run / "train.log").read_text()
    assert f"distillation: teacher ghostnet_050 from {teacher_ckpt}, alpha 0.7, temperature 2" in log
    student = {p.name for p in create_model("ghostnet_050", num_classes=10).get_parameters()}
    for name in ("ghostnet_050-e0002.ckpt", "ghostnet_050-e0002-ema.ckpt", "best.ckpt"):
        assert set(saved(kd_run / name)) == student, name
    state = saved(kd_run / "last_state.ckpt")
    assert student < set(state) and not [k for k in state if "teacher" in k]
    cfg = load_config("train", ["--config", str(kd_run / "config.yaml")])
    assert (cfg.teacher_ckpt, cfg.distill_alpha, cfg.distill_temperature) == (teacher_ckpt, 0.7, 2.0)


@pytest.mark.slow
def test_an_interrupted_distillation_run_resumes_to_the_uninterrupted_result(kd_run, data, teacher_ckpt, tmp_path):
    out, args = tmp_path / "resumed", ["--data_path", data, "--epochs", 2, "--teacher_ckpt", teacher_ckpt,
                                       "--distill_alpha", 0.7, "--distill_temperature", 2]
    assert run(*args, "--output_dir", out, "--stop_after_steps", 3) == INTERRUPTED  # in the middle of epoch 2
    assert run(*args, "--output_dir", out, "--resume", out / "last_state.ckpt") == 0
    assert "resumed from" in (out / "train.log").read_text()
    a, b = saved(kd_run / "last_state.ckpt"), saved(out / "last_state.ckpt")
    assert set(a) == set(b) and any(k.startswith("ema.") for k in a)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.slow
def test_qat_distills_from_its_own_float_checkpoint(data, teacher_ckpt, tmp_path):
    out = tmp_path / "qat"
    assert run("--config", "configs/quickstart_qat.yaml", "--data_path", data, "--epochs", 1, "--output_dir", out,
               "--pretrained", teacher_ckpt, "--teacher_ckpt", "pretrained", "--qat_calib_batches", 1,
               "--ema", "false") == 0
    assert f"distillation: teacher ghostnet_050 from {teacher_ckpt}, alpha 0.5" in (out / "train.log").read_text()
    state = saved(out / "last_state.ckpt")
    assert not [k for k in state if "teacher" in k]
    assert '"form": "qat"' in str(ms.load_checkpoint(str(out / "best.ckpt"))[CKPT_KEY])


# ---- refusals -----------------------------------------------------------------------------------------------------

def teacher_file(tmp_path, record=True, class_names=None, **changes):
    """A GhostNet 0.5x teacher checkpoint of random weights whose record differs from the student's by
    ``changes`` (config keys) and carries ``class_names``; ``record=False``: a checkpoint without a record."""
    cfg = cfg_with(*[a for k, v in changes.items() for a in (f"--{k}", v)])
    net = create_model(cfg.model, num_classes=cfg.num_classes)
    meta = make_record(cfg, "train", class_names) if record else None
    return write_checkpoint(net, str(tmp_path / "teacher.ckpt"), meta)


def qat_file(tmp_path):
    cfg = cfg_with("--qat", "true")
    net = quantize_network(create_model("ghostnet_050", num_classes=10), QuantScheme.from_config(cfg))
    return write_checkpoint(net, str(tmp_path / "qat.ckpt"), qat_record(cfg, None))


def corrupt_file(tmp_path):
    path = tmp_path / "corrupt.ckpt"
    path.write_bytes(b"not a checkpoint" * 64)
    return str(path)


REFUSALS = {
    "missing": (lambda p: ["--teacher_ckpt", "missing.ckpt"], "teacher checkpoint not found: missing.ckpt"),
    "corrupt": (lambda p: ["--teacher_ckpt", corrupt_file(p)], "is corrupt or not a MindSpore checkpoint"),
    "classes": (lambda p: ["--teacher_ckpt", teacher_file(p, num_classes=4)],
                "has 4 classes but the student has num_classes=10; distill from a teacher trained on the same"),
    "size": (lambda p: ["--teacher_ckpt", teacher_file(p, image_size=64)],
             "was trained on other inputs: image_size 64 (student 32)"),
    "mean": (lambda p: ["--teacher_ckpt", teacher_file(p, mean="0.5,0.5,0.5")],
             "was trained on other inputs: mean [0.5, 0.5, 0.5] (student [0.485, 0.456, 0.406])"),
    "alpha": (lambda p: ["--teacher_ckpt", teacher_file(p), "--distill_alpha", "1.5"],
              "--distill_alpha must be in [0, 1]"),
    "temperature": (lambda p: ["--teacher_ckpt", teacher_file(p), "--distill_temperature", "0"],
                    "--distill_temperature must be > 0, got 0.0"),
    "unknown model": (lambda p: ["--teacher_ckpt", teacher_file(p), "--teacher_model", "ghostnet_07"],
                      "--teacher_model: unknown model 'ghostnet_07'"),
    "model without ckpt": (lambda p: ["--teacher_model", "ghostnet_100"],
                           "--teacher_model ghostnet_100 needs --teacher_ckpt"),
    "model contradicts record": (lambda p: ["--teacher_ckpt", teacher_file(p), "--teacher_model", "ghostnet_100"],
                                 "--teacher_model ghostnet_100 contradicts"),
    "no record, no model": (lambda p: ["--teacher_ckpt", teacher_file(p, record=False)],
                            "has no model record; pass --teacher_model NAME"),
    "wrong model for weights": (lambda p: ["--teacher_ckpt", teacher_file(p, record=False), "--teacher_model",
                                           "ghostnet_100"], "teacher ghostnet_100: checkpoint"),
    "class names": (lambda p: ["--teacher_ckpt", teacher_file(p, class_names=[f"c{i}" for i in range(10)])],
                    "teacher.ckpt: the dataset's class 0 is 'ankle_boot' but the model's is 'c0'"),
    "pretrained empty": (lambda p: ["--teacher_ckpt", "pretrained"], "--pretrained is empty"),
    "pretrained qat": (lambda p: ["--qat", "true", "--pretrained", qat_file(p), "--teacher_ckpt", "pretrained"],
                       "is a quantization-aware (QAT) checkpoint; the teacher must be a float model"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_bad_teacher_is_a_one_line_error_and_writes_nothing(case, data, tmp_path, capsys):
    make_args, message = REFUSALS[case]
    out = tmp_path / "out"
    assert run("--data_path", data, "--epochs", 1, "--output_dir", out, *make_args(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_alpha_and_temperature_without_a_teacher_are_ignored():
    check_train_config(cfg_with("--distill_alpha", "7", "--distill_temperature", "-1"))
