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

MIX = (16, 0x7FEB352D, 15, 0x846CA68B, 16)  # lowbias32: shift, multiply, shift, multiply, shift


def mix32(x, shift):
    """``lowbias32`` of a uint32 tensor (uint32 arithmetic wraps, as the hash needs)."""
    for i, k in enumerate(MIX):
        x = ops.bitwise_xor(x, shift(x, ms.Tensor(k, ms.uint32))) if i % 2 == 0 else x * ms.Tensor(k, ms.uint32)
    return x


class StepDropout(nn.Cell):
    """Inverted dropout with rate ``p``; its mask depends only on ``seed``, ``layer`` and the step counter
    ``clock`` (attached by :func:`use_step_dropout`, not a parameter of the network, so checkpoints are
    unchanged)."""

    def __init__(self, p, seed, layer):
        super().__init__()
        self.p = float(p)
        self.key = ms.Tensor((seed ^ (layer * 0x9E3779B9)) & 0xFFFFFFFF, ms.uint32)
        self.shift = ops.RightShift()
        self.clock = None

    def construct(self, x):
        if not self.training:
            return x
        step = mix32(mix32(self.key, self.shift) + ops.cast(self.clock.reshape(()), ms.uint32), self.shift)
        index = ops.cast(ops.arange(x.size, dtype=ms.int32), ms.uint32).reshape(x.shape)
        bits = self.shift(mix32(index + step, self.shift), ms.Tensor(8, ms.uint32))
        keep = ops.cast(bits, ms.float32) * (1.0 / (1 << 24)) >= self.p
        return x * ops.cast(keep, x.dtype) / (1.0 - self.p)


def dropout_rate(cell):
    """The rate of an ``nn.Dropout`` (built with ``p`` or with the deprecated ``keep_prob``)."""
    return cell.p if cell.p is not None else 1.0 - cell.keep_prob


def use_step_dropout(net, seed):
    """Replace every ``nn.Dropout`` of ``net`` by a :class:`StepDropout`; returns a function that attaches the
    step counter (the optimizer's ``global_step``, which exists only once the optimizer is built)."""
    swapped = []
    for _, cell in list(net.cells_and_names()):
        for child_name, child in list(cell.name_cells().items()):
            if isinstance(child, nn.Dropout):
                swapped.append(StepDropout(dropout_rate(child), seed, len(swapped)))
                setattr(cell, child_name, swapped[-1])

    def attach(clock):
        for cell in swapped:
            object.__setattr__(cell, "clock", clock)  # not registered: the counter belongs to the optimizer
    return attach
