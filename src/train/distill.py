"""Knowledge distillation (Hinton et al. 2015; DeiT's soft distillation): a frozen teacher's logits, computed in the
same compiled step on the same images, join the hard-label loss as
``(1 - alpha) * CE(student, labels) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))``.

The teacher is a checkpoint of this project (its record names the model, class count and preprocessing, which
must match the student's); it runs in float32 and in eval mode whatever the student does (AMP, QAT, frozen BN),
and its parameters, named ``teacher.*``, reach neither the optimizer, the EMA nor any checkpoint of the run.
"""
import os

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from ..errors import ConfigError, DataError
from ..models import check_input_size, create_model, load_checkpoint_strict, read_checkpoint
from ..quant.qat import is_qat_checkpoint
from ..record import check_classes
from .checkpoint import TEACHER_PREFIX, in_checkpoint_form

PRETRAINED = "pretrained"  # teacher_ckpt value meaning "the --pretrained checkpoint" (a QAT run's float model)


def check_distill_config(cfg):
    """Refuse distillation settings that are wrong on their face (the teacher file itself: :func:`load_teacher`)."""
    if not cfg.teacher_ckpt:
        if cfg.teacher_model:
            raise ConfigError(f"--teacher_model {cfg.teacher_model} needs --teacher_ckpt (the teacher's weights); "
                              "pass both, or drop --teacher_model")
        return
    if not 0.0 <= cfg.distill_alpha <= 1.0:
        raise ConfigError(f"--distill_alpha must be in [0, 1] (the weight of the distillation term), "
                          f"got {cfg.distill_alpha}")
    if cfg.distill_temperature <= 0:
        raise ConfigError(f"--distill_temperature must be > 0, got {cfg.distill_temperature}")
    if cfg.teacher_model:
        try:
            check_input_size(cfg.teacher_model, cfg.image_size)
        except ConfigError as exc:
            raise ConfigError(f"--teacher_model: {exc}") from None
    if cfg.teacher_ckpt == PRETRAINED and not cfg.pretrained:
        raise ConfigError("--teacher_ckpt pretrained means the --pretrained checkpoint, but --pretrained is empty; "
                          "pass --pretrained FLOAT.ckpt or a teacher checkpoint path")
    if cfg.teacher_ckpt != PRETRAINED and not os.path.isfile(cfg.teacher_ckpt):
        raise DataError(f"teacher checkpoint not found: {cfg.teacher_ckpt}")


def teacher_path(cfg):
    """The teacher's checkpoint file (``teacher_ckpt: pretrained`` names ``--pretrained``'s)."""
    return cfg.pretrained if cfg.teacher_ckpt == PRETRAINED else cfg.teacher_ckpt


def teacher_model_name(cfg, path, record):
    """The teacher's registered name: its record's, else ``--teacher_model``; both given must agree."""
    recorded = (record or {}).get("model")
    if recorded and cfg.teacher_model and recorded != cfg.teacher_model:
        raise ConfigError(f"--teacher_model {cfg.teacher_model} contradicts {path}, which holds {recorded}; "
                          "drop --teacher_model (the checkpoint's record names the teacher)")
    if not (recorded or cfg.teacher_model):
        raise ConfigError(f"teacher checkpoint {path} has no model record; pass --teacher_model NAME")
    return recorded or cfg.teacher_model


def check_teacher_record(cfg, path, record):
    """The teacher must score the student's classes on the student's input (size and normalisation)."""
    if record is None:
        return
    if record["num_classes"] != cfg.num_classes:
        raise ConfigError(f"teacher {path} has {record['num_classes']} classes but the student has num_classes="
                          f"{cfg.num_classes}; distill from a teacher trained on the same classes")
    differ = [f"{key} {record[key]} (student {cfg[key]})" for key in ("image_size", "mean", "std")
              if key in record and not np.allclose(record[key], cfg[key], rtol=1e-6, atol=0)]
    if differ:
        raise ConfigError(f"teacher {path} was trained on other inputs: {', '.join(differ)}; train the student "
                          "with the teacher's preprocessing or use a teacher trained on this input")


