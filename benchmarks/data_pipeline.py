"""Data pipeline at ImageNet scale: start-up on a 50k-file tree, decode+augment img/s, training img/s.

    python -m benchmarks.data_pipeline startup [--files 50000] [--old PATH]
    python -m benchmarks.data_pipeline throughput [--files 1500] [--batches 40]
    python -m benchmarks.data_pipeline train [--steps 12] [--old PATH]

``startup``: a generated ImageNet-layout tree of small real-content JPEGs (Fashion-MNIST tiles); the time until the
training set yields its first batch, in a fresh process per measurement: first run (cold decode cache), second run,
resumed run (start at epoch 3), for 1 rank and for 2 ranks started together (each checks only its shard).
``throughput``: ImageNet-sized JPEGs (500x375 real photos, quality 90), the training transforms at 224 px,
batches of 32, img/s for the Python decoder and the C++ path with 1 and 2 workers; the demand of the training step
(GhostNet 1.0x, 224 px, batch 32, GRAPH mode) for comparison. ``train``: img/s of ``train.py`` for GhostNet 1.0x at
224 px and for the quickstart recipe. ``--old PATH``: also measure a checkout of the code before this pipeline
(git worktree), for before/after figures. Every row runs in its own process, one after the other.
"""
import argparse
import glob
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from src.errors import ROOT

PROBE = r"""
import json, os, sys, time
t0 = time.time()
sys.path.insert(0, sys.argv[1])
from src.data import create_dataset
kwargs = json.loads(sys.argv[2])
ds, _ = create_dataset("imagenet", sys.argv[3], "train", **kwargs)
it = ds.create_tuple_iterator(num_epochs=1, output_numpy=True)
next(it)
print(json.dumps({"ready_s": time.time() - t0}))
"""

RATE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from src.data import create_dataset
kwargs = json.loads(sys.argv[2])
ds, _ = create_dataset("imagenet", sys.argv[3], "train", **kwargs)
it = ds.create_tuple_iterator(num_epochs=1, output_numpy=True)
batches = int(sys.argv[4])
for _ in range(3):
    next(it)
t0 = time.time()
for _ in range(batches):
    next(it)
