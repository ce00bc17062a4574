"""One tiny training run in this process, stopped by ``stop_after_steps``: what it logs, saves and cleans up."""
import json
import logging
import os

import mindspore as ms
import pytest
import yaml

from helpers import make_imagenet_subset
from src.config import run_cli
from src.models import create_model
from src.flows.eval import evaluate_main
from src.flows.train import train
from src.train.trainer import INTERRUPTED

STALE = ".last_state.ckpt.ab12_x9z.tmp"  # what a kill -9 inside atomic_path leaves behind


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """Data under ``tiny0`` named by the per-rank template ``tiny{rank}``; the output dir holds a stale temporary
    of the atomic writer and a foreign hidden folder; the run stops after 2 steps."""
    base = tmp_path_factory.mktemp("run")
    os.rename(make_imagenet_subset(str(base), classes=4, n_train=16, n_val=8), base / "tiny0")
    out = base / "out"
    (out / STALE).mkdir(parents=True)
    (out / ".keep.tmp").mkdir()
    argv = ["--config", "configs/quickstart.yaml", "--num_classes", "4", "--batch_size", "8", "--epochs", "2",
            "--data_path", str(base / "tiny{rank}"), "--output_dir", str(out), "--mode", "PYNATIVE",
            "--num_workers", "1", "--log_interval", "1", "--stop_after_steps", "2"]
    code = run_cli(train, "train", argv)
    return {"code": code, "out": out, "data": base / "tiny0", "log": (out / "train.log").read_text()}


def test_an_interrupted_run_returns_its_exit_code_and_closes_its_log(stopped):
    assert stopped["code"] == INTERRUPTED
    assert "stopping after 2 steps" in stopped["log"].splitlines()[-1]
    assert logging.getLogger("ghostnet").handlers == []  # train.log closed by the finally of train()


def test_the_log_names_the_dataset_by_its_folder(stopped):
    assert f"training ghostnet_050 on class folders at {stopped['data']}: 4 classes" in stopped["log"]
    assert " on imagenet" not in stopped["log"]


def test_the_saved_config_keeps_the_per_rank_data_path_template(stopped):
    saved = yaml.safe_load((stopped["out"] / "config.yaml").read_text())
    assert saved["data_path"] == str(stopped["data"].parent / "tiny{rank}")


def test_eval_reads_the_saved_config_with_its_template_as_rank_0s_data(stopped, tmp_path):
    ckpt = str(tmp_path / "net.ckpt")
    ms.save_checkpoint(create_model("ghostnet_050", num_classes=4), ckpt)
    argv = ["--config", str(stopped["out"] / "config.yaml"), "--ckpt_file", ckpt, "--output_dir", str(tmp_path)]
    assert run_cli(evaluate_main, "eval", argv) == 0
    assert json.loads((tmp_path / "eval_metrics.json").read_text())["count"] == 32  # tiny0/val: 4 classes x 8


def test_stale_temporaries_of_the_atomic_writer_are_removed_at_start(stopped):
    left = sorted(os.listdir(stopped["out"]))
    assert STALE not in left and ".keep.tmp" in left  # only the writer's own pattern


@pytest.fixture(autouse=True, scope="module")
def pynative_after():
    yield
    ms.set_context(mode=ms.PYNATIVE_MODE)
