"""Host side of the aarch64 Lite runner: images -> the raw float32 NCHW file ``lite_runner`` reads.

``python -m src.deploy.arm.prepare --model M.ms --input_shape N C H W [--num_classes K] --out_dir DIR
[--labels_file F] IMAGE...`` writes ``DIR/images.f32`` (``infer.py``'s preprocessing at the model's H x W, with the
crop, interpolation and normalisation of the model's sidecar record when it has one), ``DIR/images.txt`` (the image
paths that decoded, in order) and, without ``--labels_file``, ``DIR/labels.txt`` with the names ``infer.py`` would
print (the record's, else class indices). ``--num_classes`` defaults to the record's class count; a model file
without a record needs it. Bad input is one ``error:`` line and exit code 2.
MindSpore is not imported.
"""
import argparse
import os
import sys

from src.config import load_config
from src.deploy import DeployError
from src.deploy.infer import list_images, preprocess
from src.deploy.labels import class_names
from src.errors import ProjectError
from src.files import atomic_write
from src.record import read_sidecar, reconcile

INPUT, NAMES, LABELS = "images.f32", "images.txt", "labels.txt"


def prepare(model_file, specs, input_shape, num_classes, out_dir, labels_file=""):
    """Write the runner's input files for ``specs`` (images, folders or .txt lists) into ``out_dir``;
    ``num_classes`` 0 takes the model record's, and a given one must equal it (:func:`src.record.reconcile`)."""
    channels, height, width = input_shape[1:]
    if channels != 3 or height != width or height <= 0:
        raise DeployError(f"{model_file} takes {'x'.join(map(str, input_shape))} inputs; expected N x 3 x S x S")
    record = read_sidecar(model_file)
    if record is None and num_classes <= 0:
        raise DeployError(f"{model_file} has no record naming its class count; give --num_classes K (K > 0)")
    paths = [path for spec in specs for path in list_images(spec)]
    cfg = reconcile(load_config("infer", ["--num_classes", str(num_classes)] if num_classes else []), model_file,
                    record)
    images, paths = preprocess(paths, cfg, height, skip_bad=any(os.path.isdir(s) for s in specs))
    with atomic_write(os.path.join(out_dir, INPUT)) as f:
        images.tofile(f)
    _write_lines(os.path.join(out_dir, NAMES), paths)
    names = None if labels_file else class_names("", cfg.num_classes, (record or {}).get("class_names"))
    if names:
        _write_lines(os.path.join(out_dir, LABELS), names)


def _write_lines(path, lines):
    with atomic_write(path, "w") as f:
        f.write("".join(f"{line}\n" for line in lines))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--input_shape", type=int, nargs=4, required=True)
    parser.add_argument("--num_classes", type=int, default=0, help="default: the model record's class count")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--labels_file", default="")
    parser.add_argument("images", nargs="+")
    args = parser.parse_args(argv)
    try:
        prepare(args.model, args.images, args.input_shape, args.num_classes, args.out_dir, args.labels_file)
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
