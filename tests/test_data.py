"""Data pipeline tests on real Fashion-MNIST images (the quickstart archive) arranged as ImageNet and Pets trees.

The trees contain every bad-file kind of the real Pets archive: PNG content under .jpg (RGB and RGBA), a palette
GIF under .jpg, a grayscale JPEG, a truncated JPEG (its data ends early: skipped), non-image bytes under .jpg, a .mat
file and an image no list references.
"""
import glob
import io
import json
import logging
import os
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

from src.data import create_dataset, decode_image, ensure_quickstart, eval_preprocess, read_image
from src.data import decode as decode_module
from src.data.quickstart import QUICKSTART_ARCHIVE
from src.errors import DataError

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
    """Encoded bytes of each awkward kind, keyed by kind; all but 'truncated' and 'text' must decode."""
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


def collect(dataset, num_epochs=1):
    """All (images, labels) of one pass as numpy arrays."""
    batches = list(dataset.create_tuple_iterator(num_epochs=num_epochs, output_numpy=True))
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def created(*args, **kwargs):
    """``create_dataset`` plus the warnings it logged (``ghostnet.data``); the decode cache is per test tree."""
    handler = Records()
    logger = logging.getLogger("ghostnet.data")
    logger.addHandler(handler)
    try:
        result = create_dataset(*args, **kwargs)
    finally:
        logger.removeHandler(handler)
    return result, handler.messages


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
        if kind in ("text", "truncated"):
            with pytest.raises(DataError, match="truncated" if kind == "truncated" else "not a decodable image"):
                decode_image(data)
            continue
        out = decode_image(data)
        assert out.dtype == np.uint8 and out.shape == rgb.shape, kind
        if kind in ("png", "rgba_png"):
            np.testing.assert_array_equal(out, rgb)  # lossless; alpha dropped
        if kind == "gray":
            assert (out[..., 0] == out[..., 2]).all()


def test_a_jpeg_cut_to_300_bytes_is_refused_not_greyed(tiles, tmp_path):
    """The silent case of the trust issue: a cut JPEG once decoded to a grey image and was classified at p=0.9999."""
    jpeg = encode(photo(tiles, 5), "JPEG")
    write(str(tmp_path / "cut.jpg"), jpeg[:300])
    with pytest.raises(DataError, match=r"cut\.jpg: its data ends early \(truncated file\)"):
        read_image(str(tmp_path / "cut.jpg"))
    assert decode_module.classify(str(tmp_path / "cut.jpg"))[0] == decode_module.BAD


def test_imagenet_layout(imagenet_tree):
    (ds, names), warned = created("imagenet", imagenet_tree, "train", image_size=32, batch_size=4, training=False)
    assert names == ["bag", "coat", "sneaker"]
    assert any(os.path.join("train", "sneaker", "text.jpg") + ": not a decodable image" in w for w in warned)
    assert any(os.path.join("train", "coat", "truncated.jpg") + ": its data ends early" in w for w in warned)
    assert warned[-1].endswith("skipped 2 of 21 image files that are missing or do not decode completely")
    images, labels = collect(ds)
    assert images.shape == (15 + 4, 3, 32, 32) and images.dtype == np.float32 and labels.dtype == np.int32
    expected = [lbl for lbl, n in enumerate(names) for f in sorted(os.listdir(f"{imagenet_tree}/train/{n}"))
                if f.endswith((".png", ".jpg")) and f not in ("text.jpg", "truncated.jpg")]
    assert labels.tolist() == expected
    (val, _), warned = created("imagenet", imagenet_tree, "val", image_size=32, batch_size=4)
    assert not warned and collect(val)[1].tolist() == [0] * 5 + [1] * 5 + [2] * 5