print(json.dumps({"img_s": batches * kwargs["batch_size"] / (time.time() - t0)}))
"""


def run_json(code, *args, env=None):
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def quickstart_tiles():
    import cv2

    from src.data import ensure_quickstart

    root = ensure_quickstart(os.path.join(ROOT, "data", "quickstart"))
    return [cv2.imread(p, cv2.IMREAD_GRAYSCALE) for p in sorted(glob.glob(f"{root}/train/*/*.png"))[:2000]]


def small_tree(root, files, classes=100):
    """``files`` 64x64 RGB JPEGs of real content in ``classes`` folders (written once)."""
    import cv2
    import numpy as np

    if os.path.isdir(root):
        return root
    tiles, rng = quickstart_tiles(), np.random.default_rng(0)
    tmp = root + ".partial"
    for i in range(files):
        folder = os.path.join(tmp, "train", f"c{i % classes:03d}")
        os.makedirs(folder, exist_ok=True)
        a, b, c = (cv2.resize(tiles[j], (64, 64)) for j in rng.integers(len(tiles), size=3))
        cv2.imwrite(os.path.join(folder, f"{i:06d}.jpg"), np.stack([a, b, c], -1))
    os.rename(tmp, root)
    return root


def large_tree(root, files, classes=10):
    """``files`` ImageNet-sized JPEGs (500x375, quality 90) cut from the 20 real photos foolbox ships."""
    import cv2
    import numpy as np

    if os.path.isdir(root):
        return root
    spec = importlib.util.find_spec("foolbox")  # only for the 20 real ImageNet photos it ships
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data") if spec else ""
    photos = [cv2.imread(p) for p in sorted(glob.glob(os.path.join(folder, "imagenet_*.jpg")))]
    if not photos:
        raise SystemExit("needs the 20 real photos of foolbox==3.3.4 (pip install --no-deps foolbox==3.3.4)")
    rng, tmp = np.random.default_rng(0), root + ".partial"
    for i in range(files):
        folder = os.path.join(tmp, "train", f"c{i % classes:02d}")
        os.makedirs(folder, exist_ok=True)
        a, b = (photos[j] for j in rng.integers(len(photos), size=2))
        image = np.concatenate([cv2.resize(a, (250, 375)), cv2.resize(b, (250, 375))], axis=1)
        cv2.imwrite(os.path.join(folder, f"{i:06d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    os.rename(tmp, root)
    return root


def startup(args):
    tree = small_tree(os.path.join(args.work, f"small{args.files}"), args.files)
    codes = [("new", ROOT)] + ([("old", args.old)] if args.old else [])
    print(f"start-up on {args.files} JPEGs (64x64), time to the first batch, fresh process each")
    results = {}
    for label, code in codes:
        for world in (1, 2):
            cache = tempfile.mkdtemp(dir=args.work, prefix="cache-")  # each world size starts cold
            for run in ("first", "second", "resumed"):
                base = {"image_size": 32, "batch_size": 64, "num_workers": 2}
                if label == "new":
                    base["cache_dir"] = cache
                    base["start_epoch"] = 3 if run == "resumed" else 0
                procs = []
                for rank in range(world):
                    kw = dict(base, **({"num_shards": world, "shard_id": rank} if world > 1 else {}))
                    procs.append(subprocess.Popen([sys.executable, "-c", PROBE, code, json.dumps(kw), tree],
                                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                                  cwd=ROOT))
                times = [json.loads(p.communicate()[0].strip().splitlines()[-1])["ready_s"] for p in procs]
                results[(label, world, run)] = max(times)
                print(f"  {label:3s} {world} rank(s) {run:8s} run: {max(times):6.1f} s")
    return results


def throughput(args):
    tree = large_tree(os.path.join(args.work, f"large{args.files}"), args.files)
    print(f"decode + train augment at 224 px, batch 32, {args.files} JPEGs 500x375 (~"
          f"{statistics.mean(os.path.getsize(p) for p in glob.glob(tree + '/train/*/*.jpg')[:200]) / 1e3:.0f} kB)")
    for decoder in ("python", "cpp"):
        for workers in (1, 2):
            kw = {"image_size": 224, "batch_size": 32, "num_workers": workers, "decoder": decoder,
                  "cache_dir": os.path.join(args.work, "cache-large")}
            rate = run_json(RATE, ROOT, json.dumps(kw), tree, args.batches)["img_s"]
            print(f"  {decoder:6s} decoder, {workers} worker(s): {rate:7.1f} img/s")
    step = train_rate(ROOT, "ghostnet_100", 224, 32, 8, tree, args.work)
    print(f"  demand of the training step (ghostnet_100, 224 px, batch 32, GRAPH): {step:.1f} img/s")


def train_rate(code, model, size, batch, steps, data, work, extra=(), env=None):
    """Median img/s of ``train.py`` (checkout ``code``, extra environment ``env``) over logged steps after the
    first two (compile)."""
    out = tempfile.mkdtemp(dir=work, prefix="train-")
    cmd = [sys.executable, os.path.join(code, "train.py"), "--model", model, "--image_size", str(size),
           "--batch_size", str(batch), "--data_path", data, "--epochs", "1", "--eval_interval", "0",
           "--max_steps_per_epoch", str(steps), "--log_interval", "1", "--output_dir", out, "--num_classes",
           str(len(os.listdir(os.path.join(data, "train")))), "--ema", "false", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=code, env={**os.environ, **(env or {})})
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    with open(os.path.join(out, "train.log"), encoding="utf-8") as f:
        rates = [float(x) for x in re.findall(r"([\d.]+) img/s", f.read())]
    return statistics.median(rates[2:])


def train(args):
    from src.data import ensure_quickstart

    large = large_tree(os.path.join(args.work, "large1500"), 1500)
    quick = ensure_quickstart(os.path.join(ROOT, "data", "quickstart"))
    # the old code had no CPU defaults: "old, oneDNN capped" separates the pipeline's gain from the kernels'
    runs = [("new", ROOT, None)] + ([("old", args.old, None), ("old, oneDNN capped", args.old,
                                                                 {"ONEDNN_MAX_CPU_ISA": "AVX2"})] if args.old else [])
    for label, code, env in runs:
        big = train_rate(code, "ghostnet_100", 224, 32, args.steps, large, args.work, env=env)
        small = train_rate(code, "ghostnet_050", 32, 64, 4 * args.steps, quick, args.work,
                           ("--config", os.path.join(code, "configs", "quickstart.yaml")), env=env)
        print(f"  {label}: ghostnet_100 224 px batch 32: {big:6.1f} img/s   quickstart (ghostnet_050 32 px batch 64): "
              f"{small:6.1f} img/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["startup", "throughput", "train"])
    parser.add_argument("--files", type=int, default=None)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--old", default="", help="checkout of the previous pipeline (git worktree) to compare")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "ghostnet_bench"))
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    args.files = args.files or {"startup": 50000, "throughput": 1500, "train": 0}[args.what]
    start = time.time()
    {"startup": startup, "throughput": throughput, "train": train}[args.what](args)
    print(f"({time.time() - start:.0f} s, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