def check_teacher_classes(cfg, teacher, class_names):
    """A teacher whose record names its classes must name the dataset's, in the same order."""
    try:
        check_classes(cfg, class_names, teacher.record)
    except DataError as exc:
        raise DataError(f"teacher {teacher_path(cfg)}: {exc}") from None


def load_teacher(cfg, log):
    """The frozen teacher of ``cfg`` (:class:`Teacher`), strictly loaded in the form its checkpoint was saved in;
    refuses a missing, corrupt, QAT or mismatching checkpoint before anything is written."""
    path = teacher_path(cfg)
    try:
        params, record = read_checkpoint(path)
    except DataError as exc:
        raise DataError(f"--teacher_ckpt: {exc}") from None
    if is_qat_checkpoint(params, record):
        raise ConfigError(f"teacher {path} is a quantization-aware (QAT) checkpoint; the teacher must be a float "
                          "model: pass the float checkpoint it was trained from")
    name = teacher_model_name(cfg, path, record)
    check_teacher_record(cfg, path, record)
    check_input_size(name, cfg.image_size)
    net = in_checkpoint_form(create_model(name, num_classes=cfg.num_classes), name, params)
    try:
        load_checkpoint_strict(net, path, params)
    except DataError as exc:
        raise DataError(f"teacher {name}: {exc}") from None
    log.info("distillation: teacher %s from %s, alpha %g, temperature %g (loss (1 - alpha) * CE + alpha * T^2 * KL)",
             name, path, cfg.distill_alpha, cfg.distill_temperature)
    return Teacher(net, record)


class Teacher(nn.Cell):
    """A frozen network that stays in eval mode (BN running statistics, no dropout) even inside a training step
    switched to training, with its parameters renamed ``teacher.*`` so no checkpoint or optimizer mistakes them
    for the student's. ``record``: its checkpoint's model record (None without one)."""

    def __init__(self, net, record=None):
        super().__init__(auto_prefix=False)
        self.net = net
        self.record = record
        for param in net.get_parameters():
            param.requires_grad = False
        net.update_parameters_name(TEACHER_PREFIX)
        self.set_train(False)

    def add_flags_recursive(self, **flags):
        """``set_train`` of an enclosing cell reaches here: the teacher keeps ``training=False``."""
        if "training" in flags:
            flags["training"] = False
        return super().add_flags_recursive(**flags)

    def construct(self, images):
        return ops.stop_gradient(self.net(images))


class DistillLoss(nn.Cell):
    """``(1 - alpha) * CE_ls(student, labels) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))``,
    in float32. T^2 keeps the soft term's gradient scale independent of T (Hinton et al. 2015); the KL is the
    batch mean of per-sample sums, as torch's ``kl_div(reduction="batchmean")`` that timm and DeiT use."""

    def __init__(self, alpha, temperature, label_smoothing=0.0):
        super().__init__()
        self.alpha, self.temperature = float(alpha), float(temperature)
        self.ce = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.kl = nn.KLDivLoss(reduction="batchmean")

    def construct(self, logits, teacher_logits, labels):
        logits, teacher_logits = ops.cast(logits, ms.float32), ops.cast(teacher_logits, ms.float32)
        t = self.temperature
        soft = self.kl(ops.log_softmax(logits / t, -1), ops.softmax(teacher_logits / t, -1))
        hard = self.ce(logits, labels)
        return (1.0 - self.alpha) * hard + self.alpha * t * t * soft


class DistillWithLossCell(nn.Cell):
    """``WithLossCell`` with a teacher: student and teacher logits of the same images go to :class:`DistillLoss`.
    No name prefix, so the student's parameters keep their names (checkpoints load as without distillation)."""

    def __init__(self, student, teacher, loss_fn):
        super().__init__(auto_prefix=False)
        self.student, self.teacher, self.loss_fn = student, teacher, loss_fn

    def construct(self, images, labels):
        return self.loss_fn(self.student(images), self.teacher(images), labels)


def loss_cell(net, teacher, cfg):
    """The network with its training loss: cross-entropy with label smoothing, and with a teacher the
    distillation loss around it."""
    if teacher is None:
        return nn.WithLossCell(net, nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing))
    loss = DistillLoss(cfg.distill_alpha, cfg.distill_temperature, cfg.label_smoothing)
    return DistillWithLossCell(net, teacher, loss)
