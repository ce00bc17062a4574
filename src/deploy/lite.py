"""MindSpore Lite from the main interpreter: a ``converter_lite`` on PATH, or the Python 3.7 side env.

PyPI's only ``mindspore-lite`` (2.0.0) needs Python 3.7 and rejects MINDIR from MindSpore 2.x, so the side env
converts ONNX -> ``.ms`` and runs ``.ms`` files through ``lite_worker.py`` in a subprocess. No MindSpore import.
"""
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np

from src.errors import ROOT

from . import DeployError

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lite_worker.py")
SETUP_SCRIPT = os.path.join(ROOT, "scripts", "setup_lite_env.sh")


def side_env_python():
    """The side env's interpreter (``$LITE_PYTHON`` or ``<repo>/.venv-lite/bin/python``), or None."""
    path = os.environ.get("LITE_PYTHON") or os.path.join(ROOT, ".venv-lite", "bin", "python")
    return path if os.access(path, os.X_OK) else None


def converter_cli():
    """Path of a MindSpore Lite toolkit's ``converter_lite`` on PATH, or None."""
    return shutil.which("converter_lite")


def require_side_env():
    """The side env's interpreter; a one-line error telling how to create it when missing."""
    python = side_env_python()
    if python is None:
        raise DeployError(f"MindSpore Lite side env not found: run {os.path.relpath(SETUP_SCRIPT)} (needs a "
                          "Python 3.7 interpreter), set LITE_PYTHON, or put a Lite toolkit's converter_lite on PATH")
    return python


def _run(cmd, what):
    """Run a Lite command quietly; a failure becomes a DeployError quoting its last error line."""
    env = dict(os.environ, GLOG_v="3")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        raise DeployError(f"MindSpore Lite {what} failed: {lines[-1] if lines else 'exit ' + str(proc.returncode)}")
    return proc.stdout


def _worker(command, *args):
    return _run([require_side_env(), WORKER, command, *args], command)


def _json_line(stdout):
    return json.loads([ln for ln in stdout.splitlines() if ln.startswith("{")][-1])


def convert_onnx(onnx_file, ms_file, config_file=""):
    """ONNX -> ``ms_file`` (must end in .ms) in the side env."""
    _worker("convert", "--onnx", onnx_file, "--output", ms_file[:-len(".ms")], "--config_file", config_file)


def convert_mindir(mindir_file, ms_file, config_file=""):
    """MINDIR -> ``ms_file`` with a current toolkit's ``converter_lite`` (handles MindSpore 2.x MINDIR)."""
    cmd = [converter_cli(), "--fmk=MINDIR", f"--modelFile={mindir_file}", f"--outputFile={ms_file[:-len('.ms')]}",
           "--inputDataFormat=NCHW"]  # the default NHWC would transpose the model input
    _run(cmd + ([f"--configFile={config_file}"] if config_file else []), "converter_lite")


def io_shapes(ms_file):
    """``(input shape, output shape)`` of a ``.ms`` model (-1 for a dynamic dimension)."""
    info = _json_line(_worker("info", "--model", ms_file))
    return info["input_shape"], info["output_shape"]


def predict(ms_file, batch, threads=2, chunk=0):
    """Logits of a float32 NCHW batch from a ``.ms`` model, run whole or ``chunk`` images at a time (the worker
    resizes the input to the run). The batch size matters for int8 models: Lite 2.0's x86 int8 kernels give
    logits that differ by up to ~0.7 between batch 1 and batch 200 for the same image (measured)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
        np.save(src, np.ascontiguousarray(batch, dtype=np.float32))
        _worker("predict", "--model", ms_file, "--input", src, "--output", dst, "--threads", str(threads),
                "--chunk", str(chunk))
        return np.load(dst)


class TimingServer:
    """A long-lived side-env worker that loads ``.ms`` models and times runs on request, so that Lite rows of a
    benchmark are interleaved with other runtimes' rows run for run (``lite_worker.py serve``)."""

    def __init__(self):
        env = dict(os.environ, GLOG_v="3")
        self.proc = subprocess.Popen([require_side_env(), WORKER, "serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, bufsize=1)

    def _ask(self, **request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        line = self.proc.stdout.readline()
        if not line:
            raise DeployError(f"MindSpore Lite timing worker exited (code {self.proc.wait()})")
        answer = json.loads(line)
        if "error" in answer:
            raise DeployError(f"MindSpore Lite timing worker: {answer['error']}")
        return answer

    def load(self, key, ms_file, shape, threads=2, affinity=0):
        """Build ``ms_file`` for input ``shape`` under ``key`` (one warm-up run included)."""
        self._ask(op="load", key=key, model=ms_file, shape=list(shape), threads=threads, affinity=affinity)

    def time(self, key, runs):
        """``[(wall ms, process CPU ms)]`` of ``runs`` consecutive predictions of model ``key``."""
        return [tuple(t) for t in self._ask(op="time", key=key, runs=runs)["ms"]]

    def version(self):
        """The side env's ``mindspore_lite`` version."""
        return self._ask(op="version")["version"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def benchmark(ms_file, shape, threads=2, warmup=10, loops=100):
    """Per-run latencies (ms) of ``ms_file`` on a random input of ``shape`` after ``warmup`` runs."""
    out = _worker("bench", "--model", ms_file, "--shape", ",".join(map(str, shape)), "--threads", str(threads),
                  "--warmup", str(warmup), "--loops", str(loops))
    return _json_line(out)["latencies_ms"]