def test_hidden_folders_are_not_classes_and_empty_classes_are_refused(quickstart, tmp_path):
    root = tmp_path / "tree"
    for split, name in (("train", "bag"), ("train", "coat"), ("val", "bag"), ("val", "coat")):
        (root / split / name).mkdir(parents=True)
        shutil.copy(sorted(glob.glob(f"{quickstart}/{split}/{name}/*.png"))[0], root / split / name)
    (root / "train" / ".ipynb_checkpoints").mkdir()
    (root / "train" / "bag" / ".hidden.png").write_bytes(b"x")
    (ds, names), warned = created("imagenet", str(root), "train", image_size=32, batch_size=1, training=False)
    assert names == ["bag", "coat"] and not warned and collect(ds)[1].tolist() == [0, 1]
    (root / "val" / "dress").mkdir()  # an empty class folder would take label 2 and shift nothing visibly
    with pytest.raises(DataError, match=r"class folder '.*val/dress' holds no images .*remove it or add its images"):
        create_dataset("imagenet", str(root), "train", image_size=32, batch_size=1)


def test_a_class_with_validation_images_but_no_training_folder_is_refused(imagenet_tree, tmp_path):
    root = tmp_path / "tree"
    shutil.copytree(imagenet_tree, root)
    shutil.copytree(root / "val" / "bag", root / "val" / "dress")
    with pytest.raises(DataError) as info:
        create_dataset("imagenet", str(root), "train", image_size=32, batch_size=1)
    assert str(info.value) == (f"class 'dress' has a folder in {root}/val but none in {root}/train; add "
                               f"{root}/train/dress with its training images or remove the validation folder")
    (_, names), _ = created("imagenet", str(root), "val", image_size=32, batch_size=1)
    assert names == ["bag", "coat", "dress", "sneaker"]  # evaluating such a set is fine


def test_image_symlinks_in_a_loop_are_skipped_like_unreadable_files(imagenet_tree, tmp_path):
    root = tmp_path / "tree"
    shutil.copytree(imagenet_tree, root, symlinks=True)
    os.symlink("b.png", root / "train" / "coat" / "a.png")
    os.symlink("a.png", root / "train" / "coat" / "b.png")
    (ds, names), warned = created("imagenet", str(root), "train", image_size=32, batch_size=1, training=False)
    assert any(os.path.join("train", "coat", "a.png") + ": unreadable (Too many levels of symbolic links)" in w
               for w in warned)
    assert warned[-1].endswith("skipped 4 of 23 image files that are missing or do not decode completely")
    assert len(collect(ds)[1]) == 19


def test_a_class_whose_files_are_all_skipped_is_refused_for_training(imagenet_tree, tmp_path):
    """Broken links (or undecodable files) only: the class would be a label with no training images."""
    root = tmp_path / "tree"
    shutil.copytree(imagenet_tree, root, symlinks=True)
    shutil.rmtree(root / "train" / "coat")
    (root / "train" / "coat").mkdir()
    os.symlink("gone.png", root / "train" / "coat" / "a.png")
    with pytest.raises(DataError, match=f"class 'coat' of split 'train' under '{root}' has no decodable images"):
        created("imagenet", str(root), "train", image_size=32, batch_size=1)


@pytest.mark.parametrize("rows,message", [
    ({"trainval.txt": ["Abyssinian_1 1", "Abyssinian_2 2"], "test.txt": ["Abyssinian_3 1"]},
     "breed 'Abyssinian' has CLASS_IDs [1, 2]"),
    ({"trainval.txt": ["Abyssinian_1 1", "beagle_1 2"], "test.txt": ["beagle_1 2"]},
     "1 image(s) are in both trainval.txt and test.txt (e.g. 'beagle_1')"),
    ({"trainval.txt": ["Abyssinian_1 1", "Abyssinian_1 1"], "test.txt": ["beagle_1 2"]},
     "image 'Abyssinian_1' is listed twice"),
])
def test_pets_lists_that_would_mix_labels_or_splits_are_refused(tmp_path, rows, message):
    (tmp_path / "images").mkdir()
    for name, lines in rows.items():
        write(str(tmp_path / "annotations" / name), ("\n".join(f"{ln} 1 1" for ln in lines) + "\n").encode())
    with pytest.raises(DataError) as info:
        create_dataset("pets", str(tmp_path), "train", image_size=32, batch_size=1)
    assert message in str(info.value)


