"""Data-parallel training on CPU with msrun (2 workers, mccl): identical ranks, equivalence to one large batch,
failure reporting. Shard disjointness/coverage is specified in test_data.py::test_shards_partition_the_dataset."""
import os
import re
import socket
import subprocess

import mindspore as ms
import numpy as np
import pytest

from helpers import ROOT, make_imagenet_subset, randomize_state, run_entry
from src.models import create_model

# augmentation, dropout, shuffling and batch-dependent BN statistics off: 2 x b must equal 1 x 2b
EXACT = ["--config", "configs/quickstart.yaml", "--num_classes", "4", "--random_crop", "false", "--hflip", "0",
         "--dropout", "0.0",
         "--ema", "false", "--shuffle", "false", "--freeze_bn", "true", "--lr", "0.005", "--warmup_lr", "0.005",
         "--epochs", "2", "--eval_interval", "0", "--log_interval", "1", "--num_workers", "1"]


def free_port():
    """A port no one listens on now (a fixed port fails when another job on the machine holds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def distribute(run_dir, *args):
    return subprocess.run(["bash", os.path.join(ROOT, "scripts", "run_distribute_train.sh"), "--worker_num", "2",
                           "--master_port", str(free_port()), "--run_dir", str(run_dir), *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_imagenet_subset(str(tmp_path_factory.mktemp("data")), classes=4, n_train=16, n_val=8)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Fine-tuning start point with realistic BN statistics (frozen BN on fresh 0/1 statistics would diverge)."""
    path = str(tmp_path_factory.mktemp("pre") / "pretrained.ckpt")
    ms.save_checkpoint(randomize_state(create_model("ghostnet_050", num_classes=4)), path)
    return path


@pytest.fixture(scope="module")
def two_workers(data, pretrained, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("dist")
    proc = distribute(run_dir, "--data_path", data, "--", *EXACT, "--batch_size", 8, "--pretrained", pretrained)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return run_dir, proc


def digest(log_path):
    with open(log_path, encoding="utf-8") as f:
        return re.findall(r"trainable-parameter digest (\w+)", f.read())


def trainable(ckpt):
    """The model's trainable parameters in a training-state checkpoint."""
    names = {p.name for p in create_model("ghostnet_050", num_classes=4).trainable_params()}
    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(ckpt)).items() if k in names}


@pytest.mark.slow
def test_both_ranks_end_with_identical_parameters(two_workers):
    run_dir, proc = two_workers
    assert "worker 0: exit 0" in proc.stdout and "worker 1: exit 0" in proc.stdout
    # the launch is never silent: rank 0's progress is streamed, and it ends with the result
    assert "[rank 0] " in proc.stdout and "epoch 2/2 step 4/4 loss" in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith("result: done; outputs in ")
    rank0, rank1 = digest(run_dir / "train.log"), digest(run_dir / "train_rank1.log")
    assert len(rank0) == 1 and rank0 == rank1
    assert (run_dir / "last_state.ckpt").exists() and (run_dir / "logs" / "worker_1.log").exists()
    with open(run_dir / "train.log", encoding="utf-8") as f:
        assert "4 steps/epoch x 2 epochs, batch 8 x 2 device(s)" in f.read()  # 64 images = 2 shards x 4 x 8


def assert_same_training(single_dir, parallel_dir, pretrained):
    """One worker of batch 2b and two of batch b ended with the same trainable parameters, after moving them."""
    single, parallel = trainable(single_dir / "last_state.ckpt"), trainable(parallel_dir / "last_state.ckpt")
    assert set(single) == set(parallel) and len(single) > 100
    start = {k: v.asnumpy() for k, v in ms.load_checkpoint(pretrained).items()}
    moved = max(np.abs(single[k] - start[k]).max() for k in single)
    assert moved > 1e-3  # training moved the weights
    # the same float32 sums in another order (one batch of 2b vs two of b and an all-reduce) drift apart by up to
    # ~2e-5 in 8 steps; a wrong all-reduce (sum instead of mean, one rank's gradients) differs by the updates
    for key in single:
        assert np.isfinite(single[key]).all()
        np.testing.assert_allclose(parallel[key], single[key], rtol=1e-3, atol=1e-4, err_msg=key)
    assert max(np.abs(parallel[k] - single[k]).max() for k in single) < 0.05 * moved
    steps = [int(ms.load_checkpoint(str(d / "last_state.ckpt"))["global_step"].asnumpy())
             for d in (single_dir, parallel_dir)]
    assert steps == [8, 8]  # 2 epochs x 4 steps of 16 images, either way
    return parallel


@pytest.mark.slow
def test_two_workers_of_batch_b_equal_one_worker_of_batch_2b(two_workers, data, pretrained, tmp_path):
    run_dir, _ = two_workers
    proc = run_entry("train.py", *EXACT, "--batch_size", 16, "--data_path", data, "--output_dir", tmp_path,
                     "--pretrained", pretrained)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_same_training(tmp_path, run_dir, pretrained)


@pytest.mark.slow
def test_distillation_on_two_workers_equals_one_worker_of_batch_2b(two_workers, data, pretrained, tmp_path):
    """The teacher runs on each rank's shard and only the student's gradients are all-reduced: two distilling
    workers of batch b train exactly as one of batch 2b, and differently from training without the teacher."""
    teacher = str(tmp_path / "teacher.ckpt")
    ms.save_checkpoint(randomize_state(create_model("ghostnet_050", num_classes=4), seed=9), teacher)
    kd = ["--teacher_ckpt", teacher, "--teacher_model", "ghostnet_050", "--distill_alpha", "1.0",
          "--distill_temperature", "2.0", "--pretrained", pretrained]
    proc = distribute(tmp_path / "dist", "--data_path", data, "--", *EXACT, "--batch_size", 8, *kd)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    proc = run_entry("train.py", *EXACT, "--batch_size", 16, "--data_path", data, "--output_dir", tmp_path / "one",
                     *kd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    distilled = assert_same_training(tmp_path / "one", tmp_path / "dist", pretrained)
    plain = trainable(two_workers[0] / "last_state.ckpt")
    assert max(np.abs(distilled[k] - plain[k]).max() for k in plain) > 1e-3


@pytest.mark.slow
def test_a_failing_worker_fails_the_launch_with_its_error(data, tmp_path):
    """Per-rank data paths (``{rank}``) with rank 1's copy missing: the launch fails and shows rank 1's error."""
    per_rank = os.path.join(os.path.dirname(data), "rank{rank}")
    os.symlink(data, os.path.join(os.path.dirname(data), "rank0"))  # rank 1's copy of the data is missing
    proc = distribute(tmp_path / "run", "--", *EXACT, "--batch_size", 8, "--data_path", per_rank)
    assert proc.returncode != 0
    assert "worker 1: FAILED" in proc.stdout
    assert "rank1" in proc.stdout and "error:" in proc.stdout
    assert "distributed training FAILED" in proc.stderr


def test_a_busy_master_port_is_a_one_line_error(tmp_path):
    """Checked before any worker starts: msrun would otherwise hang or fail deep inside the workers."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", "run_distribute_train.sh"), "--worker_num", "2",
                               "--master_port", str(port), "--run_dir", str(tmp_path / "run")],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"error: port {port} is in use on this machine (another run?): pick a free one with --master_port")
    assert not (tmp_path / "run").exists()
