"""Map PyTorch GhostNet / RepGhostNet / GhostNetV2 state dicts onto this project's parameter names.

Covers the official huawei-noah GhostNet and GhostNetV2 weights, the official RepGhost weights (train form and
re-parameterized form) and timm's ``ghostnet_*`` / ``repghostnet_*`` / ``ghostnetv2_*``: all share the module
names used here, so the mapping is mechanical — strip wrapper prefixes, drop counters, rename BatchNorm tensors.
MindSpore model zoo checkpoints (``research/cv/ghostnet``: GhostNet 1.0x, no-SE, 600M) use their own names, mapped
by :func:`zoo_to_project_names`.
"""
import re

import numpy as np

from src.errors import ProjectError

from .torch_reader import Opaque

WRAPPER_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model")  # timm's preference: EMA weights first
STRIP_PREFIXES = ("module.",)  # DataParallel / DistributedDataParallel / timm ModelEmaV2 wrappers
DROP_SUFFIXES = ("num_batches_tracked", "total_ops", "total_params")  # BN counter, thop profiler leftovers
BN_RENAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


class ConversionError(ProjectError, ValueError):
    """A checkpoint that cannot be converted; ``details`` holds an optional multi-line table."""

    def __init__(self, message, details=""):
        super().__init__(message)
        self.details = details


def _is_state_dict(obj):
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, np.ndarray) for v in obj.values())


def select_state_dict(obj, key=None):
    """Return ``(state_dict, key_used)`` from a loaded checkpoint.

    A bare state dict is used as is (``key_used`` None); a training checkpoint dict is unwrapped at ``key`` or,
    without one, at the first of :data:`WRAPPER_KEYS` present.
    """
    if key is None and _is_state_dict(obj):
        return obj, None
    if not isinstance(obj, dict):
        kind = obj.qualname if isinstance(obj, Opaque) else type(obj).__name__
        raise ConversionError(f"the checkpoint holds a {kind}, not a state dict")
    if key is not None:
        if key not in obj:
            raise ConversionError(f"key '{key}' not in checkpoint; top-level keys: {', '.join(map(str, obj))}")
        candidates = [key]
    else:
        candidates = [k for k in WRAPPER_KEYS if k in obj]
        if not candidates:
            raise ConversionError("no state dict found: expected tensors or one of the keys "
                                  f"{', '.join(WRAPPER_KEYS)}; top-level keys: {', '.join(map(str, obj))}")
    chosen = obj[candidates[0]]
    bad = sorted(k for k, v in chosen.items() if not isinstance(v, np.ndarray)) if isinstance(chosen, dict) else None
    if bad is None or not chosen:
        raise ConversionError(f"'{candidates[0]}' does not hold a state dict (found {chosen!r:.80})")
    if bad:
        raise ConversionError(f"'{candidates[0]}' holds non-tensor entries: {', '.join(bad[:5])}")
    return chosen, candidates[0]


def clean_state_dict(state_dict):
    """Strip wrapper prefixes, drop counters and rename BatchNorm tensors to MindSpore's names.

    Returns ``(params, dropped)``: float32 arrays by our naming convention, and the dropped source keys.
    A module is a BatchNorm when it has a ``running_mean``.
    """
    stripped, dropped = {}, []
    for key, value in state_dict.items():
        name = str(key)
        while name.startswith(STRIP_PREFIXES):
            name = name.split(".", 1)[1]
        if name.endswith(DROP_SUFFIXES):
            dropped.append(key)
            continue
        if name in stripped:
            raise ConversionError(f"two source keys map to '{name}' after prefix stripping")
        stripped[name] = value
    bn_modules = {k[:-len(".running_mean")] for k in stripped if k.endswith(".running_mean")}
    params = {}
    for name, value in stripped.items():
        module, _, leaf = name.rpartition(".")
        if module in bn_modules and leaf in BN_RENAMES:
            name = f"{module}.{BN_RENAMES[leaf]}"
        params[name] = np.ascontiguousarray(value, dtype=np.float32)
    return params, dropped


