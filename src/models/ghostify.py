"""Plug-and-play Ghost modules: turn the convolutions of any MindSpore network into Ghost modules in place.

The GhostNet paper's first claim is that its module is a drop-in replacement for an ordinary convolution
(Ghost-VGG-16, Ghost-ResNet-56 on CIFAR-10). :func:`ghostify` does that to a built network: every eligible
``nn.Conv2d`` becomes a :class:`~src.models.ghostnet.GhostModule` with the same input/output channels, kernel,
stride, padding and dilation, so the output shapes and the rest of the network are unchanged.
"""
import fnmatch
from dataclasses import dataclass, field

from mindspore import nn

from ..errors import ConfigError
from .ghostnet import GhostModule
from .layers import replace_cell, sync_parameter_names
from .repghost import RepGhostModule
from .trace import cell_macs


@dataclass
class GhostifyReport:
    """What :func:`ghostify` replaced and what it saved (MACs only when an ``image_size`` was given).

    ``cheap_macs`` are the MACs of the new modules' depthwise cheap operations: the paper's FLOPs figures for
    Ghost-VGG-16 / Ghost-ResNet-56 match the totals without them (see docs/models.md).
    """
    replaced: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)  # conv path -> reason
    params_before: int = 0
    params_after: int = 0
    macs_before: int = None
    macs_after: int = None
    cheap_macs: int = None

    def summary(self):
        """One line: convolutions replaced, parameter (and MAC) reduction."""
        text = (f"{len(self.replaced)} convolutions -> Ghost modules, {len(self.skipped)} kept; params "
                f"{self.params_before:,} -> {self.params_after:,} ({self.params_before / self.params_after:.2f}x)")
        if self.macs_before is not None:
            text += (f", MACs {self.macs_before / 1e6:.1f}M -> {self.macs_after / 1e6:.1f}M "
                     f"({self.macs_before / self.macs_after:.2f}x)")
        return text


def _skip_reason(name, conv, first, inside_ghost, skip):
    """Why the convolution at ``name`` stays as it is, or None when it becomes a Ghost module."""
    if name == first:
        return "first convolution (sees the input image)"
    if inside_ghost:
        return "already inside a Ghost module"
    if conv.group != 1:
        return "grouped/depthwise"
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in skip):
        return "matches a skip pattern"
    return None


def _check_skip(skip, convs):
    """Refuse ``skip`` patterns that match no convolution path: a typo would otherwise silently skip nothing."""
    unmatched = [p for p in skip if not any(fnmatch.fnmatchcase(name, p) for name in convs)]
    if unmatched:
        example = f"paths look like {convs[-1]!r}" if convs else "the network has none"
        raise ConfigError(f"ghostify skip pattern(s) {', '.join(map(repr, unmatched))} match no convolution "
                          f"(fnmatch on the cell path; {example})")


def _ghost_from_conv(conv, ratio, dw_size, relu):
    """A Ghost module with ``conv``'s channels, kernel, stride, padding and dilation."""
    padding = {"pad_mode": conv.pad_mode, "padding": conv.padding, "dilation": conv.dilation}
    return GhostModule(conv.in_channels, conv.out_channels, conv.kernel_size, ratio, dw_size, conv.stride,
                       relu=relu, padding=padding)


def ghostify(net, ratio=2, dw_size=3, skip=(), relu=False, image_size=None, in_channels=3):
    """Replace every eligible ``nn.Conv2d`` of ``net`` by a Ghost module in place; returns a :class:`GhostifyReport`.

    Eligible: not the network's first convolution (in definition order: the stem, which sees the image), not
    grouped or depthwise, not already part of a Ghost/RepGhost module, and no match of the ``fnmatch`` patterns
    ``skip`` on its path (e.g. ``("*.se.*", "conv_head")``; a pattern that matches no convolution is a
    :class:`~src.errors.ConfigError`, as is a ``net`` that is not an ``nn.Cell``). ``ratio`` (s) and ``dw_size``
    (d) are the paper's hyper-parameters. ``relu=False`` keeps the module linear like the convolution it replaces
    (the network's own BN/activation after it still apply). With ``image_size``, MACs are measured before and after
    (one PyNative forward pass each). Parameters are renamed to their new paths, so checkpoints of the result load by name.
    """
    if not isinstance(net, nn.Cell):
        raise ConfigError(f"ghostify needs a MindSpore nn.Cell, got {type(net).__name__}")
    if isinstance(skip, str):
        skip = (skip,)
    if ratio < 2 or dw_size % 2 != 1:
        raise ValueError(f"ghostify needs ratio >= 2 and an odd dw_size, got ratio {ratio}, dw_size {dw_size}")

    def count_params():
        return sum(int(p.size) for p in net.trainable_params())

    cells = dict(net.cells_and_names())
    convs = [name for name, cell in cells.items() if isinstance(cell, nn.Conv2d)]
    _check_skip(skip, convs)
    report = GhostifyReport(params_before=count_params())
    if image_size:
        report.macs_before = sum(cell_macs(net, image_size, in_channels).values())
    ghost_paths = [name + "." for name, cell in cells.items() if isinstance(cell, (GhostModule, RepGhostModule))]
    for name in convs:
        reason = _skip_reason(name, cells[name], convs[0], any(name.startswith(p) for p in ghost_paths), skip)
        if reason:
            report.skipped[name] = reason
            continue
        replace_cell(net, name, _ghost_from_conv(cells[name], ratio, dw_size, relu))
        report.replaced.append(name)
    sync_parameter_names(net)
    report.params_after = count_params()
    if image_size:
        macs = cell_macs(net, image_size, in_channels)
        report.macs_after = sum(macs.values())
        report.cheap_macs = sum(m for path, m in macs.items()
                                if path.rpartition(".cheap_operation")[0] in report.replaced)
    return report
