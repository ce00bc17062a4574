"""Per-step learning-rate schedule: linear warmup then cosine decay.

Hand-written because MindSpore's list helpers (``nn.warmup_lr``, ``nn.cosine_decay_lr``) change the rate once per
epoch; the published recipes warm up and decay per step. The list is given to the optimizer as a dynamic LR, so a
resumed run (which restores the optimizer's ``global_step``) continues on the same curve.
"""
import math

import numpy as np


def warmup_cosine_lr(lr, min_lr, warmup_lr, warmup_epochs, epochs, steps_per_epoch):
    """Float32 array of one learning rate per optimizer step for the whole run."""
    total = max(1, int(epochs * steps_per_epoch))
    warmup = min(total, int(round(warmup_epochs * steps_per_epoch)))
    rates = np.empty(total, np.float32)
    for step in range(total):
        if step < warmup:
            rates[step] = warmup_lr + (lr - warmup_lr) * step / warmup
        else:
            progress = (step - warmup) / max(1, total - warmup)
            rates[step] = min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))
    return rates