def test_pets_layout(pets_tree):
    (ds, names), warned = created("pets", pets_tree, "train", image_size=32, batch_size=5, training=False)
    assert names == PETS_CLASSES
    assert warned[-1].endswith("skipped 3 of 13 image files that are missing or do not decode completely")
    assert any("beagle_116.jpg: not a decodable image" in w for w in warned)
    assert any("chihuahua_121.jpg: its data ends early" in w for w in warned)
    assert any(f"{MISSING}.jpg: missing" in w for w in warned)
    images, labels = collect(ds)
    good = [c - 1 for n, c in PETS_ROWS["trainval.txt"].items() if n not in ("beagle_116", "chihuahua_121", MISSING)]
    assert images.shape == (len(good), 3, 32, 32) and labels.tolist() == good
    assert np.isfinite(images).all()
    for split in ("test", "val"):  # Pets has no val list: 'val' reads test.txt
        (test, names), warned = created("pets", pets_tree, split, image_size=32, batch_size=2)
        assert not warned and names == PETS_CLASSES and collect(test)[1].tolist() == [0, 1, 2, 3, 4]


def good_files(dataset, root):
    files = (sorted(glob.glob(f"{root}/train/*/*.*")) if dataset == "imagenet" else
             [f"{root}/images/{n}.jpg" for n in PETS_ROWS["trainval.txt"] if n != MISSING])
    return [f for f in files if not f.endswith(("text.jpg", "truncated.jpg", "beagle_116.jpg", "chihuahua_121.jpg",
                                                ".txt"))]


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest", "area"])
def test_eval_preprocess_matches_pipeline(pets_tree, imagenet_tree, interpolation):
    """Same files through the MindSpore eval pipeline and the pure OpenCV/NumPy function (up- and downscaling)."""
    for dataset, root, size in (("pets", pets_tree, 64), ("imagenet", imagenet_tree, 48)):
        (ds, _), _ = created(dataset, root, "train", image_size=size, batch_size=3, training=False,
                             interpolation=interpolation, crop_pct=0.9)
        images, _ = collect(ds)
        expected = np.stack([eval_preprocess(read_image(f), size, 0.9, interpolation=interpolation)
                             for f in good_files(dataset, root)])
        assert np.abs(images - expected).max() <= 1e-5
    bgr = cv2.cvtColor(read_image(good_files("imagenet", imagenet_tree)[0]), cv2.COLOR_RGB2BGR)
    np.testing.assert_array_equal(eval_preprocess(bgr, 48, 0.9, interpolation=interpolation, channel_order="bgr"),
                                  expected[0])


@pytest.mark.parametrize("training", [False, True])
def test_cpp_and_python_decoders_give_the_same_images(imagenet_tree, pets_tree, training):
    """The C++ path (MindSpore Decode; GIF/WebP through a lossless BMP) equals decoding everything in Python, for
    the eval transforms and for deterministic training transforms (random crop, flip and jitter off)."""
    aug = {"random_crop": False, "hflip": 0.0, "color_jitter": 0.0, "shuffle": False} if training else {}
    for dataset, root in (("imagenet", imagenet_tree), ("pets", pets_tree)):
        out = [collect(created(dataset, root, "train", image_size=48, batch_size=2, training=training,
                               drop_remainder=False, decoder=d, **aug)[0][0]) for d in ("cpp", "python")]
        np.testing.assert_array_equal(out[0][1], out[1][1])
        np.testing.assert_array_equal(out[0][0], out[1][0])


def test_each_augmentation_is_its_own_switch(imagenet_tree):
    """random_crop=False replaces only the crop: a flip probability of 1 still flips every image."""
    (val, _), _ = created("imagenet", imagenet_tree, "val", image_size=32, batch_size=15, training=False)
    (flipped, _), _ = created("imagenet", imagenet_tree, "val", image_size=32, batch_size=15, training=True,
                              random_crop=False, hflip=1.0, color_jitter=0.0, shuffle=False)
    plain, augmented = collect(val)[0], collect(flipped)[0]
    np.testing.assert_allclose(augmented, plain[..., ::-1], atol=1e-6)


def image_keys(dataset, num_epochs=1):
    return [img.tobytes() for img in collect(dataset, num_epochs)[0]]


