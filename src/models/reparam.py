"""Structural re-parameterization shared by RepGhostNet and GhostNetV3: parallel conv+BN branches (and BN-only
identity branches) of a trained module folded into one biased convolution for deployment.

Every branch is linear up to the sum, so ``sum_i BN_i(conv_i(x)) + BN_id(x)`` equals one conv whose kernel is the
sum of the BN-scaled kernels (smaller kernels zero-padded to the centre, the identity a centred 1) and whose bias is
the sum of the BN shifts (Ding et al., RepVGG 2021). The arithmetic runs in float64 and is used both by the in-place
switch of a built network and by the conversion of a train-form checkpoint, so both give identical weights.
"""
import numpy as np
from mindspore import Tensor

from .layers import conv2d

BN_EPS = 1e-5
BN_KEYS = ("gamma", "beta", "moving_mean", "moving_variance")
# Parameter-name fragments that only a module's train form has: RepGhost's BN identity branch, GhostNetV3's
# parallel ``*_rpr_*`` branches.
TRAIN_FORM_MARKERS = (".fusion_bn.", "_rpr_")


def is_train_form(names):
    """True when parameter ``names`` (a dict or iterable) include re-parameterizable branches: the train form of a
    RepGhostNet or GhostNetV3 (the deploy form has one biased conv per fused module). The project's one form check."""
    return any(marker in name for name in names for marker in TRAIN_FORM_MARKERS)


def bn_arrays(bn):
    """``(gamma, beta, mean, var)`` of a MindSpore BatchNorm cell as numpy arrays."""
    return [getattr(bn, key).asnumpy() for key in BN_KEYS]


def fuse_bn(kernel, gamma, beta, mean, var, eps=BN_EPS):
    """Fold BN into the preceding bias-free conv kernel: ``(kernel', bias')`` in float64."""
    std = np.sqrt(np.asarray(var, np.float64) + eps)
    scale = np.asarray(gamma, np.float64) / std
    return np.asarray(kernel, np.float64) * scale.reshape(-1, 1, 1, 1), beta - np.asarray(mean, np.float64) * scale


def identity_kernel(channels, kernel_size):
    """The depthwise kernel (C, 1, k, k) of the identity: a 1 at the centre of every channel's kernel."""
    kernel = np.zeros((channels, 1, kernel_size, kernel_size))
    kernel[:, 0, kernel_size // 2, kernel_size // 2] = 1.0
    return kernel


def fused_conv(in_chs, out_chs, kernel_size, stride, groups, kernel, bias):
    """The biased conv of a deployed module, holding the ``kernel`` and ``bias`` of :func:`fuse_branches`."""
    conv = conv2d(in_chs, out_chs, kernel_size, stride, groups, bias=True)
    conv.weight.set_data(Tensor(kernel))
    conv.bias.set_data(Tensor(bias))
    return conv


def fuse_branches(conv_bns, kernel_size, identity_bn=None, eps=BN_EPS):
    """Kernel and bias (float32) of ``sum(BN(conv(x)) for conv, BN in conv_bns) [+ identity_bn(x)]`` as one conv.

    ``conv_bns``: ``[(kernel, (gamma, beta, mean, var))]``; kernels smaller than ``kernel_size`` (a 1x1 scale
    branch) are zero-padded around their centre, which keeps a strided conv's sampling points when its padding is
    ``kernel_size // 2``. ``identity_bn`` only exists for depthwise convs with as many outputs as inputs.
    """
    kernel = bias = 0.0
    for weight, bn in conv_bns:
        pad = (kernel_size - weight.shape[-1]) // 2
        weight = np.pad(np.asarray(weight, np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        k, b = fuse_bn(weight, *bn, eps=eps)
        kernel, bias = kernel + k, bias + b
    if identity_bn is not None:
        k, b = fuse_bn(identity_kernel(len(identity_bn[0]), kernel_size), *identity_bn, eps=eps)
        kernel, bias = kernel + k, bias + b
    return np.asarray(kernel, np.float32), np.asarray(bias, np.float32)
