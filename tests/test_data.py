"""Data pipeline tests on real Fashion-MNIST images (the quickstart archive) arranged as ImageNet and Pets trees.

The trees contain every bad-file kind of the real Pets archive: PNG content under .jpg (RGB and RGBA), a palette
GIF under .jpg, a grayscale JPEG, a truncated JPEG (decodes partially), non-image bytes under .jpg, a .mat file
and an image no list references.
"""
import glob
import io
import os
import shutil
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image

from src.data import create_dataset, decode_image, ensure_quickstart, eval_preprocess, read_image
from src.data.quickstart import QUICKSTART_ARCHIVE

FMNIST_CLASSES = ["ankle_boot", "bag", "coat", "dress", "pullover", "sandal", "shirt", "sneaker", "t-shirt_top",
                  "trouser"]


@pytest.fixture(scope="session")
def quickstart(tmp_path_factory):
    return ensure_quickstart(str(tmp_path_factory.mktemp("qs")))


@pytest.fixture(scope="session")
def tiles(quickstart):
    """60 real 28x28 gray images."""
    return [cv2.imread(p, cv2.IMREAD_GRAYSCALE) for p in sorted(glob.glob(f"{quickstart}/train/*/*.png"))[::150]]


def photo(tiles, seed, rows=5, cols=7):
    """An RGB 'photo' of real content: each channel a different mosaic of Fashion-MNIST images (e.g. 140x196)."""
    rng = np.random.default_rng(seed)
    channels = [np.block([[tiles[i] for i in row] for row in rng.integers(len(tiles), size=(rows, cols))])
                for _ in range(3)]
    return np.stack(channels, -1)


def encode(rgb, fmt, mode="RGB"):
    buf = io.BytesIO()
    Image.fromarray(rgb).convert(mode).save(buf, fmt)
    return buf.getvalue()


