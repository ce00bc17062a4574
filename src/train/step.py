"""The compiled training step: loss, gradients, optional clipping, optimizer update and EMA of the weights."""
import mindspore as ms
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


class TrainStep(nn.TrainOneStepCell):
    """``TrainOneStepCell`` (which already reduces gradients across data-parallel ranks) plus a static loss scale,
    global-norm gradient clipping and an optional :class:`EMA` update after each optimizer step."""

    def __init__(self, net_with_loss, optimizer, loss_scale=1.0, clip_norm=0.0, ema=None):
        super().__init__(net_with_loss, optimizer, sens=loss_scale)
        self.clip_norm = clip_norm
        self.ema = ema
        self.use_ema = ema is not None

    def construct(self, *inputs):
        loss = self.network(*inputs)
        sens = ops.fill(loss.dtype, loss.shape, self.sens)
        grads = self.grad(self.network, self.weights)(*inputs, sens)
        grads = self.grad_reducer(grads)
        if self.clip_norm > 0:
            # clip the true (unscaled) norm: the optimizer divides by the loss scale afterwards
            grads = ops.clip_by_global_norm(grads, self.clip_norm * self.sens)
        loss = ops.depend(loss, self.optimizer(grads))
        if self.use_ema:
            loss = ops.depend(loss, self.ema())
        return loss


def param_groups(net, weight_decay):
    """Optimizer groups: weight decay on conv/dense kernels only, not on BN parameters or biases."""
    decay, no_decay = [], []
    for param in net.trainable_params():
        is_norm_or_bias = param.name.endswith((".gamma", ".beta", ".bias"))
        (no_decay if is_norm_or_bias else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
