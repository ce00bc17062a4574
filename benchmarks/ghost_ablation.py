"""A small version of the GhostNet paper's ablation: a CIFAR ResNet, plain and ghostified with s = 2, 3, 4 and
d = 1, 3, 5, trained on real images; parameters, MACs, top-1 and CPU img/s per configuration.

The paper varies s at d = 3 and d at s = 2 on Ghost-VGG-16 / CIFAR-10 (300+ GPU epochs); here the same grid runs on
the bundled Fashion-MNIST quickstart set (9,000 training / 1,000 held-out images, 32 px) or, with ``--data``, any
ImageNet-layout folder (e.g. the full Fashion-MNIST from ``scripts/make_quickstart_data.py --full DIR``), with a
network and epoch budget that fits 2 CPU cores. Every configuration starts from the same seed and sees the same
batches. Inference img/s is measured at the end, interleaved across configurations in this one process (GRAPH mode,
batch 100); the median of ``--rounds`` rounds is reported.

Runs with the project's CPU defaults (:func:`src.runtime.cpu_defaults`: oneDNN capped at AVX2, without which
MindSpore 2.10's dense k x k convolutions are ~100x slower on this AVX-512 CPU).

    python benchmarks/ghost_ablation.py [--depth 20] [--epochs 4] [--data DIR] [--out results.json]
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import mindspore as ms  # noqa: E402  (after the sys.path set-up)
from mindspore import nn  # noqa: E402

from src.data import create_dataset, ensure_quickstart  # noqa: E402
from src.files import atomic_write  # noqa: E402
from src.runtime import cpu_defaults  # noqa: E402
from src.models import ghostify  # noqa: E402
from src.models.cifar import ResNetCIFAR  # noqa: E402
from src.tools.profile import totals  # noqa: E402
from src.train.metrics import evaluate  # noqa: E402
from src.train.schedule import warmup_cosine_lr  # noqa: E402
from src.train.step import TrainStep, loss_scale_sense, param_groups  # noqa: E402

# (label, ratio s, cheap kernel d); None = the plain network. The paper's two sweeps: s at d = 3, d at s = 2.
CONFIGS = [("plain", None, None), ("s=2 d=3", 2, 3), ("s=3 d=3", 3, 3), ("s=4 d=3", 4, 3),
           ("s=2 d=1", 2, 1), ("s=2 d=5", 2, 5)]
BATCH, EVAL_BATCH, SIZE = 64, 100, 32


def build(depth, ratio, dw_size, seed):
    """The seeded CIFAR ResNet, ghostified when ``ratio`` is given."""
    ms.set_seed(seed)
    net = ResNetCIFAR(depth, num_classes=10)
    if ratio:
        ghostify(net, ratio, dw_size)
    return net


def datasets(data, seed, epoch):
    common = {"image_size": SIZE, "crop_pct": 1.0, "num_workers": 2}
    train, _ = create_dataset("imagenet", data, "train", batch_size=BATCH, training=False, shuffle=True,
                              seed=seed + epoch, drop_remainder=True, **common)
    return train


def train(net, data, epochs, lr, seed):
    """SGD (momentum 0.9, wd 5e-4 on kernels, warmup + cosine), the project's train step; returns (s, img/s)."""
    steps = datasets(data, seed, 0).get_dataset_size()
    rates = warmup_cosine_lr(lr, 0.0, lr / 10, 0.5, epochs, steps)
    optimizer = nn.Momentum(param_groups(net, 5e-4), learning_rate=ms.Tensor(rates), momentum=0.9)
    step = TrainStep(nn.WithLossCell(net, nn.CrossEntropyLoss()), optimizer, loss_scale_sense("O0", "static", 1.0))
    step.set_train(True)
    start = time.time()
    for epoch in range(epochs):
        for images, labels in datasets(data, seed, epoch).create_tuple_iterator(num_epochs=1):
            loss = float(step(images, labels).asnumpy())
        print(f"  epoch {epoch + 1}/{epochs}: last loss {loss:.3f}, {time.time() - start:.0f}s", flush=True)
    elapsed = time.time() - start
    return elapsed, epochs * steps * BATCH / elapsed


def inference_rates(nets, rounds, batches=10):
    """Median img/s per net over ``rounds`` interleaved rounds of ``batches`` forward passes (after a warm-up)."""
    x = ms.Tensor(np.random.default_rng(0).normal(size=(EVAL_BATCH, 3, SIZE, SIZE)).astype(np.float32))
    samples = {label: [] for label in nets}
    for net in nets.values():
        net.set_train(False)
        net(x).asnumpy()  # compile
    for _ in range(rounds):
        for label, net in nets.items():
            start = time.perf_counter()
            for _ in range(batches):
                out = net(x)
            out.asnumpy()
            samples[label].append(batches * EVAL_BATCH / (time.perf_counter() - start))
    return {label: statistics.median(rates) for label, rates in samples.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20, help="CIFAR ResNet depth (6n + 2)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved inference timing rounds")
    parser.add_argument("--data", default=None, help="ImageNet-layout folder (default: the bundled quickstart set)")
    parser.add_argument("--configs", default=None, help="comma-separated subset of the labels, e.g. 'plain,s=2 d=3'")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    parser.add_argument("--timing_only", action="store_true",
                        help="only the interleaved inference img/s (it does not depend on the weights): no training")
    args = parser.parse_args()
    ms.set_device("CPU")
    cpu_defaults()
    ms.set_context(mode=ms.GRAPH_MODE)
    data = args.data or ensure_quickstart(os.path.join(ROOT, "data", "quickstart"))
    configs = [c for c in CONFIGS if args.configs is None or c[0] in args.configs.split(",")]
    val, _ = create_dataset("imagenet", data, "val", image_size=SIZE, batch_size=EVAL_BATCH, crop_pct=1.0)
    results, nets = {}, {}
    for label, ratio, dw_size in configs:
        net = build(args.depth, ratio, dw_size, args.seed)
        params, macs = totals(net, SIZE)
        print(f"{label}: {params:,} params, {macs / 1e6:.2f}M MACs", flush=True)
        results[label] = {"params": params, "macs": macs, "top1": float("nan"), "train_img_s": float("nan")}
        if not args.timing_only:
            seconds, train_rate = train(net, data, args.epochs, args.lr, args.seed)
            net.set_train(False)
            top1 = evaluate(net, val, 10)["top1"]
            print(f"  top-1 {top1:.4f}, training {seconds / 60:.1f} min ({train_rate:.0f} img/s)", flush=True)
            results[label].update(top1=top1, train_img_s=train_rate)
        nets[label] = net
    for label, rate in inference_rates(nets, args.rounds).items():
        results[label]["infer_img_s"] = rate
    print(f"\nResNet-{args.depth}, {args.epochs} epochs, {data}, ONEDNN_MAX_CPU_ISA={os.environ['ONEDNN_MAX_CPU_ISA']}")
    print(f"| network | params | MACs | top-1 | train img/s | inference img/s |\n|---|---|---|---|---|---|")
    for label, r in results.items():
        print(f"| {label} | {r['params']:,} | {r['macs'] / 1e6:.1f}M | {100 * r['top1']:.1f}% | "
              f"{r['train_img_s']:.0f} | {r['infer_img_s']:.0f} |")
    if args.out:
        with atomic_write(args.out, "w") as f:
            json.dump({"depth": args.depth, "epochs": args.epochs, "data": data, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
