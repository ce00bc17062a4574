"""Command line of ``scripts/convert_pytorch_weights.py``."""
import argparse
import sys

from src.errors import ProjectError
from src.models import list_models

from .converter import convert_checkpoint
from .mapping import WRAPPER_KEYS


def build_parser():
    """Argument parser of the converter."""
    parser = argparse.ArgumentParser(
        description="Convert official (huawei-noah, RepGhost) or timm PyTorch weights, or a MindSpore model zoo "
                    "GhostNet checkpoint, into a MindSpore .ckpt of this project. Reads .pth/.pth.tar without "
                    "PyTorch; .safetensors needs the 'safetensors' package.")
    parser.add_argument("src", help="PyTorch checkpoint: .pth / .pth.tar / .bin (torch.save) or .safetensors; or a "
                                    "model zoo .ckpt (research/cv/ghostnet: ghostnet_1x, ghostnet_nose_1x, 600M)")
    parser.add_argument("--model", required=True, metavar="NAME",
                        help="registered model name: " + ", ".join(list_models()))
    parser.add_argument("--out", required=True, help="output MindSpore checkpoint (.ckpt), written atomically")
    parser.add_argument("--deploy", action="store_true",
                        help="RepGhostNet and GhostNetV3 only: fuse a train-form checkpoint into the re-parameterized deploy form")
    parser.add_argument("--class_names", default="", metavar="imagenet|FILE",
                        help="class names to record in the checkpoint (infer.py prints them): 'imagenet' for the "
                             "bundled ImageNet-1k list (the published ImageNet weights), or a file with one name a "
                             "line; default none (infer.py prints class indices)")
    parser.add_argument("--key", default=None,
                        help="entry of a training-checkpoint dict holding the weights "
                             f"(default: first present of {', '.join(WRAPPER_KEYS)})")
    return parser


def main(argv=None):
    """Run the conversion; returns the process exit code (0 ok, 2 bad input as every entry point; other
    exceptions are bugs and keep their traceback)."""
    args = build_parser().parse_args(argv)
    if not args.out.endswith(".ckpt"):
        print(f"error: --out must end with .ckpt, got {args.out}", file=sys.stderr)
        return 2
    try:
        report = convert_checkpoint(args.src, args.model, args.out, deploy=args.deploy, key=args.key,
                                    class_names=args.class_names)
    except ProjectError as exc:  # ConversionError, TorchReadError, unknown model name, unwritable output
        print(f"error: {exc}", file=sys.stderr)
        if getattr(exc, "details", ""):
            print(exc.details, file=sys.stderr)
        return 2
    source = f" (from '{report.source_key}')" if report.source_key else ""
    form = " deploy form" if report.deploy else ""
    print(f"wrote {report.out}: {report.model}{form}, {report.num_params} tensors, {report.num_classes} classes"
          f"{source}; dropped {len(report.dropped)} counters")
    if report.unused:
        print(f"warning: {len(report.unused)} source keys unused: {', '.join(report.unused)}", file=sys.stderr)
    return 0
