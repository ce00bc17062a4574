"""Benchmark rows: one model in one runtime, with the thread settings it runs with.

A row is built from a Cell, a model file or a peer's model and times whole batches (input creation excluded,
output fetched to NumPy / host). Every runtime here is one the project ships or a peer a user would pick instead.
"""
import numpy as np

from src.deploy.runtimes import onnx_session

from .timing import time_calls


class Skip(Exception):
    """A row that cannot run here (a missing optional package); the message says how to get it."""


class Row:
    """``key`` (``model/runtime``), what it runs, and the row whose time its ratio is taken against."""

    def __init__(self, spec, runtime, source, settings, ref=None, path=None):
        self.spec, self.runtime, self.source, self.settings, self.ref, self.path = \
            spec, runtime, source, settings, ref, path
        self.key = f"{spec.key}/{runtime}"

    fixed_batch = None  # set for a file exported with a fixed batch: the row only runs at that batch

    def supports(self, batch):
        return self.fixed_batch in (None, batch)

    def batch(self, n):
        return np.random.default_rng(0).normal(size=(n, 3, self.spec.image_size, self.spec.image_size)) \
            .astype(np.float32)

    def describe(self):
        return {"key": self.key, "model": self.spec.key, "runtime": self.runtime, "source": self.source,
                "settings": self.settings, "ref": self.ref, "file": self.path}


class CallRow(Row):
    """Timed in this process: ``make(batch) -> fn`` builds the call for a batch size once; ``before()`` runs
    before each group of calls (MindSpore rows select their execution mode there)."""

    def __init__(self, spec, runtime, source, settings, make, ref=None, path=None, before=None):
        super().__init__(spec, runtime, source, settings, ref, path)
        self.make, self.before, self.calls = make, before, {}

    def prepare(self, batch, warmup):
        if self.before:
            self.before()
        self.calls[batch] = self.make(self.batch(batch))
        time_calls(self.calls[batch], warmup)

    def time(self, batch, calls):
        if self.before:
            self.before()
        return time_calls(self.calls[batch], calls)


class LiteRow(Row):
    """A ``.ms`` file timed inside the Lite side env's timing server (interleaved like the others)."""

    def __init__(self, spec, server, path, threads, ref=None, runtime="mindspore-lite", source="ours"):
        super().__init__(spec, runtime, source, f"Lite 2.0 CPU, threads {threads}, affinity off", ref, path)
        self.server, self.threads = server, threads

    def prepare(self, batch, warmup):
        self.server.load(f"{self.key}@{batch}", self.path, [batch, 3, self.spec.image_size, self.spec.image_size],
                         self.threads)
        self.server.time(f"{self.key}@{batch}", warmup)

    def time(self, batch, calls):
        return self.server.time(f"{self.key}@{batch}", calls)


def mindspore_cell(spec, net, mode, source, threads, ref=None):
    """A MindSpore Cell in PYNATIVE or GRAPH mode (the mode is switched before each group of calls: compiled
    graphs are kept per Cell, so switching back and forth does not recompile)."""
    import mindspore as ms

    ms_mode = ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE

    def make(x):
        tensor = ms.Tensor(x)
        return lambda: net(tensor).asnumpy()

    runtime = f"mindspore-{mode}" if source == "ours" else f"{source}-{mode}"
    return CallRow(spec, runtime, source, f"MindSpore {ms.__version__} {mode.upper()}, {threads}", make, ref,
                   before=lambda: ms.set_context(mode=ms_mode))


def mindir(spec, path, threads, ref=None, runtime="mindir-graphcell", source="ours"):
    """The exported MINDIR through ``mindspore.load`` + ``nn.GraphCell`` (GRAPH mode)."""
    import mindspore as ms

    from src.deploy.runtimes import MindirRunner

    runner = MindirRunner(path)

    def make(x):
        tensor = ms.Tensor(x)
        return lambda: runner.cell(tensor).asnumpy()

    row = CallRow(spec, runtime, source, f"MindSpore {ms.__version__} GraphCell, {threads}", make, ref,
                  path, before=lambda: ms.set_context(mode=ms.GRAPH_MODE))
    row.fixed_batch = runner.input_shape[0] if runner.input_shape[0] > 0 else None
    return row


def onnxruntime_row(spec, path, runtime, source, threads, ref=None):
    """An ONNX file in onnxruntime with the project's session settings (``src.deploy.runtimes.onnx_session``)."""
    import onnxruntime as ort

    session = onnx_session(path, threads)
    name, batch = session.get_inputs()[0].name, session.get_inputs()[0].shape[0]

    def make(x):
        return lambda: session.run(None, {name: x})[0]

    row = CallRow(spec, runtime, source, f"onnxruntime {ort.__version__}, intra-op threads {threads}, no spinning, "
                  "all graph optimisations (NCHWc)", make, ref, path)
    row.fixed_batch = batch if isinstance(batch, int) else None
    return row


def torch_row(spec, compiled, threads, ref=None):
    """timm's model of the same architecture in PyTorch eager or ``torch.compile`` (inductor)."""
    import torch

    from .models import timm_model

    torch.set_num_threads(threads)
    model = timm_model(spec)
    run = torch.compile(model) if compiled else model

    def make(x):
        tensor = torch.from_numpy(x)

        def call():
            with torch.inference_mode():
                return run(tensor).numpy()
        return call

    runtime = "torch-compile" if compiled else "torch-eager"
    return CallRow(spec, runtime, "timm", f"PyTorch {torch.__version__} {'inductor' if compiled else 'eager'}, "
                   f"threads {threads}", make, ref)


def file_row(spec, path, runtime, threads, server=None, ref=None, source="file"):
    """A row for any model file in the runtime its extension names: ``.onnx`` onnxruntime, ``.ms`` MindSpore Lite,
    ``.mindir`` GraphCell. This is how int8 (or any other) exports join a run: one ``--model_file`` or one line
    in :func:`benchmarks.run.plan`."""
    if path.endswith(".onnx"):
        return onnxruntime_row(spec, path, runtime, source, threads, ref)
    if path.endswith(".ms"):
        if server is None:
            raise Skip("no MindSpore Lite side env (scripts/setup_lite_env.sh)")
        return LiteRow(spec, server, path, threads, ref, runtime, source)
    if path.endswith(".mindir"):
        return mindir(spec, path, threads, ref, runtime, source)
    raise ValueError(f"cannot benchmark {path}: expected .onnx, .ms or .mindir")
