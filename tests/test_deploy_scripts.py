"""Exit codes of the shell launchers (scripts/common.sh helpers, run in bash on fake worker logs: no training)."""
import subprocess

import pytest

from helpers import ROOT


def failure_code(log_dir):
    proc = subprocess.run(["bash", "-c", f'source "{ROOT}/scripts/common.sh" && failure_code "$1"', "_", log_dir],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


@pytest.mark.parametrize("logs, code", [
    ({"worker_0.log": "12:00:01 epoch 1\n", "worker_1.log": "error: --data_path directory not found: rank1\n"}, 2),
    ({"worker_0.log": "Traceback (most recent call last):\nKeyError: 'x'\n", "worker_1.log": "error: x\n"}, 1),
    ({"worker_0.log": "Segmentation fault\n"}, 1),
])
def test_a_distributed_run_that_refused_bad_input_exits_2(tmp_path, logs, code):
    """docs/data.md "Bad input": every launch script answers bad input with exit code 2; a crash stays 1."""
    for name, text in logs.items():
        (tmp_path / name).write_text(text)
    assert failure_code(str(tmp_path)) == code

