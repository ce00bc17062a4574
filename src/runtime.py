"""MindSpore context set-up shared by the entry points (device, mode, seed, CPU threads and kernels)."""
import os

import mindspore as ms

from .errors import ConfigError

DEVICES = ("CPU", "GPU", "Ascend")
MODES = {"GRAPH": ms.GRAPH_MODE, "PYNATIVE": ms.PYNATIVE_MODE}
# On AVX-512 CPUs MindSpore 2.10 hands oneDNN plain-NCHW convolutions, for which oneDNN 3.10 picks its reference
# kernel for every kernel size above 1x1 (ONEDNN_VERBOSE: "jit_uni_ncsp:conv+ref:any"): a depthwise 3x3 runs at
# ~0.02 GMAC/s. Capped at AVX2, oneDNN takes its jit im2col+GEMM path instead: GhostNet 1.0x in GRAPH mode ran
# 8.7x faster at batch 1 and 13x at batch 32 (docs/benchmarks.md "Performance"). A user's own setting wins.
ONEDNN_ISA = "AVX2"
_threads_set = []


def available_cores():
    """CPU cores this process may run on (its affinity mask, which containers and taskset restrict)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_defaults(threads=0):
    """Fast CPU kernels and one MindSpore kernel thread per available core (``threads`` > 0 overrides; 2.10's
    default is 25 threads whatever the machine). Call before the first MindSpore op; later calls keep the
    first thread count (MindSpore refuses to change it)."""
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", ONEDNN_ISA)
    if not _threads_set:
        ms.device_context.cpu.op_tuning.threads_num(int(threads) or available_cores())
        _threads_set.append(int(threads) or available_cores())


def device_available(target):
    """Whether this MindSpore build (and machine) can run on ``target`` (CPU, GPU or Ascend)."""
    return getattr(ms.device_context, target.lower()).is_available()


def check_device(target):
    """A device the installed MindSpore cannot use is a one-line error naming one it can use (the first of
    :data:`DEVICES` it has; probing stops there, as probing Ascend logs a missing-library line)."""
    if target not in DEVICES:
        raise ConfigError(f"device_target must be one of {', '.join(DEVICES)}, got '{target}'")
    if not device_available(target):
        usable = next((d for d in DEVICES if d != target and device_available(d)), "CPU")
        raise ConfigError(f"device_target {target} is not available in this MindSpore {ms.__version__} build "
                          f"(it runs on {usable}); pass --device_target {usable}")


def init_context(cfg):
    """Select device and execution mode from ``cfg``, apply the CPU defaults and seed every random source."""
    check_device(cfg.device_target)
    mode = str(cfg.mode).upper()
    if mode not in MODES:
        raise ConfigError(f"mode must be GRAPH or PYNATIVE, got '{cfg.mode}'")
    if cfg.cpu_threads < 0:
        raise ConfigError(f"cpu_threads must be >= 0 (0 = one per available core), got {cfg.cpu_threads}")
    ms.set_device(cfg.device_target)
    if cfg.device_target == "CPU":
        cpu_defaults(cfg.cpu_threads)
    ms.set_context(mode=MODES[mode])
    ms.set_seed(cfg.seed)
