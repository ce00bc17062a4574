"""Trainable parameters and MACs of a registered model, per stage and in total.

MACs count multiply-accumulates of convolutions and dense layers (the convention of the papers' FLOPs tables);
they are measured from one PyNative forward pass with forward hooks, so they follow the real output shapes.

    python -m src.tools.profile --model repghostnet_100 [--deploy] [--image_size 224] [--num_classes 1000]
"""
import argparse
import sys
from collections import OrderedDict

import mindspore as ms

from src.errors import ConfigError
from src.models import check_input_size, create_model, has_deploy_form
from src.models.trace import cell_macs


def _stage_of(name):
    """Group a parameter/cell path into a row of the report: stem, blocks.<i>, head, or the first path component
    (``classifier``; ``layer1`` ... of the CIFAR ResNets, ``feature`` of VGG)."""
    parts = name.split(".")
    if parts[0] == "blocks":
        return ".".join(parts[:2])
    if parts[0] in ("conv_stem", "conv1", "bn1"):
        return "stem"
    return "head" if parts[0] == "conv_head" else parts[0]


def profile_model(net, image_size=224, in_channels=3):
    """Return ``OrderedDict(stage -> (params, macs))`` for a single image of ``image_size``."""
    rows = OrderedDict()
    for name, param in net.parameters_and_names():
        if param.requires_grad:
            p, m = rows.get(_stage_of(name), (0, 0))
            rows[_stage_of(name)] = (p + int(param.size), m)
    for name, macs in cell_macs(net, image_size, in_channels).items():
        p, m = rows.get(_stage_of(name), (0, 0))
        rows[_stage_of(name)] = (p, m + macs)
    return rows


def totals(net, image_size=224, in_channels=3):
    """(trainable parameters, MACs) of ``net`` for one image of ``image_size``."""
    rows = profile_model(net, image_size, in_channels).values()
    return sum(p for p, _ in rows), sum(m for _, m in rows)


def format_report(model_name, rows):
    """A fixed-width table with a total line."""
    lines = [f"{model_name}", f"{'stage':<14}{'params':>14}{'MACs':>16}"]
    for stage, (p, m) in rows.items():
        lines.append(f"{stage:<14}{p:>14,}{m / 1e6:>15.2f}M")
    total_p = sum(p for p, _ in rows.values())
    total_m = sum(m for _, m in rows.values())
    lines.append(f"{'total':<14}{total_p:>14,}{total_m / 1e6:>15.2f}M")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="registered model name, e.g. ghostnet_100")
    parser.add_argument("--deploy", action="store_true", help="RepGhostNet / GhostNetV3: profile the re-parameterized form")
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--num_classes", type=int, default=1000)
    args = parser.parse_args(argv)

    try:
        check_input_size(args.model, args.image_size)
        if args.deploy and not has_deploy_form(args.model):
            raise ConfigError(f"--deploy only applies to repghostnet_* and ghostnetv3_* models, not {args.model}")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ms.set_device("CPU")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    kwargs = {"deploy": True} if args.deploy else {}
    net = create_model(args.model, num_classes=args.num_classes, **kwargs)
    print(format_report(args.model + (" (deploy)" if args.deploy else ""), profile_model(net, args.image_size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
