"""Layers shared by the GhostNet, RepGhostNet and GhostNetV2 families.

Names mirror the public PyTorch reference (huawei-noah / timm) so that converting a PyTorch state dict is a
mechanical key mapping. Only primitive-instance ops are used inside ``construct`` (``ops.Concat``,
``ops.ReduceMean``): ``mindspore.rewrite`` (AMP O1, golden-stick) rejects the functional forms, and
``nn.AdaptiveAvgPool2d`` does not export to ONNX.
"""
from mindspore import nn, ops

from .ops import Add, Mul


class Sequential(nn.SequentialCell):
    """``nn.SequentialCell`` whose item assignment keeps full parameter names.

    MindSpore 2.10's ``SequentialCell.__setitem__`` guesses the name prefix from its children's parameter names and
    crashes (IndexError) or mangles names when those contain the child keys deeper down (``primary_conv.0``) —
    which is exactly what ``mindspore.rewrite`` (used by ``amp.auto_mixed_precision(net, "O1")``) does to every
    block. The owning network records each container's path in ``path_prefix`` (see :func:`record_paths`).
    """

    path_prefix = ""

    def __setitem__(self, index, cell):
        key = list(self._cells.keys())[index]
        self._cells[key] = cell
        cell.update_parameters_name(self.path_prefix + key + ".")
        self.cell_list = list(self._cells.values())


def replace_cell(net, path, cell):
    """Put ``cell`` at ``path`` (dotted) inside ``net``, in place; containers also get their child list updated."""
    parent_path, _, key = path.rpartition(".")
    parent = net
    for part in parent_path.split(".") if parent_path else ():
        parent = parent.name_cells()[part]
    parent.insert_child_to_cell(key, cell)
    if hasattr(parent, "cell_list"):
        parent.cell_list = list(parent.name_cells().values())


def reparameterizable_cells(net):
    """The cells of ``net`` with a ``switch_to_deploy`` method (RepGhost and GhostNetV3 modules and bottlenecks),
    each with its ``deploy`` flag (False: still in the train form)."""
    return [(cell, getattr(cell, "deploy", False)) for _, cell in net.cells_and_names()
            if cell is not net and callable(getattr(cell, "switch_to_deploy", None))]


def switch_to_deploy(net):
    """Every re-parameterizable cell of ``net`` in its deployed form, in place, parameters renamed to their paths;
    returns ``net``."""
    for cell, _ in reparameterizable_cells(net):
        cell.switch_to_deploy()
    return sync_parameter_names(net)


def record_paths(net):
    """Tell every :class:`Sequential` inside ``net`` its parameter-name prefix."""
    for name, cell in net.cells_and_names():
        if isinstance(cell, Sequential):
            cell.path_prefix = name + "." if name else ""


def sync_parameter_names(net):
    """Rename every parameter of ``net`` to its full path after cells were swapped in place.

    A Cell built on its own names its parameters relative to itself; checkpoints load by these names, so a network
    edited in place (re-parameterization, :func:`~src.models.ghostify.ghostify`) must rename them. Returns ``net``.
    """
    for name, param in net.parameters_and_names():
        if param.name != name:
            param.name = name
    record_paths(net)
    return net


