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
def trained_quickstart(tmp_path_factory):
    """A briefly trained quickstart model (GhostNet 0.5x, 32 px, 100 steps of 64 images, ≈ 77% val top-1) and its
    data: ``{"ckpt", "data"}``. For int8 checks that need realistic logit margins: on random weights the top-1
    gaps are ~0.01, below int8 rounding, so top-1 agreement would test noise. ≈ 100 s once per session."""
    from helpers import run_entry
    from src.data import ensure_quickstart

    base = tmp_path_factory.mktemp("trained_quickstart")
    data = ensure_quickstart(str(base / "data"))
    out = base / "run"
    proc = run_entry("train.py", "--config", "configs/quickstart.yaml", "--data_path", data, "--output_dir", out,
                     "--epochs", 2, "--max_steps_per_epoch", 50, "--warmup_epochs", 0, "--num_workers", 1)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return {"ckpt": str(out / "best.ckpt"), "data": data}


@pytest.fixture(scope="session")
def int8_ms(trained_quickstart, tmp_path_factory):
    """The int8 ``.ms`` of ``trained_quickstart`` (PTQ from 64 training images, default per-channel scheme) and
    export.py's output: ``{"ms", "stdout", "data"}``. One export shared by the Lite and the aarch64 int8 checks;
    skipped without the x86 Lite side env, which writes ``.ms`` files."""
    from deploy_helpers import lite_side_env
    from helpers import run_entry

    python, reason = lite_side_env()
    if python is None:
        pytest.skip(f"exporting .ms files needs the x86 Lite side env: {reason}")
    stem = str(tmp_path_factory.mktemp("int8_ms") / "ptq_int8")
    data = trained_quickstart["data"]
    proc = run_entry("export.py", "--config", "configs/quickstart.yaml", "--ckpt_file", trained_quickstart["ckpt"],
                     "--file_format", "MINDIR_LITE", "--file_name", stem, "--quant", "ptq", "--calib_data",
                     os.path.join(data, "train"), "--calib_samples", 64, "--quant_min_agreement", 0.9)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return {"ms": stem + ".ms", "stdout": proc.stdout, "data": data}
