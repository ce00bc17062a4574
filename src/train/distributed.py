"""Data-parallel set-up: initialise communication when launched by msrun or a rank table."""
import os

import mindspore as ms
from mindspore.communication import get_group_size, get_rank, init


def launched_distributed():
    """True when msrun (MS_WORKER_NUM / MS_ROLE) or a rank table (RANK_TABLE_FILE, RANK_SIZE > 1) started us."""
    return bool(os.environ.get("MS_ROLE") or os.environ.get("RANK_TABLE_FILE")
                or int(os.environ.get("RANK_SIZE", "1")) > 1)


def init_distributed(cfg):
    """Return ``(rank, world_size)``; in a distributed launch, set DATA_PARALLEL with mean gradients."""
    del cfg
    if not launched_distributed():
        return 0, 1
    init()
    rank, world = get_rank(), get_group_size()
    ms.reset_auto_parallel_context()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=world)
    return rank, world