def test_shards_are_disjoint_and_cover_the_list(pets_tree):
    kwargs = {"image_size": 32, "batch_size": 2, "training": False}
    everything = image_keys(created("pets", pets_tree, "train", **kwargs)[0][0])  # 10 decodable of 13 listed
    shards = [image_keys(created("pets", pets_tree, "train", num_shards=2, shard_id=i, **kwargs)[0][0])
              for i in range(2)]
    assert len(everything) == 10 and sorted(shards[0] + shards[1]) == sorted(everything)
    assert not set(shards[0]) & set(shards[1])
    train_shards = [image_keys(created("pets", pets_tree, "train", num_shards=2, shard_id=i, shuffle=True,
                                       drop_remainder=False, **kwargs)[0][0]) for i in range(2)]
    assert len(train_shards[0]) == len(train_shards[1]) == 7  # ceil(13 / 2): equal steps per rank, padded
    assert not set(train_shards[0]) & set(train_shards[1])  # each rank only ever sees its own files
    assert set(train_shards[0]) | set(train_shards[1]) == set(everything)


def test_one_dataset_shuffles_every_epoch_and_resumes_the_sequence(imagenet_tree):
    def labels(start_epoch, seed=3, epochs=2):
        (ds, _), _ = created("imagenet", imagenet_tree, "val", image_size=32, batch_size=15, training=False,
                             shuffle=True, seed=seed, start_epoch=start_epoch)
        it = ds.create_tuple_iterator(num_epochs=epochs, output_numpy=True)
        return [[label for batch in it for label in batch[1].tolist()] for _ in range(epochs)]

    first, again, other = labels(0), labels(0), labels(0, seed=4)
    assert first == again and first[0] != first[1] and first != other
    assert sorted(first[0]) == sorted(first[1]) == [0] * 5 + [1] * 5 + [2] * 5
    assert labels(1, epochs=1)[0] == first[1]  # a run resumed at epoch 1 sees what an uninterrupted one saw


@pytest.mark.parametrize("aug", [{"auto_augment": "randaug", "re_prob": 1.0}, {"auto_augment": "autoaug"},
                                 {"color_jitter": 0.4, "hflip": 1.0, "interpolation": "bicubic"}])
def test_training_augmentations(pets_tree, aug):
    (ds, _), _ = created("pets", pets_tree, "train", image_size=32, batch_size=4, seed=1, **aug)
    images, labels = collect(ds)
    assert images.shape == (8, 3, 32, 32) and images.dtype == np.float32 and np.isfinite(images).all()
    assert labels.dtype == np.int32 and labels.max() < 5  # drop_remainder in training: 10 -> 2 batches of 4


def test_max_samples_and_max_steps(imagenet_tree):
    (ds, _), _ = created("imagenet", imagenet_tree, "val", image_size=32, batch_size=8, max_samples=6)
    assert sorted(collect(ds)[1].tolist()) == [0, 0, 1, 1, 2, 2]
    (ds, _), _ = created("imagenet", imagenet_tree, "val", image_size=32, batch_size=4, max_steps=2)
    assert ds.get_dataset_size() == 2 and len(collect(ds)[1]) == 8


def test_the_decode_check_is_remembered_per_file_version(imagenet_tree, tmp_path, monkeypatch):
    root = str(tmp_path / "tree")
    shutil.copytree(imagenet_tree, root)
    cache = str(tmp_path / "cache")
    calls = []
    real = decode_module.classify
    monkeypatch.setattr(decode_module, "classify", lambda p: calls.append(p) or real(p))
    kwargs = {"image_size": 32, "batch_size": 4, "training": False, "cache_dir": cache}
    created("imagenet", root, "train", **kwargs)
    assert len(calls) == 21  # every listed file checked once
    calls.clear()
    (_, _), warned = created("imagenet", root, "train", **kwargs)
    assert calls == [] and any("text.jpg" in w for w in warned)  # remembered, bad files still skipped
    changed = os.path.join(root, "train", "bag", sorted(os.listdir(os.path.join(root, "train", "bag")))[0])
    with open(changed, "ab") as f:
        f.write(b"\0")  # new size: this file is checked again, nothing else
    created("imagenet", root, "train", **kwargs)
    assert calls == [changed]
    calls.clear()
    cache_file = glob.glob(os.path.join(cache, "decode", "*", "train.rank0.json"))[0]
    with open(cache_file, "w", encoding="utf-8") as f:
        f.write('{"version": 1, "root": ')  # cut short, e.g. by a crash of another tool
    (_, _), warned = created("imagenet", root, "train", **kwargs)
    assert len(calls) == 21 and any("ignoring corrupt decode cache" in w for w in warned)
    with open(cache_file, encoding="utf-8") as f:
        assert len(json.load(f)["entries"]) == 21  # rebuilt


