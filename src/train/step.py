"""The compiled training step: loss, gradients, loss scaling with overflow skip, clipping, optimizer, EMA."""
import mindspore as ms
import numpy as np
from mindspore import nn, ops


class EMA(nn.Cell):
    """Exponential moving average of every network parameter (weights and BN statistics).

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates (as TensorFlow's
    ``ExponentialMovingAverage`` with ``num_updates``), so short runs still get a useful average.
    MindSpore has no EMA for training, hence this cell.
    """

    def __init__(self, params, decay):
        super().__init__()
        self.params = ms.ParameterTuple(params)
        self.shadow = self.params.clone(prefix="ema", init="same")
        self.decay = decay
        self.num_updates = ms.Parameter(ms.Tensor(0.0, ms.float32), name="ema.num_updates", requires_grad=False)
        self.hyper_map = ops.HyperMap()

    def construct(self):
        n = self.num_updates
        decay = ops.minimum(ms.Tensor(self.decay, ms.float32), (1.0 + n) / (10.0 + n))
        ops.assign_add(self.num_updates, ms.Tensor(1.0, ms.float32))
        return self.hyper_map(ops.partial(_ema_update, decay), self.shadow, self.params)


def _ema_update(decay, shadow, param):
    return ops.assign(shadow, shadow * decay + ops.cast(param, shadow.dtype) * (1.0 - decay))


def _all_finite(grads):
    return ops.stack([ops.isfinite(g).all() for g in grads]).all()


class TrainStep(nn.TrainOneStepWithLossScaleCell):
    """One optimizer step with loss scaling: MindSpore's ``TrainOneStepWithLossScaleCell`` (gradient reduction
    across data-parallel ranks, ``DynamicLossScaleUpdateCell`` / a fixed scale) plus global-norm clipping, an
    optional :class:`EMA` update, and an on-device count of skipped (overflowed) steps.

    Gradients are unscaled here, before clipping, so the optimizer sees true gradients. A step whose gradients are
    not finite is skipped (no update, no EMA) and, with a dynamic scale, the scale is lowered. The base class
    detects overflow only with Ascend/GPU float-status ops; after the reduction every rank holds the same
    gradients, so an ``isfinite`` test decides identically on every device (CPU included, where the base class's
    check does not run).
    """

    def __init__(self, net_with_loss, optimizer, scale_sense, clip_norm=0.0, ema=None):
        super().__init__(net_with_loss, optimizer, scale_sense)
        self.clip_norm = clip_norm
        self.ema = ema
        self.use_ema = ema is not None
        # fp32 with a unit scale has nothing to unscale or skip: no branch in the graph (it triples compile time)
        self.scaled = isinstance(scale_sense, nn.Cell) or float(scale_sense.asnumpy()) != 1.0
        self.overflows = ms.Parameter(ms.Tensor(0, ms.int32), name="overflow_steps", requires_grad=False)

    def construct(self, *inputs):
        loss = self.network(*inputs)
        scale = self.scale_sense
        grads = self.grad(self.network, self.weights)(*inputs, ops.ones_like(loss) * ops.cast(scale, loss.dtype))
        grads = self.grad_reducer(grads)
        if not self.scaled:
            return self._update(loss, grads)
        grads = self.hyper_map(ops.partial(_unscale, scale), grads)
        overflow = self.process_loss_scale(ops.logical_not(_all_finite(grads)))
        if overflow:
            return ops.depend(loss, ops.assign_add(self.overflows, ms.Tensor(1, ms.int32)))
        return self._update(loss, grads)

    def _update(self, loss, grads):
        if self.clip_norm > 0:
            grads = ops.clip_by_global_norm(grads, self.clip_norm)
        loss = ops.depend(loss, self.optimizer(grads))
        if self.use_ema:
            loss = ops.depend(loss, self.ema())
        return loss


def _unscale(scale, grad):
    return grad * ops.cast(ops.reciprocal(scale), grad.dtype)


def loss_scale_sense(amp_level, kind, value):
    """``scale_sense`` for :class:`TrainStep`: 1 in fp32 (O0), else a fixed Tensor or a
    ``DynamicLossScaleUpdateCell`` (halve on overflow, double after 1000 clean steps)."""
    if amp_level == "O0":
        return ms.Tensor(1.0, ms.float32)
    if kind == "dynamic":
        return nn.DynamicLossScaleUpdateCell(loss_scale_value=value, scale_factor=2, scale_window=1000)
    return ms.Tensor(value, ms.float32)


OPTIMIZERS = ("momentum", "sgd", "adamw")


def make_optimizer(cfg, net, rates):
    """The ``cfg.optimizer`` over :func:`param_groups` with the per-step learning rates ``rates``: ``momentum``
    (``nn.Momentum``), ``sgd`` (``nn.SGD`` with ``cfg.momentum``) or ``adamw`` (``nn.AdamWeightDecay``)."""
    groups, lr = param_groups(net, cfg.weight_decay), ms.Tensor(rates)
    if cfg.optimizer == "momentum":
        return nn.Momentum(groups, learning_rate=lr, momentum=cfg.momentum, use_nesterov=cfg.nesterov)
    if cfg.optimizer == "sgd":
        return nn.SGD(groups, learning_rate=lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    return nn.AdamWeightDecay(groups, learning_rate=lr)


class LossSum(nn.Cell):
    """``step`` that also adds its loss to ``total`` on the device and returns ``(loss, total)``: in data-sink
    mode one call runs many steps and hands back only the last loss, so the epoch mean needs the sum."""

    def __init__(self, step):
        super().__init__()
        self.step = step
        self.total = ms.Parameter(ms.Tensor(0.0, ms.float32), name="loss_sum", requires_grad=False)

    def construct(self, *inputs):
        loss = self.step(*inputs)
        return loss, ops.assign_add(self.total, ops.cast(loss, ms.float32))


def epoch_loss(losses, steps, total=None):
    """Mean training loss of an epoch of ``steps`` steps: ``total / steps`` when the device summed every step's
    loss (:class:`LossSum`), else the mean of ``losses`` (one value per step)."""
    return float(total) / steps if total is not None else float(np.mean(losses))


def param_groups(net, weight_decay):
    """Optimizer groups: weight decay on conv/dense kernels only, not on BN parameters or biases."""
    decay, no_decay = [], []
    for param in net.trainable_params():
        is_norm_or_bias = param.name.endswith((".gamma", ".beta", ".bias"))
        (no_decay if is_norm_or_bias else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
