"""One interface over every runtime: ``runner(batch) -> logits`` for a Cell, MINDIR, ONNX or Lite ``.ms`` file.

Export verification and ``infer.py`` both use these, so an exported file is checked by exactly the code that
later serves it. MindSpore is imported only by the runners that need it (a ``.ms`` file runs without it). A
checkpoint's network is built by :func:`src.flows.network.build_cell` and wrapped in a :class:`CellRunner`.
"""
import os

import numpy as np

from src.extras import available, require
from src.record import CKPT_KEY, parse_record, read_sidecar

from . import DeployError, lite

EXTENSIONS = {".ckpt": "ckpt", ".mindir": "mindir", ".onnx": "onnx", ".ms": "lite"}


def not_a_model(path, fmt, cause=None):
    """The error for a file that does not parse as a ``fmt`` model (corrupt, cut short, empty or another format);
    the first line of the runtime's own message, when there is one, is kept."""
    detail = f" ({str(cause).strip().splitlines()[0]})" if cause is not None and str(cause).strip() else ""
    return DeployError(f"{path} is not a valid {fmt} file (corrupt, cut short or another format){detail}; "
                       "re-export it")


class Runner:
    """What every runner shares: ``runner(batch) -> logits``, and ``run_chunks`` for many batches at once."""

    def run_chunks(self, inputs, chunk):
        """Logits of ``inputs`` run ``chunk`` images at a time."""
        return np.concatenate([self(inputs[i:i + chunk]) for i in range(0, len(inputs), chunk)])


class CellRunner(Runner):
    """A MindSpore Cell (any batch size; input size chosen by the caller); ``form``: the checkpoint's form (train,
    deploy or qat)."""

    def __init__(self, net, record=None, form=None):
        self.net = net
        self.input_shape = [-1, 3, -1, -1]
        self.num_classes = net.num_classes
        self.record = record
        self.form = form

    def __call__(self, batch):
        import mindspore as ms  # lazy: deploy imports MindSpore only where it runs a model (a .ms needs none)

        return self.net(ms.Tensor(np.ascontiguousarray(batch, dtype=np.float32))).asnumpy()


class MindirRunner(Runner):
    """A ``.mindir`` file through ``mindspore.load`` + ``nn.GraphCell``; input shape read from the MindIR proto."""

    def __init__(self, path):
        # lazy: deploy imports MindSpore only where it runs a model (a .ms needs none)
        import mindspore as ms
        from google.protobuf.message import DecodeError
        from mindspore.train import mind_ir_pb2

        proto = mind_ir_pb2.ModelProto()
        with open(path, "rb") as f:
            try:
                proto.ParseFromString(f.read())
            except DecodeError:
                raise not_a_model(path, "MINDIR") from None
        graph = proto.graph
        if not (graph.input and graph.input[0].tensor and graph.output and graph.output[0].tensor):
            raise not_a_model(path, "MINDIR")
        self.input_shape = [int(d) for d in graph.input[0].tensor[0].dims]
        self.num_classes = int(graph.output[0].tensor[0].dims[-1])
        self.record = read_sidecar(path)
        try:
            self.cell = ms.nn.GraphCell(ms.load(path))
        except RuntimeError as exc:  # "Load MindIR failed." for a proto that is not a MindSpore graph
            if "Load MindIR failed" not in str(exc):
                raise
            raise not_a_model(path, "MINDIR", exc) from None

    def __call__(self, batch):
        import mindspore as ms  # lazy: deploy imports MindSpore only where it runs a model (a .ms needs none)

        return self.cell(ms.Tensor(np.ascontiguousarray(batch, dtype=np.float32))).asnumpy()


class OnnxRunner(Runner):
    """An ``.onnx`` file through onnxruntime (CPU)."""

    def __init__(self, path):
        self.session = onnx_session(path)
        self.input = self.session.get_inputs()[0]
        self.input_shape = [d if isinstance(d, int) else -1 for d in self.input.shape]
        self.num_classes = self.session.get_outputs()[0].shape[-1]
        self.record = read_sidecar(path) or onnx_record(self.session)

    def __call__(self, batch):
        return self.session.run(None, {self.input.name: np.ascontiguousarray(batch, dtype=np.float32)})[0]


class LiteRunner(Runner):
    """A ``.ms`` file through MindSpore Lite in the side env (resizable batch)."""

    def __init__(self, path, threads=2):
        self.path, self.threads = path, threads
        self.input_shape, output_shape = lite.io_shapes(path)
        self.num_classes = output_shape[-1]
        self.record = read_sidecar(path)

    def __call__(self, batch):
        return lite.predict(self.path, batch, self.threads)

    def run_chunks(self, inputs, chunk):
        """``inputs`` run ``chunk`` images at a time in one worker process (starting one per batch cost ~0.5 s)."""
        return lite.predict(self.path, inputs, self.threads, chunk)


def onnx_session(path, threads=0):
    """An onnxruntime CPU session with the project's settings: every graph optimisation (the NCHWc blocked layout
    that :mod:`src.deploy.onnx_graph` aligns the graph for), ``threads`` intra-op threads (0: onnxruntime's
    default, one per physical core) and no spin-waiting: spinning worker threads took the CPU from everything else
    on a loaded 2-core machine (GhostNet 1.0x, 2 threads: 1.9x slower with spinning, docs/benchmarks.md
    "Performance")."""
    # lazy: onnxruntime is optional (src.extras); open_runner asks for it before a session is made
    import onnxruntime as ort
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument, InvalidProtobuf

    options = ort.SessionOptions()
    options.log_severity_level = 3  # a dynamic-batch export declares a fixed output batch: ORT warns per run
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = int(threads)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except (InvalidProtobuf, InvalidArgument) as exc:  # cut/foreign bytes; an empty file: "No graph was found"
        raise not_a_model(path, "ONNX", exc) from None


def onnx_record(session):
    """The model record an exported ONNX file carries in its metadata (``export.py`` writes it), or None."""
    raw = session.get_modelmeta().custom_metadata_map.get(CKPT_KEY)
    return parse_record(raw, "ONNX metadata") if raw else None


def onnxruntime_available():
    """True when onnxruntime is installed."""
    return available("onnxruntime")


def model_kind(path):
    """What kind of model file ``path`` is by its extension (ckpt, mindir, onnx or lite); refuses other
    extensions and missing files."""
    kind = EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if kind is None:
        raise DeployError(f"cannot run '{path}': expected one of {', '.join(EXTENSIONS)}")
    if not os.path.isfile(path):
        raise DeployError(f"model file not found: {path}")
    return kind


def open_runner(path):
    """A runner for an exported file (``.mindir``, ``.onnx`` or ``.ms``) chosen by its extension; the runner
    holds what the file fixes (input shape, class count) and its record. A checkpoint has no graph of its own:
    its network is built from the configuration (:func:`src.flows.model.open_model`)."""
    kind = model_kind(path)
    if kind == "ckpt":
        raise ValueError(f"{path} is a checkpoint: open it with src.flows.model.open_model (its network is built)")
    if kind == "mindir":
        return MindirRunner(path)
    if kind == "onnx":
        require("onnxruntime", "running .onnx files")
        return OnnxRunner(path)
    return LiteRunner(path)
