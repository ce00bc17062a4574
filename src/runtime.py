"""MindSpore context set-up shared by the entry points (device, mode, seed)."""
import mindspore as ms

from .config import ConfigError

DEVICES = ("CPU", "GPU", "Ascend")
MODES = {"GRAPH": ms.GRAPH_MODE, "PYNATIVE": ms.PYNATIVE_MODE}


def init_context(cfg):
    """Select device and execution mode from ``cfg`` and seed every random source."""
    if cfg.device_target not in DEVICES:
        raise ConfigError(f"device_target must be one of {', '.join(DEVICES)}, got '{cfg.device_target}'")
    mode = str(cfg.mode).upper()
    if mode not in MODES:
        raise ConfigError(f"mode must be GRAPH or PYNATIVE, got '{cfg.mode}'")
    ms.set_device(cfg.device_target)
    ms.set_context(mode=MODES[mode])
    ms.set_seed(cfg.seed)
