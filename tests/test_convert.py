"""PyTorch -> MindSpore weight conversion: the torch-free ``.pth`` reader, key mapping, refusals, and logits parity
with timm models (those tests skip where torch/timm are absent)."""
import argparse
import collections
import importlib.util
import os
import pickle
import subprocess
import sys
import zipfile

import mindspore as ms
import numpy as np
import pytest
from safetensors.numpy import save_file

from fixtures.make_torch_fixtures import reference_arrays
from helpers import images, randomize_state
from src.convert import ConversionError, convert_checkpoint, load_torch_file, main, select_state_dict
from src.convert.torch_reader import LEGACY_MAGIC, LEGACY_PROTOCOL, Opaque, TorchReadError
from src.models import create_model, load_checkpoint_strict, read_checkpoint

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
REPO = os.path.dirname(HERE)
TOL = 1e-4

ms.set_device("CPU")
ms.set_context(mode=ms.PYNATIVE_MODE)

BN_TO_TORCH = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def torch_style_state(net):
    """``net``'s parameters under PyTorch names (BN gamma -> weight, ...) as float32 arrays."""
    out = collections.OrderedDict()
    for name, param in net.parameters_and_names():
        module, _, leaf = name.rpartition(".")
        out[f"{module}.{BN_TO_TORCH.get(leaf, leaf)}"] = param.asnumpy()
    return out


def logits(net, x):
    return net(x).asnumpy()


def files_in(directory):
    return sorted(os.listdir(directory))


# ---------------------------------------------------------------- reader (no torch needed)

@pytest.mark.parametrize("fixture", ["tiny_zip.pth", "tiny_legacy.pth"])
def test_reader_reads_committed_fixture_without_torch(fixture):
    got = load_torch_file(os.path.join(FIXTURES, fixture))
    want = reference_arrays()
    assert isinstance(got, collections.OrderedDict) and list(got) == list(want)
    for key, value in want.items():
        assert got[key].dtype == value.dtype, key
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    assert os.path.getsize(os.path.join(FIXTURES, fixture)) <= 20_000