def make_divisible(v, divisor=4, min_value=None):
    """Round ``v`` to the nearest multiple of ``divisor``, never going below 90% of ``v`` (reference rounding)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def conv2d(in_chs, out_chs, kernel_size, stride=1, groups=1, bias=False, **padding):
    """A PyTorch-style convolution with symmetric ``k // 2`` padding and optional bias.

    Square kernels use explicit padding. Rectangular ones (GhostNetV2's 1x5 / 5x1, always stride 1) use
    ``pad_mode="same"`` — the same symmetric padding — because MindSpore 2.10's ONNX exporter writes an explicit
    (top, bottom, left, right) padding in the wrong order. ``padding`` (``pad_mode``, ``padding``, ``dilation``)
    overrides this: :func:`~src.models.ghostify.ghostify` copies them from the convolution it replaces.
    """
    if padding:
        pad = padding
    elif isinstance(kernel_size, int) or kernel_size[0] == kernel_size[1]:
        k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
        pad = {"pad_mode": "pad", "padding": k // 2}
    else:
        if stride != 1:
            raise ValueError("rectangular kernels are only supported with stride 1")
        pad = {"pad_mode": "same"}
    return nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, group=groups, has_bias=bias,
                     weight_init="HeNormal", bias_init="zeros", **pad)


def batch_norm(chs):
    """BatchNorm with PyTorch's defaults (momentum 0.1 there is 0.9 here, eps 1e-5)."""
    return nn.BatchNorm2d(chs, momentum=0.9, eps=1e-5)


def conv_bn(in_chs, out_chs, kernel_size, stride=1, groups=1, act_layer=None, **padding):
    """``Sequential(conv, bn[, act])`` — the reference's ``primary_conv`` / ``cheap_operation`` / shortcut shape."""
    layers = [conv2d(in_chs, out_chs, kernel_size, stride, groups, **padding), batch_norm(out_chs)]
    if act_layer is not None:
        layers.append(act_layer())
    return Sequential(layers)


class ConvBnAct(nn.Cell):
    """Conv + BN + act with the reference's names (``conv``, ``bn1``): the 1x1 conv that closes the block stack and
    GhostNetV3's re-parameterizable branches (``act_layer=None``: no activation)."""

    def __init__(self, in_chs, out_chs, kernel_size=1, stride=1, act_layer=nn.ReLU, groups=1):
        super().__init__()
        self.conv = conv2d(in_chs, out_chs, kernel_size, stride, groups)
        self.bn1 = batch_norm(out_chs)
        self.act1 = act_layer() if act_layer is not None else nn.Identity()

    def construct(self, x):
        return self.act1(self.bn1(self.conv(x)))


class HardSigmoid(nn.Cell):
    """``relu6(x + 3) / 6``, written with ops every exporter knows (ONNX's HardSigmoid has other defaults)."""

    def __init__(self):
        super().__init__()
        self.relu6 = nn.ReLU6()

    def construct(self, x):
        return self.relu6(x + 3.0) / 6.0


class HardSwish(nn.Cell):
    """``x * relu6(x + 3) / 6`` (GhostNet-600M's activation). MindSpore 2.10 cannot export ``nn.HSwish`` to ONNX
    ("Exporting HSwish operator is not yet supported"), so it is written with the ops of :class:`HardSigmoid`."""

    def __init__(self):
        super().__init__()
        self.gate = HardSigmoid()
        self.mul = Mul()

    def construct(self, x):
        return self.mul(x, self.gate(x))


class GlobalAvgPool(nn.Cell):
    """Mean over H and W, keeping dims (exports to ONNX, unlike ``AdaptiveAvgPool2d``)."""

    def __init__(self, keep_dims=True):
        super().__init__()
        self.mean = ops.ReduceMean(keep_dims=keep_dims)

    def construct(self, x):
        return self.mean(x, (2, 3))


class SqueezeExcite(nn.Cell):
    """Squeeze-and-excitation with a hard-sigmoid gate; reduced width ``make_divisible(chs * se_ratio, 4)``."""

    def __init__(self, chs, se_ratio=0.25, divisor=4):
        super().__init__()
        reduced = make_divisible(chs * se_ratio, divisor)
        self.pool = GlobalAvgPool()
        self.conv_reduce = conv2d(chs, reduced, 1, bias=True)
        self.act1 = nn.ReLU()
        self.conv_expand = conv2d(reduced, chs, 1, bias=True)
        self.gate = HardSigmoid()
        self.mul = Mul()

    def construct(self, x):
        s = self.conv_expand(self.act1(self.conv_reduce(self.pool(x))))
        return self.mul(x, self.gate(s))


class GhostBottleneck(nn.Cell):
    """Ghost bottleneck shared by all three families; ``module`` builds ghost1/ghost2.

    ghost1 (expand, act) -> [depthwise k x k stride + BN if stride > 1] -> [SE] -> ghost2 (project, linear)
    -> + shortcut (identity when shapes match, else depthwise conv + BN + 1x1 conv + BN). No activation after the add.
    ``shortcut=False`` (RepGhost's ``repghostnet_wo`` ablation) drops only the identity shortcut, as the official
    RepGhostBottleneck does: a block that changes the shape keeps its conv shortcut. ``use_shortcut`` says whether
    any shortcut is added, ``identity_shortcut`` whether it is the identity.
    ``module(in, out, relu, layer_idx)`` builds a ghost module; ghost2 is always built as layer 0, so GhostNetV2's
    attention (layer index > 1) only ever lands in ghost1, as in the reference. ``se_layer(chs, se_ratio)`` builds
    the squeeze-excite (GhostNet-600M rounds its width to 8). Subclasses with a re-parameterizable depthwise conv
    (GhostNetV3) override :meth:`make_depthwise` / :meth:`depthwise`; ``deploy`` asks for their deployed form.
    """

    def __init__(self, in_chs, mid_chs, out_chs, kernel_size=3, stride=1, se_ratio=0.0, module=None, layer_idx=0,
                 shortcut=True, se_layer=SqueezeExcite, deploy=False):
        super().__init__()
        self.stride = stride
        self.ghost1 = module(in_chs, mid_chs, relu=True, layer_idx=layer_idx)
        self.has_dw = stride > 1
        if self.has_dw:
            self.make_depthwise(mid_chs, kernel_size, stride, deploy)
        self.has_se = se_ratio is not None and se_ratio > 0.0
        if self.has_se:
            self.se = se_layer(mid_chs, se_ratio)
        self.ghost2 = module(mid_chs, out_chs, relu=False, layer_idx=0)
        self.identity_shortcut = in_chs == out_chs and stride == 1
        self.use_shortcut = shortcut or not self.identity_shortcut
        if not self.identity_shortcut:
            self.shortcut = Sequential([
                conv2d(in_chs, in_chs, kernel_size, stride, groups=in_chs),
                batch_norm(in_chs),
                conv2d(in_chs, out_chs, 1),
                batch_norm(out_chs),
            ])
        self.add = Add()

    def make_depthwise(self, chs, kernel_size, stride, deploy):
        """The strided depthwise conv between the ghost modules (``conv_dw`` + ``bn_dw``; no deployed form)."""
        del deploy
        self.conv_dw = conv2d(chs, chs, kernel_size, stride, groups=chs)
        self.bn_dw = batch_norm(chs)

    def depthwise(self, x):
        return self.bn_dw(self.conv_dw(x))

    def construct(self, x):
        out = self.ghost1(x)
        if self.has_dw:
            out = self.depthwise(out)
        if self.has_se:
            out = self.se(out)
        out = self.ghost2(out)
        if not self.use_shortcut:
            return out
        return self.add(out, x if self.identity_shortcut else self.shortcut(x))
