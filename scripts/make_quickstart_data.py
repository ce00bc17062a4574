"""Build the quickstart dataset from Fashion-MNIST (MIT, Debian package ``dataset-fashion-mnist``).

Default: the first N train images per class (from the 60k train set) and the first M per class from the 10k
t10k set as ``val``, written as PNG in the ImageNet folder layout and packed reproducibly (sorted entries, fixed
timestamps/owners, gzip mtime 0) into ``assets/quickstart/fashion_mnist_quickstart.tar.gz`` with LICENSE and
README. ``--full DIR`` instead writes all 60k/10k images as folders (not committed; full benchmark).

    python scripts/make_quickstart_data.py                      # fetches the .deb with apt-get download
    python scripts/make_quickstart_data.py --fmnist-dir DIR     # DIR holds the four *-ubyte.gz files
    python scripts/make_quickstart_data.py --full /data/fashion_mnist
"""
import argparse
import glob
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import cv2
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
from src.data.quickstart import QUICKSTART_ARCHIVE, QUICKSTART_NAME  # noqa: E402

CLASS_NAMES = ["t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
               "ankle_boot"]  # Fashion-MNIST label 0..9
LICENSE = """MIT License

Copyright (c) 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""
README = """# Fashion-MNIST quickstart set

Real 28x28 grayscale images from Fashion-MNIST (Zalando Research,
https://github.com/zalandoresearch/fashion-mnist), MIT licence (see LICENSE), taken from the Debian package
`dataset-fashion-mnist` (0.0~git20200523.55506a9). Layout: `train/<class>/*.png`, `val/<class>/*.png`.

- train: the first {train} images of each class in `train-images-idx3-ubyte` ({train_total} images)
- val: the first {val} images of each class in `t10k-images-idx3-ubyte` ({val_total} images)

File names keep the index in the source file (`train_00012.png` = image 12 of the 60k train set).
Rebuild: `python scripts/make_quickstart_data.py`.
"""


def load_idx(fmnist_dir, prefix):
    """Images (N, 28, 28) and labels (N,) of ``prefix`` ('train' or 't10k'); IDX: pixels at byte 16, labels at 8."""
    with gzip.open(os.path.join(fmnist_dir, f"{prefix}-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(fmnist_dir, f"{prefix}-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels


def fetch_fmnist(workdir):
    """Download and unpack the Debian package without root; return the folder with the IDX files."""
    subprocess.run(["apt-get", "download", "dataset-fashion-mnist"], cwd=workdir, check=True)
    deb = glob.glob(os.path.join(workdir, "*.deb"))[0]
    subprocess.run(["dpkg-deb", "-x", deb, workdir], check=True)
    return os.path.join(workdir, "usr", "share", "datasets", "fashion-mnist")


def select(labels, per_class):
    """Indices of the first ``per_class`` images of every class (all when ``per_class`` is None), in file order."""
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(len(CLASS_NAMES))]))


def encode_png(image):
    """Uncompressed PNG: gzip over the tar then compresses better than per-file deflate (measured 430 vs 480 B)."""
    return cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 0])[1].tobytes()


def entries(fmnist_dir, train_per_class, val_per_class):
    """Yield ``(relative path, bytes)`` for every image of both splits."""
    for split, prefix, per_class in (("train", "train", train_per_class), ("val", "t10k", val_per_class)):
        images, labels = load_idx(fmnist_dir, prefix)
        for i in select(labels, per_class):
            yield f"{split}/{CLASS_NAMES[labels[i]]}/{prefix}_{i:05d}.png", encode_png(images[i])


def write_archive(path, files):
    """Reproducible .tar.gz of ``files`` ((name, bytes) pairs) under the folder QUICKSTART_NAME."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(files):
            info = tarfile.TarInfo(f"{QUICKSTART_NAME}/{name}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fmnist-dir", help="folder with the *-ubyte.gz files (default: apt-get download)")
    parser.add_argument("--out", default=QUICKSTART_ARCHIVE, help="archive to write")
    parser.add_argument("--train-per-class", type=int, default=900)
    parser.add_argument("--val-per-class", type=int, default=100)
    parser.add_argument("--full", metavar="DIR", help="write all 60k/10k images as folders into DIR instead")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp()
    try:
        fmnist_dir = args.fmnist_dir or fetch_fmnist(workdir)
        if args.full:
            for name, data in entries(fmnist_dir, None, None):
                os.makedirs(os.path.join(args.full, os.path.dirname(name)), exist_ok=True)
                with open(os.path.join(args.full, name), "wb") as f:
                    f.write(data)
            print(f"wrote 70000 images to {args.full}")
            return
        files = list(entries(fmnist_dir, args.train_per_class, args.val_per_class))
        readme = README.format(train=args.train_per_class, val=args.val_per_class,
                               train_total=10 * args.train_per_class, val_total=10 * args.val_per_class)
        write_archive(args.out, files + [("LICENSE", LICENSE.encode()), ("README.md", readme.encode())])
        for name, text in (("LICENSE", LICENSE), ("README.md", readme)):
            with open(os.path.join(os.path.dirname(args.out), name), "w", encoding="utf-8") as f:
                f.write(text)
        print(f"wrote {args.out}: {len(files)} images, {os.path.getsize(args.out) / 1e6:.2f} MB")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