def test_ranks_check_only_their_own_shard_and_share_the_cache(pets_tree, tmp_path, monkeypatch):
    cache = str(tmp_path / "cache")
    calls = []
    real = decode_module.classify
    monkeypatch.setattr(decode_module, "classify", lambda p: calls.append(p) or real(p))
    for rank in range(2):
        created("pets", pets_tree, "train", image_size=32, batch_size=2, num_shards=2, shard_id=rank,
                cache_dir=cache)
    assert len(calls) == 12 and len(set(calls)) == 12  # 13 listed, 1 missing (never opened); no file twice
    calls.clear()
    created("pets", pets_tree, "train", image_size=32, batch_size=2, cache_dir=cache)  # one process, whole list
    assert calls == []  # it reads what the two ranks remembered


@pytest.mark.parametrize("args, kwargs, text", [
    (("coco", "{imagenet}", "train"), {}, "unknown dataset 'coco'"),
    (("imagenet", "{imagenet}/nope", "train"), {}, "data_path"),
    (("imagenet", "{imagenet}/train/bag/notes.txt", "train"), {}, "train/bag/notes.txt' is a file, not a folder"),
    (("imagenet", "{imagenet}", "test"), {}, "unknown split 'test'"),
    (("imagenet", "{pets}", "train"), {}, "split directory"),
    (("imagenet", "{empty}", "train"), {}, "holds no images"),
    (("pets", "{imagenet}", "train"), {}, "images"),
    (("pets", "{no_lists}", "test"), {}, "annotations/test.txt"),
    (("pets", "{bad_list}", "train"), {}, "trainval.txt:1"),
    (("imagenet", "{imagenet}", "train"), {"image_size": 16}, "image_size must be >= 32"),
    (("imagenet", "{imagenet}", "train"), {"batch_size": 0}, "batch_size must be >= 1"),
    (("imagenet", "{imagenet}", "train"), {"num_shards": 2, "shard_id": 2}, "shard_id must be in"),
    (("imagenet", "{imagenet}", "train"), {"shard_id": 0}, "both num_shards and shard_id"),
    (("imagenet", "{imagenet}", "train"), {"interpolation": "lanczos"}, "unknown interpolation"),
    (("imagenet", "{imagenet}", "train"), {"auto_augment": "trivial"}, "unknown auto_augment"),
    (("imagenet", "{imagenet}", "train"), {"decoder": "gpu"}, "unknown decoder 'gpu'"),
    (("imagenet", "{imagenet}", "train"), {"num_shards": 99, "shard_id": 0}, "99 shards"),
])
def test_bad_input_errors(imagenet_tree, pets_tree, tmp_path, args, kwargs, text):
    (tmp_path / "empty" / "train" / "bag").mkdir(parents=True)
    (tmp_path / "no_lists" / "images").mkdir(parents=True)
    (tmp_path / "bad_list" / "images").mkdir(parents=True)
    (tmp_path / "bad_list" / "annotations").mkdir()
    (tmp_path / "bad_list" / "annotations" / "trainval.txt").write_text("Abyssinian_1 cat 1 1\n")
    roots = {"imagenet": imagenet_tree, "pets": pets_tree, "empty": tmp_path / "empty",
             "no_lists": tmp_path / "no_lists", "bad_list": tmp_path / "bad_list"}
    args = (args[0], args[1].format(**{k: str(v) for k, v in roots.items()}), args[2])
    with pytest.raises(DataError) as info:
        created(*args, **kwargs)
    message = str(info.value)
    assert text in message and "\n" not in message
