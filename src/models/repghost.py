"""RepGhostNet (Chen et al., 2022): Ghost modules whose concat is replaced by a re-parameterizable add.

Train form of the cheap op: ``relu(BN(dw3x3(p)) + BN(p))`` where ``p`` is the primary output; deploy form: one
biased depthwise 3x3 conv. The same fusion arithmetic (:func:`fuse_cheap_branch`) serves the in-place switch of a
built network and the conversion of a train-form checkpoint, so both give identical deploy weights.
"""
import numpy as np
from mindspore import Parameter, Tensor, nn

from .ghostnet import GhostNet
from .layers import Sequential, batch_norm, conv2d, conv_bn, switch_to_deploy
from .reparam import BN_EPS, BN_KEYS, bn_arrays, fuse_branches, fused_conv

# GhostNet's table with the mid (expansion) widths halved.
REPGHOSTNET_CFGS = [
    [[3, 8, 16, 0, 1]],
    [[3, 24, 24, 0, 2]],
    [[3, 36, 24, 0, 1]],
    [[5, 36, 40, 0.25, 2]],
    [[5, 60, 40, 0.25, 1]],
    [[3, 120, 80, 0, 2]],
    [[3, 100, 80, 0, 1], [3, 120, 80, 0, 1], [3, 120, 80, 0, 1], [3, 240, 112, 0.25, 1], [3, 336, 112, 0.25, 1]],
    [[5, 336, 160, 0.25, 2]],
    [[5, 480, 160, 0, 1], [5, 480, 160, 0.25, 1], [5, 480, 160, 0, 1], [5, 480, 160, 0.25, 1]],
]


def fuse_cheap_branch(dw_kernel, dw_bn, fusion_bn, eps=BN_EPS):
    """Deploy kernel/bias of ``BN(dw(p)) + BN(p)`` as one depthwise conv.

    ``dw_kernel``: (C, 1, k, k); ``dw_bn``/``fusion_bn``: (gamma, beta, mean, var) arrays of length C.
    """
    return fuse_branches([(dw_kernel, dw_bn)], dw_kernel.shape[-1], identity_bn=fusion_bn, eps=eps)


class RepGhostModule(nn.Cell):
    """RepGhost module: primary 1x1 conv to ``oup`` channels, then a re-parameterizable cheap depthwise op."""

    def __init__(self, inp, oup, kernel_size=1, dw_size=3, stride=1, relu=True, reparam=True, deploy=False):
        super().__init__()
        self.oup = oup
        self.dw_size = dw_size
        self.primary_conv = conv_bn(inp, oup, kernel_size, stride, act_layer=nn.ReLU if relu else None)
        self.deploy = deploy or not reparam
        if deploy:
            self.cheap_operation = conv2d(oup, oup, dw_size, 1, groups=oup, bias=True)
        else:
            self.cheap_operation = conv_bn(oup, oup, dw_size, 1, groups=oup)
            if reparam:
                self.fusion_bn = Sequential([batch_norm(oup)])
        self.relu = nn.ReLU() if relu else nn.Identity()
        self.has_fusion = reparam and not deploy

    def construct(self, x):
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        if self.has_fusion:
            x2 = x2 + self.fusion_bn(x1)
        return self.relu(x2)

    def switch_to_deploy(self):
        """Replace the cheap op and its BN identity branch by one biased depthwise conv (idempotent)."""
        if not self.has_fusion:
            return
        conv, bn = self.cheap_operation[0], self.cheap_operation[1]
        fbn = self.fusion_bn[0]
        kernel, bias = fuse_cheap_branch(conv.weight.asnumpy(), bn_arrays(bn), bn_arrays(fbn), eps=bn.eps)
        self.cheap_operation = fused_conv(self.oup, self.oup, self.dw_size, 1, self.oup, kernel, bias)
        del self.fusion_bn
        self.has_fusion = False
        self.deploy = True


class RepGhostNet(GhostNet):
    """RepGhostNet: GhostNet's body with RepGhost modules, halved mid widths and a 2x wider final 1x1 conv."""

    cfgs = REPGHOSTNET_CFGS
    head_mult = 2

    def __init__(self, width=1.0, num_classes=1000, dropout=0.2, in_channels=3, deploy=False, reparam=True,
                 shortcut=True):
        super().__init__(width, num_classes, dropout, in_channels, module_kw={"deploy": deploy, "reparam": reparam},
                         shortcut=shortcut)

    @staticmethod
    def make_module(inp, oup, relu, layer_idx, deploy=False, reparam=True):
        del layer_idx
        return RepGhostModule(inp, oup, relu=relu, reparam=reparam, deploy=deploy)


def reparameterize(net):
    """Switch every re-parameterizable module of ``net`` (RepGhostNet, GhostNetV3) to its deploy form in place;
    returns ``net``.

    Parameters of the new convs are renamed to their full path so checkpoints saved afterwards load by name.
    """
    return switch_to_deploy(net)


def reparameterize_params(params, eps=BN_EPS):
    """Convert a train-form RepGhost parameter dict into the deploy-form dict (no network is built).

    ``params`` maps names to Parameters/Tensors/arrays, e.g. from ``mindspore.load_checkpoint``. Keys of other
    modules pass through; optimizer slots of the removed parameters (any key ending in one) are dropped.
    """
    def arr(key):
        value = params[key]
        return value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)

    prefixes = sorted(k[:-len(".fusion_bn.0.gamma")] for k in params if k.endswith(".fusion_bn.0.gamma"))
    removed, out = set(), {}
    for p in prefixes:
        dw, bn, fbn = f"{p}.cheap_operation.0.weight", f"{p}.cheap_operation.1", f"{p}.fusion_bn.0"
        kernel, bias = fuse_cheap_branch(arr(dw), [arr(f"{bn}.{k}") for k in BN_KEYS],
                                         [arr(f"{fbn}.{k}") for k in BN_KEYS], eps=eps)
        removed.update([dw] + [f"{bn}.{k}" for k in BN_KEYS] + [f"{fbn}.{k}" for k in BN_KEYS])
        out[f"{p}.cheap_operation.weight"] = Parameter(Tensor(kernel), name=f"{p}.cheap_operation.weight")
        out[f"{p}.cheap_operation.bias"] = Parameter(Tensor(bias), name=f"{p}.cheap_operation.bias")
    for key, value in params.items():
        if key in removed or any(key.endswith("." + r) for r in removed):
            continue
        out[key] = value if isinstance(value, Parameter) else Parameter(Tensor(np.asarray(
            value.asnumpy() if hasattr(value, "asnumpy") else value)), name=key)
    return out
