"""Shared test setup: CPU with the project's CPU defaults (oneDNN capped at AVX2, as the entry points do), PyNative
by default (tests that need GRAPH mode switch and restore), and a decode cache of this session's own
(``GHOSTNET_CACHE_DIR``, inherited by the entry points the tests start)."""
import os
import tempfile

import mindspore as ms
import pytest

from src.runtime import cpu_defaults

os.environ["GHOSTNET_CACHE_DIR"] = tempfile.mkdtemp(prefix="ghostnet-test-cache-")
ms.set_device("CPU")
cpu_defaults()
ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture
def graph_mode():
    """Run one test in GRAPH mode, then return to PyNative."""
    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory):
    """GhostNet 0.5x trained on full Fashion-MNIST (88.9% top-1, shipped as ``fixtures/fashion_mnist_ghostnet_050.npz``,
    see ``fixtures/make_trained_fixture.py``) as a checkpoint, and the quickstart data, whose ``val`` images come
    from Fashion-MNIST's test file: ``{"ckpt", "data"}``. For int8 checks that need trained logit margins: on
    random weights the top-1 gaps are ~0.01, below int8 rounding, so top-1 agreement would test noise."""
    import json

    import numpy as np

    from src.data import ensure_quickstart
    from src.models import write_checkpoint

    base = tmp_path_factory.mktemp("trained_model")
    with np.load(os.path.join(os.path.dirname(__file__), "fixtures", "fashion_mnist_ghostnet_050.npz")) as z:
        params = [{"name": k, "data": ms.Tensor(z[k].astype(np.float32))} for k in z.files if k != "record"]
        record = json.loads(str(z["record"]))
    ckpt = write_checkpoint(params, str(base / "fashion_mnist_ghostnet_050.ckpt"), record)
    return {"ckpt": ckpt, "data": ensure_quickstart(str(base / "data"))}


@pytest.fixture(scope="session")
def int8_ms(trained_model, tmp_path_factory):
    """The int8 ``.ms`` of ``trained_model`` (PTQ from 64 training images, default per-channel scheme), verified
    by export.py on the 1,000 quickstart test images, and export.py's output: ``{"ms", "stdout", "data"}``. One
    export shared by the Lite and the aarch64 int8 checks; skipped without the x86 Lite side env."""
    from deploy_helpers import lite_side_env
    from helpers import run_entry

    python, reason = lite_side_env()
    if python is None:
        pytest.skip(f"exporting .ms files needs the x86 Lite side env: {reason}")
    stem = str(tmp_path_factory.mktemp("int8_ms") / "ptq_int8")
    data = trained_model["data"]
    proc = run_entry("export.py", "--config", "configs/quickstart.yaml", "--ckpt_file", trained_model["ckpt"],
                     "--file_format", "MINDIR_LITE", "--file_name", stem, "--quant", "ptq", "--calib_data",
                     os.path.join(data, "train"), "--calib_samples", 64, "--quant_verify_data",
                     os.path.join(data, "val"), "--quant_verify_samples", 1000, "--quant_min_agreement", 0.99)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return {"ms": stem + ".ms", "stdout": proc.stdout, "data": data}