def format_table(headers, rows):
    """Plain-text table with left-aligned columns."""
    rows = [tuple(map(str, r)) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join([line.format(*headers), line.format(*("-" * w for w in widths))] +
                     [line.format(*r) for r in rows])


def map_to_model(params, target_shapes, model_name):
    """Match cleaned ``params`` against ``target_shapes`` (our name -> shape, in model order).

    Returns ``(mapped, unused)``: arrays in model order and the source names nothing in the model uses.
    Missing parameters or shape mismatches raise :class:`ConversionError` with a table of the offending keys.
    """
    rows = []
    for name, shape in target_shapes.items():
        if name not in params:
            rows.append((name, "missing", tuple(shape)))
        elif tuple(params[name].shape) != tuple(shape):
            rows.append((name, tuple(params[name].shape), tuple(shape)))
    if rows:
        n_missing = sum(r[1] == "missing" for r in rows)
        raise ConversionError(
            f"checkpoint does not fit {model_name}: {len(rows) - n_missing} shape mismatches, {n_missing} missing "
            "parameters (wrong --model?)", format_table(("parameter", "checkpoint", "model"), rows))
    unused = sorted(k for k in params if k not in target_shapes)
    return {name: params[name] for name in target_shapes}, unused


# MindSpore model zoo GhostNet names (research/cv/ghostnet/src/ghostnet.py, ghostnet600.py) -> ours, inside one
# bottleneck: every conv + BN is a ``ConvUnit(conv, bn)``, the strided depthwise conv is ``dw``, the shortcut is a
# SequentialCell of two ConvUnits.
ZOO_BLOCK_RULES = [
    (re.compile(r"^(ghost[12]\.(?:primary_conv|cheap_operation))\.conv\.(.+)$"), r"\1.0.\2"),
    (re.compile(r"^(ghost[12]\.(?:primary_conv|cheap_operation))\.bn\.(.+)$"), r"\1.1.\2"),
    (re.compile(r"^dw\.conv\.(.+)$"), r"conv_dw.\1"),
    (re.compile(r"^dw\.bn\.(.+)$"), r"bn_dw.\1"),
    (re.compile(r"^shortcut\.0\.conv\.(.+)$"), r"shortcut.0.\1"),
    (re.compile(r"^shortcut\.0\.bn\.(.+)$"), r"shortcut.1.\1"),
    (re.compile(r"^shortcut\.1\.conv\.(.+)$"), r"shortcut.2.\1"),
    (re.compile(r"^shortcut\.1\.bn\.(.+)$"), r"shortcut.3.\1"),
]
ZOO_CLOSING_RULES = [(re.compile(r"^conv\.(.+)$"), r"conv.\1"), (re.compile(r"^bn\.(.+)$"), r"bn1.\1")]
_ZOO_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")


def is_zoo_state(params):
    """True for a MindSpore model zoo GhostNet state (``ConvUnit`` names: ``...primary_conv.conv.weight``)."""
    return any(k.endswith(".primary_conv.conv.weight") for k in params)


def zoo_to_project_names(names, block_paths):
    """``{zoo name: our name}`` for the parameter ``names`` of a model zoo GhostNet checkpoint.

    The zoo numbers its bottlenecks flat (``blocks.<i>``) and puts the closing 1x1 ConvUnit at the next index;
    ``block_paths`` are our bottleneck paths in the same order (``blocks.<s>.<j>``) followed by the closing
    ConvBnAct's path. Names outside the blocks (stem, head, classifier) are the same; names no rule knows (optimizer
    state) map to themselves and end up unused.
    """
    mapping = {}
    for name in names:
        match = _ZOO_BLOCK.match(name)
        index = int(match.group(1)) if match else -1
        if not 0 <= index < len(block_paths):
            mapping[name] = name
            continue
        rules = ZOO_CLOSING_RULES if index == len(block_paths) - 1 else ZOO_BLOCK_RULES
        rest = match.group(2)
        for pattern, replacement in rules:
            if pattern.match(rest):
                rest = pattern.sub(replacement, rest)
                break
        else:
            if not rest.startswith("se."):
                mapping[name] = name
                continue
        mapping[name] = f"{block_paths[index]}.{rest}"
    return mapping