class _Exploit:
    """Pickles to a call of ``os.system`` (what a malicious checkpoint would contain)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _zip_pickle(path, obj):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))


def test_reader_never_executes_pickled_code(tmp_path):
    marker = tmp_path / "pwned"
    src = tmp_path / "evil.pth"
    _zip_pickle(src, {"state_dict": _Exploit(marker), "args": argparse.Namespace(lr=0.1)})
    obj = load_torch_file(str(src))
    assert not marker.exists()
    assert isinstance(obj["state_dict"], Opaque) and obj["state_dict"].qualname.endswith(".system")
    assert isinstance(obj["args"], Opaque)
    with pytest.raises(ConversionError, match="not hold a state dict"):
        select_state_dict(obj)


@pytest.mark.parametrize("position", ["magic", "protocol", "sys_info", "object", "storage_keys"])
def test_legacy_reader_never_executes_pickled_code(tmp_path, position, capsys):
    """A pre-1.6 file is a stream of pickles; a payload in any of them (the magic number included, which once
    went through plain ``pickle.load``) is never run: the file is refused or read as inert data."""
    marker = tmp_path / "pwned"
    parts = {"magic": LEGACY_MAGIC, "protocol": LEGACY_PROTOCOL, "sys_info": {"little_endian": True},
             "object": {"w": 1}, "storage_keys": []}
    parts[position] = _Exploit(marker)
    src = tmp_path / "evil.pth"
    src.write_bytes(b"".join(pickle.dumps(v, protocol=2) for v in parts.values()))
    try:
        load_torch_file(str(src))
    except TorchReadError:
        pass
    assert not marker.exists()
    capsys.readouterr()
    assert main([str(src), "--model", "ghostnet_050", "--out", str(tmp_path / "m.ckpt")]) == 2
    assert capsys.readouterr().err.startswith("error: ") and not marker.exists()
    assert not (tmp_path / "m.ckpt").exists()


def test_select_state_dict_prefers_ema_and_honours_key():
    a, b = {"x": np.zeros(1, np.float32)}, {"x": np.ones(1, np.float32)}
    ckpt = {"state_dict": a, "state_dict_ema": b, "epoch": 3}
    assert select_state_dict(ckpt) == (b, "state_dict_ema")
    assert select_state_dict(ckpt, key="state_dict") == (a, "state_dict")
    assert select_state_dict(a) == (a, None)
    with pytest.raises(ConversionError, match="key 'nope' not in checkpoint"):
        select_state_dict(ckpt, key="nope")
    with pytest.raises(ConversionError, match="no state dict found"):
        select_state_dict({"epoch": 3})


# ---------------------------------------------------------------- mapping and CLI on a synthetic source (no torch)

@pytest.fixture(scope="module")
def ms_ghostnet_050():
    """A ghostnet_050 (10 classes) with realistic random state, and its logits on a fixed 64 px batch."""
    net = randomize_state(create_model("ghostnet_050", num_classes=10), seed=1)
    x = images(2, 64)
    return net, x, logits(net, x)


@pytest.fixture(scope="module")
def torch_style_file(ms_ghostnet_050, tmp_path_factory):
    """ghostnet_050 state as a DataParallel-style safetensors file: ``module.`` prefixes, BN counters, thop
    leftovers and one key no model has."""

    state = {}
    for key, value in torch_style_state(ms_ghostnet_050[0]).items():
        state[f"module.{key}"] = value
        if key.endswith(".running_var"):
            state[f"module.{key[:-len('running_var')]}num_batches_tracked"] = np.array(7, np.int64)
    state["module.total_ops"] = np.zeros(1, np.float64)
    state["module.total_params"] = np.zeros(1, np.float64)
    state["module.extra_head.weight"] = np.zeros((3, 3), np.float32)
    path = tmp_path_factory.mktemp("src") / "ghostnet_050.safetensors"
    save_file(state, str(path))
    return str(path)


def test_convert_synthetic_safetensors_roundtrip(ms_ghostnet_050, torch_style_file, tmp_path):
    net, x, want = ms_ghostnet_050
    out = str(tmp_path / "g.ckpt")
    report = convert_checkpoint(torch_style_file, "ghostnet_050", out)
    assert report.unused == ["extra_head.weight"] and report.num_classes == 10
    assert len(report.dropped) == sum(k.endswith("moving_variance") for k, _ in net.parameters_and_names()) + 2
    loaded = load_checkpoint_strict(create_model("ghostnet_050", num_classes=10), out)
    loaded.set_train(False)
    assert np.abs(logits(loaded, x) - want).max() <= TOL


ZOO_LEAVES = [(".primary_conv.0.", ".primary_conv.conv."), (".primary_conv.1.", ".primary_conv.bn."),
              (".cheap_operation.0.", ".cheap_operation.conv."), (".cheap_operation.1.", ".cheap_operation.bn."),
              (".conv_dw.", ".dw.conv."), (".bn_dw.", ".dw.bn."), (".shortcut.0.", ".shortcut.0.conv."),
              (".shortcut.1.", ".shortcut.0.bn."), (".shortcut.2.", ".shortcut.1.conv."),
              (".shortcut.3.", ".shortcut.1.bn."), (".bn1.", ".bn.")]


def zoo_style_state(net):
    """``net``'s parameters under the MindSpore model zoo's GhostNet names: flat ``blocks.<i>`` and ConvUnit
    (``conv``/``bn``) leaves (research/cv/ghostnet/src/ghostnet.py, ghostnet600.py)."""
    flat, state = {}, {}
    for name, param in net.parameters_and_names():
        parts = name.split(".")
        if parts[0] == "blocks":
            path = ".".join(parts[:3])
            flat.setdefault(path, len(flat))
            name = f"blocks.{flat[path]}." + ".".join(parts[3:])
            for ours, zoo in ZOO_LEAVES:
                if ours in "." + name.split(".", 2)[2]:
                    name = name.replace(ours, zoo, 1)
                    break
        state[name] = param.asnumpy()
    return state


@pytest.mark.parametrize("model,zoo_keys", [
    pytest.param("ghostnet_600m", ["blocks.1.dw.conv.weight", "blocks.1.dw.bn.moving_variance",
                                   "blocks.1.shortcut.0.conv.weight", "blocks.1.shortcut.1.bn.gamma",
                                   "blocks.0.se.conv_reduce.bias", "blocks.19.conv.weight", "blocks.19.bn.beta",
                                   "blocks.18.ghost2.cheap_operation.bn.moving_mean"], marks=pytest.mark.slow),
    ("ghostnet_100_nose", ["blocks.15.ghost1.primary_conv.conv.weight", "blocks.16.conv.weight",
                           "blocks.9.shortcut.1.conv.weight"]),
])
def test_convert_model_zoo_checkpoint(model, zoo_keys, tmp_path):
    """A checkpoint with the zoo's names (plus its optimizer state) converts to ours and gives the same logits."""
    net = randomize_state(create_model(model, num_classes=37), seed=2)
    x = images(1, 64)
    state = zoo_style_state(net)
    assert set(zoo_keys) <= set(state)
    state.update({"moments.conv_stem.weight": state["conv_stem.weight"], "global_step": np.array([5], np.int32)})
    src = str(tmp_path / "zoo.ckpt")
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in state.items()], src)
    out = str(tmp_path / "ours.ckpt")
    report = convert_checkpoint(src, model, out)
    assert report.num_classes == 37 and report.unused == ["global_step", "moments.conv_stem.weight"]
    loaded = create_model(model, num_classes=37, pretrained=out)
    loaded.set_train(False)
    np.testing.assert_array_equal(logits(loaded, x), logits(net, x))