def bad_kinds(rgb):
    """Encoded bytes of each awkward kind, keyed by kind; all but 'text' must decode."""
    jpeg = encode(rgb, "JPEG")
    return {"png": encode(rgb, "PNG"), "rgba_png": encode(rgb, "PNG", "RGBA"), "gif": encode(rgb, "GIF", "P"),
            "gray": encode(rgb, "JPEG", "L"), "truncated": jpeg[:len(jpeg) * 2 // 3], "text": b"not an image\n" * 9}


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


@pytest.fixture(scope="session")
def imagenet_tree(quickstart, tiles, tmp_path_factory):
    """3 classes x 5 real PNGs per split; train/ also holds each bad kind under .jpg and a .txt (ignored)."""
    root = str(tmp_path_factory.mktemp("imagenet"))
    for split, start in (("train", 0), ("val", 5)):
        for name in ("bag", "coat", "sneaker"):
            os.makedirs(f"{root}/{split}/{name}")
            for p in sorted(glob.glob(f"{quickstart}/{split}/{name}/*.png"))[start:start + 5]:
                shutil.copy(p, f"{root}/{split}/{name}/")
    for i, (kind, data) in enumerate(bad_kinds(photo(tiles, 0)).items()):
        write(f"{root}/train/{('bag', 'coat', 'sneaker')[i % 3]}/{kind}.jpg", data)
    write(f"{root}/train/bag/notes.txt", b"ignored: not an image extension")
    return root


PETS_ROWS = {  # name -> CLASS_ID; the names reuse the real archive's known bad files
    "trainval.txt": {"Abyssinian_1": 1, "Abyssinian_2": 1, "Abyssinian_5": 1, "Abyssinian_34": 1,
                     "american_bulldog_1": 2, "american_bulldog_2": 2, "Egyptian_Mau_14": 3, "Egyptian_Mau_129": 3,
                     "chihuahua_121": 4, "chihuahua_2": 4, "beagle_116": 5, "beagle_3": 5, "beagle_404": 5},
    "test.txt": {"Abyssinian_7": 1, "american_bulldog_8": 2, "Egyptian_Mau_9": 3, "chihuahua_10": 4, "beagle_11": 5},
}
MISSING = "beagle_404"  # listed, but no such file
PETS_CLASSES = ["Abyssinian", "american_bulldog", "Egyptian_Mau", "chihuahua", "beagle"]
PETS_FILES = {"Abyssinian_5": "png", "Egyptian_Mau_14": "rgba_png", "Abyssinian_34": "gif",
              "Egyptian_Mau_129": "gray", "chihuahua_121": "truncated", "beagle_116": "text"}


@pytest.fixture(scope="session")
def pets_tree(tiles, tmp_path_factory):
    """Pets layout with real-content JPEGs, the bad kinds, a .mat file, an unlisted image and comment lines."""
    root = str(tmp_path_factory.mktemp("pets"))
    for seed, name in enumerate(n for rows in PETS_ROWS.values() for n in rows if n != MISSING):
        rgb = photo(tiles, seed + 1, rows=4 + seed % 3, cols=6)
        write(f"{root}/images/{name}.jpg", bad_kinds(rgb)[PETS_FILES[name]] if name in PETS_FILES else
              encode(rgb, "JPEG"))
    write(f"{root}/images/Egyptian_Mau_999.jpg", encode(photo(tiles, 99), "JPEG"))  # in no list
    write(f"{root}/images/Abyssinian_100.mat", b"MATLAB 5.0 MAT-file" + bytes(100))
    for list_name, rows in PETS_ROWS.items():
        lines = ["#Image CLASS-ID SPECIES BREED ID", "#ID: 1:37 Class ids"]
        lines += [f"{n} {c} {1 if n[0].isupper() else 2} {c}" for n, c in rows.items()]
        write(f"{root}/annotations/{list_name}", ("\n".join(lines) + "\n").encode())
    return root


def collect(dataset):
    """All (images, labels) of one pass as numpy arrays."""
    batches = list(dataset.create_tuple_iterator(num_epochs=1, output_numpy=True))
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def created(*args, **kwargs):
    """``create_dataset`` plus the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = create_dataset(*args, **kwargs)
    return result, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_quickstart_archive(quickstart):
    assert os.path.getsize(QUICKSTART_ARCHIVE) <= 5e6
    assert sorted(os.listdir(f"{quickstart}/train")) == FMNIST_CLASSES
    assert len(glob.glob(f"{quickstart}/train/*/*.png")) == 9000
    assert len(glob.glob(f"{quickstart}/val/*/*.png")) == 1000
    assert "MIT License" in open(f"{quickstart}/LICENSE", encoding="utf-8").read()
    assert ensure_quickstart(os.path.dirname(quickstart)) == quickstart  # already there: no re-extraction


def test_decode_every_kind_to_rgb(tiles):
    rgb = photo(tiles, 0)
    for kind, data in bad_kinds(rgb).items():
        if kind == "text":
            with pytest.raises(ValueError):
                decode_image(data)
            continue
        out = decode_image(data)
        assert out.dtype == np.uint8 and out.shape == rgb.shape, kind
        if kind in ("png", "rgba_png"):
            np.testing.assert_array_equal(out, rgb)  # lossless; alpha dropped
        if kind == "gray":
            assert (out[..., 0] == out[..., 2]).all()


def test_imagenet_layout(imagenet_tree):
    (ds, names), warned = created("imagenet", imagenet_tree, "train", image_size=32, batch_size=4, training=False)
    assert names == ["bag", "coat", "sneaker"]
    assert len(warned) == 1 and "skipped 1 " in warned[0] and os.path.join("train", "sneaker", "text.jpg") in warned[0]
    images, labels = collect(ds)
    assert images.shape == (15 + 5, 3, 32, 32) and images.dtype == np.float32 and labels.dtype == np.int32
    expected = [lbl for lbl, n in enumerate(names) for f in sorted(os.listdir(f"{imagenet_tree}/train/{n}"))
                if f.endswith((".png", ".jpg")) and f != "text.jpg"]
    assert labels.tolist() == expected
    (val, _), warned = created("imagenet", imagenet_tree, "val", image_size=32, batch_size=4)
    assert not warned and collect(val)[1].tolist() == [0] * 5 + [1] * 5 + [2] * 5


def test_pets_layout(pets_tree):
    (ds, names), warned = created("pets", pets_tree, "train", image_size=32, batch_size=5, training=False)
    assert names == PETS_CLASSES
    assert len(warned) == 1 and "skipped 2 " in warned[0] and "beagle_116.jpg" in warned[0]
    assert f"{MISSING}.jpg" in warned[0]
    images, labels = collect(ds)
    good = [c - 1 for n, c in PETS_ROWS["trainval.txt"].items() if n not in ("beagle_116", MISSING)]
    assert images.shape == (len(good), 3, 32, 32) and labels.tolist() == good
    assert np.isfinite(images).all()
    for split in ("test", "val"):  # Pets has no val list: 'val' reads test.txt
        (test, names), warned = created("pets", pets_tree, split, image_size=32, batch_size=2)
        assert not warned and names == PETS_CLASSES and collect(test)[1].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest", "area"])
def test_eval_preprocess_matches_pipeline(pets_tree, imagenet_tree, interpolation):
    """Same files through the MindSpore eval pipeline and the pure OpenCV/NumPy function (up- and downscaling)."""
    for dataset, root, size in (("pets", pets_tree, 64), ("imagenet", imagenet_tree, 48)):
        (ds, _), _ = created(dataset, root, "train", image_size=size, batch_size=3, training=False,
                             interpolation=interpolation, crop_pct=0.9)
        images, _ = collect(ds)
        files = (sorted(glob.glob(f"{root}/train/*/*.*")) if dataset == "imagenet" else
                 [f"{root}/images/{n}.jpg" for n in PETS_ROWS["trainval.txt"] if n != MISSING])
        files = [f for f in files if not f.endswith(("text.jpg", "beagle_116.jpg", ".txt"))]
        expected = np.stack([eval_preprocess(read_image(f), size, 0.9, interpolation=interpolation) for f in files])
        assert np.abs(images - expected).max() <= 1e-5
    bgr = cv2.cvtColor(read_image(files[0]), cv2.COLOR_RGB2BGR)
    np.testing.assert_array_equal(eval_preprocess(bgr, 48, 0.9, interpolation=interpolation, channel_order="bgr"),
                                  expected[0])


def image_keys(dataset):
    return [img.tobytes() for img in collect(dataset)[0]]


def test_shards_partition_the_dataset(pets_tree):
    kwargs = {"image_size": 32, "batch_size": 2, "training": False}
    everything = image_keys(created("pets", pets_tree, "train", **kwargs)[0][0])  # 11 images: odd on purpose
    shards = [image_keys(created("pets", pets_tree, "train", num_shards=2, shard_id=i, **kwargs)[0][0])
              for i in range(2)]
    assert len(everything) == 11 and sorted(shards[0] + shards[1]) == sorted(everything)
    assert not set(shards[0]) & set(shards[1])
    train_shards = [image_keys(created("pets", pets_tree, "train", num_shards=2, shard_id=i, shuffle=True,
                                       drop_remainder=False, **kwargs)[0][0]) for i in range(2)]
    assert len(train_shards[0]) == len(train_shards[1]) == 6  # equal steps per rank: one image wraps around
    assert set(train_shards[0]) | set(train_shards[1]) == set(everything)


def test_shuffle_is_seeded_per_epoch(imagenet_tree):
    def orders(seed):
        (ds, _), _ = created("imagenet", imagenet_tree, "val", image_size=32, batch_size=15, training=False,
                             shuffle=True, seed=seed)
        created("imagenet", imagenet_tree, "val", image_size=32, batch_size=15)  # an unshuffled set in between
        it = ds.create_tuple_iterator(num_epochs=2, output_numpy=True)
        return [[label for batch in it for label in batch[1].tolist()] for _ in range(2)]

    first, again, other = orders(3), orders(3), orders(4)
    assert first == again and first[0] != first[1] and first != other
    assert sorted(first[0]) == sorted(first[1]) == [0] * 5 + [1] * 5 + [2] * 5


@pytest.mark.parametrize("aug", [{"auto_augment": "randaug", "re_prob": 1.0}, {"auto_augment": "autoaug"},
                                 {"color_jitter": 0.4, "hflip": 1.0, "interpolation": "bicubic"}])
def test_training_augmentations(pets_tree, aug):
    (ds, _), _ = created("pets", pets_tree, "train", image_size=32, batch_size=4, seed=1, **aug)
    images, labels = collect(ds)
    assert images.shape == (8, 3, 32, 32) and images.dtype == np.float32 and np.isfinite(images).all()
    assert labels.dtype == np.int32 and labels.max() < 5  # drop_remainder in training: 11 -> 2 batches of 4


def test_max_samples_keeps_all_classes(imagenet_tree):
    (ds, _), _ = created("imagenet", imagenet_tree, "val", image_size=32, batch_size=8, max_samples=6)
    assert sorted(collect(ds)[1].tolist()) == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("args, kwargs, error, text", [
    (("coco", "{imagenet}", "train"), {}, ValueError, "unknown dataset 'coco'"),
    (("imagenet", "{imagenet}/nope", "train"), {}, FileNotFoundError, "data_path"),
    (("imagenet", "{imagenet}", "test"), {}, ValueError, "unknown split 'test'"),
    (("imagenet", "{pets}", "train"), {}, FileNotFoundError, "split directory"),
    (("imagenet", "{empty}", "train"), {}, ValueError, "no images found"),
    (("pets", "{imagenet}", "train"), {}, FileNotFoundError, "images"),
    (("pets", "{no_lists}", "test"), {}, FileNotFoundError, "annotations/test.txt"),
    (("pets", "{bad_list}", "train"), {}, ValueError, "trainval.txt:1"),
    (("imagenet", "{imagenet}", "train"), {"image_size": 16}, ValueError, "image_size must be >= 32"),
    (("imagenet", "{imagenet}", "train"), {"batch_size": 0}, ValueError, "batch_size must be >= 1"),
    (("imagenet", "{imagenet}", "train"), {"num_shards": 2, "shard_id": 2}, ValueError, "shard_id must be in"),
    (("imagenet", "{imagenet}", "train"), {"shard_id": 0}, ValueError, "both num_shards and shard_id"),
    (("imagenet", "{imagenet}", "train"), {"interpolation": "lanczos"}, ValueError, "unknown interpolation"),
    (("imagenet", "{imagenet}", "train"), {"auto_augment": "trivial"}, ValueError, "unknown auto_augment"),
    (("imagenet", "{imagenet}", "train"), {"num_shards": 99, "shard_id": 0}, ValueError, "99 shards"),
])
def test_bad_input_errors(imagenet_tree, pets_tree, tmp_path, args, kwargs, error, text):
    (tmp_path / "empty" / "train" / "bag").mkdir(parents=True)
    (tmp_path / "no_lists" / "images").mkdir(parents=True)
    (tmp_path / "bad_list" / "images").mkdir(parents=True)
    (tmp_path / "bad_list" / "annotations").mkdir()
    (tmp_path / "bad_list" / "annotations" / "trainval.txt").write_text("Abyssinian_1 cat 1 1\n")
    roots = {"imagenet": imagenet_tree, "pets": pets_tree, "empty": tmp_path / "empty",
             "no_lists": tmp_path / "no_lists", "bad_list": tmp_path / "bad_list"}
    args = (args[0], args[1].format(**{k: str(v) for k, v in roots.items()}), args[2])
    with pytest.raises(error) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        create_dataset(*args, **kwargs)
    message = str(info.value)
    assert text in message and "\n" not in message
