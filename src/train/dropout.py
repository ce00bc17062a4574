"""Dropout whose mask is a function of (seed, layer, optimizer step): a resumed run drops what an uninterrupted one
drops.

MindSpore's CPU ``Dropout`` kernel keeps its random state inside the compiled graph, out of reach of any
checkpoint, and its seed/offset ops (``mint`` dropout, ``RandLikeExt``) are Ascend-only. So training swaps each
``nn.Dropout`` for :class:`StepDropout`, a counter-based generator: element ``i`` of layer ``l`` at step ``s`` is
kept when ``hash(i + hash(hash(seed ^ l) + s))`` is at or above ``p * 2**32`` (``lowbias32``, a bijective integer
mixer). The step is the optimizer's ``global_step``, which ``last_state.ckpt`` already holds.
"""
import mindspore as ms
from mindspore import nn, ops

class StepDropout(nn.Cell):
    """Inverted dropout with rate ``p``; its mask depends only on ``seed``, ``layer`` and the step counter
    ``clock`` (attached by :func:`attach_step_clock`, not a parameter of the network, so checkpoints are
    unchanged). Everything ``construct`` uses is an attribute: AMP O1 rewrites the Cell into generated code that
    sees no module globals of this file."""

    def __init__(self, p, seed, layer):
        super().__init__()
        self.uses_step_clock = True  # an instance attribute: AMP O1's rewritten copies of this Cell keep it
        self.p = float(p)
        self.key = ms.Tensor((seed ^ (layer * 0x9E3779B9)) & 0xFFFFFFFF, ms.uint32)
        self.shift = ops.RightShift()
        self.bits = {k: ms.Tensor(k, ms.uint32) for k in (8, 15, 16)}
        self.multipliers = (ms.Tensor(0x7FEB352D, ms.uint32), ms.Tensor(0x846CA68B, ms.uint32))
        self.clock = None

    def mix(self, x):
        """``lowbias32`` of a uint32 tensor: shift-xor 16, multiply, shift-xor 15, multiply, shift-xor 16
        (uint32 arithmetic wraps, as the hash needs)."""
        x = ops.bitwise_xor(x, self.shift(x, self.bits[16])) * self.multipliers[0]
        x = ops.bitwise_xor(x, self.shift(x, self.bits[15])) * self.multipliers[1]
        return ops.bitwise_xor(x, self.shift(x, self.bits[16]))

    def construct(self, x):
        if not self.training:
            return x
        step = self.mix(self.mix(self.key) + ops.cast(self.clock.reshape(()), ms.uint32))
        index = ops.cast(ops.arange(x.size, dtype=ms.int32), ms.uint32).reshape(x.shape)
        bits = self.shift(self.mix(index + step), self.bits[8])
        keep = ops.cast(bits, ms.float32) * (1.0 / (1 << 24)) >= self.p
        return x * ops.cast(keep, x.dtype) / (1.0 - self.p)


def dropout_rate(cell):
    """The rate of an ``nn.Dropout`` (built with ``p`` or with the deprecated ``keep_prob``)."""
    return cell.p if cell.p is not None else 1.0 - cell.keep_prob


def use_step_dropout(net, seed):
    """Replace every ``nn.Dropout`` of ``net`` by a :class:`StepDropout`; returns how many were replaced."""
    swapped = 0
    for _, cell in list(net.cells_and_names()):
        for child_name, child in list(cell.name_cells().items()):
            if isinstance(child, nn.Dropout):
                setattr(cell, child_name, StepDropout(dropout_rate(child), seed, swapped))
                swapped += 1
    return swapped


def attach_step_clock(net, clock):
    """Give every :class:`StepDropout` of the network that trains (after AMP, whose O1 rewrite copies the Cells)
    the step counter ``clock``: the optimizer's ``global_step``, which exists only once the optimizer is built."""
    for _, cell in net.cells_and_names():
        if getattr(cell, "uses_step_clock", False):
            object.__setattr__(cell, "clock", clock)  # not registered: the counter belongs to the optimizer