def test_cli_reports_unused_keys(torch_style_file, tmp_path, capsys):
    out = tmp_path / "g.ckpt"
    assert main([torch_style_file, "--model", "ghostnet_050", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "1 source keys unused: extra_head.weight" in captured.err
    assert "wrote" in captured.out and out.is_file()


def test_cli_refuses_shape_mismatch_with_table_and_leaves_no_file(torch_style_file, tmp_path, capsys):
    out = tmp_path / "g.ckpt"
    assert main([torch_style_file, "--model", "ghostnet_100", "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: checkpoint does not fit ghostnet_100:") and "shape mismatches" in err[0]
    assert err[1].split() == ["parameter", "checkpoint", "model"]
    assert any(line.startswith("conv_stem.weight") and "(8, 3, 3, 3)" in line and "(16, 3, 3, 3)" in line
               for line in err[3:])
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("argv, message", [
    (["--model", "ghostnet_050"], "not a torch.save file"),
    (["--model", "ghostnet_050", "--deploy"], "--deploy only applies to RepGhostNet"),
    (["--model", "ghostnet_999"], "unknown model 'ghostnet_999'"),
])
def test_cli_bad_input_one_line_error_no_output(tmp_path, capsys, argv, message):
    src = tmp_path / "garbage.pth"
    src.write_bytes(b"\x80\x02not a checkpoint at all")
    out = tmp_path / "out.ckpt"
    assert main([str(src), *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert files_in(tmp_path) == ["garbage.pth"]


def test_missing_safetensors_package_is_a_clear_error(torch_style_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ConversionError, match="needs the 'safetensors' package"):
        convert_checkpoint(torch_style_file, "ghostnet_050", str(tmp_path / "g.ckpt"))
    assert files_in(tmp_path) == []


def test_script_entry_point_exit_code(tmp_path):
    """The thin script itself: a missing source is one stderr line, exit 2 (bad input, as every entry point), no
    output."""
    out = tmp_path / "o.ckpt"
    proc = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "convert_pytorch_weights.py"),
                           str(tmp_path / "missing.pth"), "--model", "ghostnet_050", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and errors == [f"error: no such file: {tmp_path / 'missing.pth'}"]
    assert not out.exists()


# ---------------------------------------------------------------- parity with timm (needs torch + timm)

def _import_timm():
    """Import torch and timm; timm's module-level torchvision imports go to the test stand-in when the real
    torchvision is not installed (tests/torchvision_stub)."""
    torch = pytest.importorskip("torch", reason="PyTorch not installed: timm parity tests skipped")
    if importlib.util.find_spec("torchvision") is None:
        sys.path.insert(0, os.path.join(HERE, "torchvision_stub"))
    timm = pytest.importorskip("timm", reason="timm not installed: timm parity tests skipped")
    return torch, timm


def _randomize_torch(model, torch, seed):
    """Same distribution as ``helpers.randomize_state``, on a PyTorch model (eval mode)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=gen) * 0.6 + 0.4)
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) * 2 + 1)
        model.classifier.weight.copy_(torch.randn(model.classifier.weight.shape, generator=gen) * 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def timm_env():
    torch, timm = _import_timm()
    x = images(2, 64)
    return torch, timm, x, torch.from_numpy(x.asnumpy())


# case -> (timm / our model name, how the PyTorch weights are saved, convert with --deploy, load as deploy form)
PARITY_CASES = {
    "ghostnet_050": ("ghostnet_050", "state_dict", False, False),
    "ghostnet_050-legacy-wrapped": ("ghostnet_050", "legacy_training_checkpoint", False, False),
    "ghostnet_100": ("ghostnet_100", "state_dict", False, False),
    "ghostnet_130": ("ghostnet_130", "state_dict", False, False),
    "repghostnet_100-train": ("repghostnet_100", "state_dict", False, False),
    "repghostnet_100-deploy-flag": ("repghostnet_100", "state_dict", True, True),
    "repghostnet_100-timm-reparam": ("repghostnet_100", "timm_reparameterized", False, True),
    "ghostnetv2_100": ("ghostnetv2_100", "state_dict", False, False),
    **{f"ghostnetv3_{w}-train": (f"ghostnetv3_{w}", "state_dict", False, False) for w in ("050", "100", "130", "160")},
    **{f"ghostnetv3_{w}-timm-reparam": (f"ghostnetv3_{w}", "timm_reparameterized", False, True)
       for w in ("050", "100", "130", "160")},
    "ghostnetv3_050-deploy-flag": ("ghostnetv3_050", "state_dict", True, True),
}
FAST_PARITY = {"ghostnet_050", "repghostnet_100-timm-reparam", "ghostnetv3_050-train",
               "ghostnetv3_050-timm-reparam"}  # the rest: slow


def _save_torch(torch, timm, model, how, path):
    if how == "timm_reparameterized":
        model = timm.utils.reparameterize_model(model)
    state = model.state_dict()
    if how == "legacy_training_checkpoint":
        ckpt = {"epoch": 299, "arch": "ghostnet", "args": argparse.Namespace(lr=0.4),
                "state_dict": collections.OrderedDict((f"module.{k}", v) for k, v in state.items())}
        torch.save(ckpt, path, _use_new_zipfile_serialization=False)
    else:
        torch.save(state, path)
    return model


@pytest.mark.parametrize("case", [c if c in FAST_PARITY else pytest.param(c, marks=pytest.mark.slow)
                                  for c in PARITY_CASES])
def test_timm_parity(case, timm_env, tmp_path):
    torch, timm, x, x_torch = timm_env
    name, how, deploy_flag, deploy_form = PARITY_CASES[case]
    model = _randomize_torch(timm.create_model(name, num_classes=10), torch, seed=len(case))
    src, out = str(tmp_path / "w.pth"), str(tmp_path / "w.ckpt")
    model = _save_torch(torch, timm, model, how, src)
    with torch.no_grad():
        want = model(x_torch).numpy()
    report = convert_checkpoint(src, name, out, deploy=deploy_flag)
    assert report.unused == [] and report.deploy == deploy_form
    kwargs = {"deploy": True} if deploy_form else {}
    net = load_checkpoint_strict(create_model(name, num_classes=10, **kwargs), out)
    net.set_train(False)
    diff = float(np.abs(logits(net, x) - want).max())
    print(f"{case}: max |logit diff| = {diff:.3g} (logit scale {np.abs(want).max():.3g})")
    assert diff <= TOL


def test_stub_is_only_a_stand_in(timm_env):
    """The torchvision stand-in (when used) refuses real work instead of faking it."""
    tv = sys.modules.get("torchvision")
    if tv is None or getattr(tv, "__version__", "") != "0.0.0+stub":
        pytest.skip("real torchvision in use")
    from torchvision.ops.misc import FrozenBatchNorm2d
    with pytest.raises(NotImplementedError, match="stand-in"):
        FrozenBatchNorm2d(4)


def test_pth_reader_matches_torch_load(timm_env, tmp_path):
    """Our reader and ``torch.load`` agree on a real timm state dict saved with torch.save."""
    torch, timm, _, _ = timm_env
    state = _randomize_torch(timm.create_model("repghostnet_050"), torch, seed=3).state_dict()
    state["half"] = torch.arange(6, dtype=torch.float16).reshape(2, 3).t()
    path = str(tmp_path / "s.pth")
    torch.save(state, path)
    ours = load_torch_file(path)
    assert list(ours) == list(state)
    for key, value in state.items():
        np.testing.assert_array_equal(ours[key], value.numpy(), err_msg=key)



# ---------------------------------------------------------------- the record, and which errors become one line

@pytest.mark.parametrize("classes,spec,expected", [
    (1000, "imagenet", ("tench, Tinca tinca", "bull mastiff", 1000)),
    (1000, "", None),  # a user's own 1000-class model: no names guessed from the count
    (3, "LABELS", ("cat", "dog", 3))])
def test_converted_checkpoint_records_the_class_names_asked_for(tmp_path, classes, spec, expected):
    net = create_model("ghostnet_050", num_classes=classes)
    src = str(tmp_path / "g.safetensors")
    save_file(dict(torch_style_state(net)), src)
    (tmp_path / "labels.txt").write_text("cat\nfish\ndog\n")
    spec = str(tmp_path / "labels.txt") if spec == "LABELS" else spec
    convert_checkpoint(src, "ghostnet_050", str(tmp_path / "g.ckpt"), class_names=spec)
    _, record = read_checkpoint(str(tmp_path / "g.ckpt"))
    assert (record["model"], record["form"], record["num_classes"]) == ("ghostnet_050", "train", classes)
    names = record["class_names"]
    assert (names is None) if expected is None else ((names[0], names[-1 if classes == 3 else 243], len(names))
                                                     == expected)


def test_class_names_that_do_not_fit_the_checkpoint_are_refused(tmp_path):
    net = create_model("ghostnet_050", num_classes=10)
    src = str(tmp_path / "g.safetensors")
    save_file(dict(torch_style_state(net)), src)
    with pytest.raises(ConversionError, match="--class_names imagenet has 1000 names, the checkpoint 10 classes"):
        convert_checkpoint(src, "ghostnet_050", str(tmp_path / "g.ckpt"), class_names="imagenet")
    assert not os.path.exists(tmp_path / "g.ckpt")


def test_a_bug_inside_the_reader_keeps_its_traceback(tmp_path, monkeypatch):
    """Only malformed files become TorchReadError: an exception of our own code is not an 'unreadable file'."""
    def broken(path):
        raise KeyError("a bug")

    monkeypatch.setattr("src.convert.torch_reader._load_legacy", broken)
    (tmp_path / "x.pth").write_bytes(b"\x80\x02K\x01.")
    with pytest.raises(KeyError, match="a bug"):
        load_torch_file(str(tmp_path / "x.pth"))


def test_cli_turns_only_project_errors_into_one_line(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr("src.convert.cli.convert_checkpoint", broken)
    with pytest.raises(ValueError, match="a bug"):
        main([str(tmp_path / "x.pth"), "--model", "ghostnet_050", "--out", str(tmp_path / "o.ckpt")])


REBUILD = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(X\x01\x00\x00\x00a"


@pytest.mark.parametrize("pickled, message", [
    (REBUILD + b"K\x00K\x01\x85K\x01\x85tR.", "bad tensor record: offset 0, size (1,), stride (1,)"),
    (REBUILD + b"tR.", "malformed pickle data (TypeError: _rebuild_tensor_v2() missing 3 required"),
])
def test_malformed_pickles_are_unreadable_files(tmp_path, pickled, message):
    """A legacy file whose object pickle calls the tensor rebuild with a wrong record: a one-line file error."""
    path = tmp_path / "bad.pth"
    path.write_bytes(b"".join(pickle.dumps(v, protocol=2) for v in (LEGACY_MAGIC, LEGACY_PROTOCOL, {})) + pickled)
    with pytest.raises(TorchReadError) as info:
        load_torch_file(str(path))
    assert str(info.value).startswith(f"{path}: {message}")


def test_an_unreadable_byteorder_record_is_a_torch_read_error(tmp_path):
    source = os.path.join(os.path.dirname(__file__), "fixtures", "tiny_zip.pth")
    bad = str(tmp_path / "bad_order.pth")
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(bad, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, b"\xff\xfe" if name.endswith("/byteorder") else zin.read(name))
    with pytest.raises(TorchReadError, match="byteorder record .* is neither 'little' nor 'big'"):
        load_torch_file(bad)
