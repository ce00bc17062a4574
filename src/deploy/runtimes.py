"""One interface over every runtime: ``runner(batch) -> logits`` for a Cell, MINDIR, ONNX or Lite ``.ms`` file.

Export verification and ``infer.py`` both use these, so an exported file is checked by exactly the code that
later serves it. MindSpore is imported only by the runners that need it (a ``.ms`` file runs without it).
"""
import os

import numpy as np

from . import DeployError, lite

EXTENSIONS = {".ckpt": "ckpt", ".mindir": "mindir", ".onnx": "onnx", ".ms": "lite"}


def build_cell(cfg, ckpt_file=""):
    """The network of ``cfg.model`` in eval mode, strictly loaded from ``ckpt_file`` when given.

    A RepGhost network is built in the form its checkpoint was saved in (deploy form: no ``fusion_bn``
    parameters) and, with ``cfg.deploy``, a train-form one is re-parameterized after loading.
    """
    import mindspore as ms

    from src.models import create_model, load_checkpoint_strict, model_family, reparameterize

    kwargs = {"dropout": cfg.dropout}
    repghost = model_family(cfg.model) == "repghostnet"
    if repghost:
        kwargs["deploy"] = (bool(cfg.deploy) if not ckpt_file else os.path.isfile(ckpt_file) and not any(
            ".fusion_bn." in k for k in ms.load_checkpoint(ckpt_file)))
    net = create_model(cfg.model, num_classes=cfg.num_classes, **kwargs)
    if ckpt_file:
        try:
            load_checkpoint_strict(net, ckpt_file)
        except ValueError as exc:
            raise DeployError(f"checkpoint does not match --model {cfg.model} --num_classes {cfg.num_classes} "
                              f"(another architecture, width or class count?): {exc}") from None
    if repghost and cfg.deploy:
        reparameterize(net)
    net.set_train(False)
    return net


class CellRunner:
    """A MindSpore Cell (any batch size; input size chosen by the caller)."""

    def __init__(self, net):
        self.net = net
        self.input_shape = [-1, 3, -1, -1]

    def __call__(self, batch):
        import mindspore as ms

        return self.net(ms.Tensor(np.ascontiguousarray(batch, dtype=np.float32))).asnumpy()


class MindirRunner:
    """A ``.mindir`` file through ``mindspore.load`` + ``nn.GraphCell``; input shape read from the MindIR proto."""

    def __init__(self, path):
        import mindspore as ms
        from mindspore.train import mind_ir_pb2

        proto = mind_ir_pb2.ModelProto()
        with open(path, "rb") as f:
            proto.ParseFromString(f.read())
        self.input_shape = [int(d) for d in proto.graph.input[0].tensor[0].dims]
        self.cell = ms.nn.GraphCell(ms.load(path))

    def __call__(self, batch):
        import mindspore as ms

        return self.cell(ms.Tensor(np.ascontiguousarray(batch, dtype=np.float32))).asnumpy()


class OnnxRunner:
    """An ``.onnx`` file through onnxruntime (CPU)."""

    def __init__(self, path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # a dynamic-batch export declares a fixed output batch: ORT warns per run
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0]
        self.input_shape = [d if isinstance(d, int) else -1 for d in self.input.shape]

    def __call__(self, batch):
        return self.session.run(None, {self.input.name: np.ascontiguousarray(batch, dtype=np.float32)})[0]


class LiteRunner:
    """A ``.ms`` file through MindSpore Lite in the side env (resizable batch)."""

    def __init__(self, path, threads=2):
        self.path, self.threads = path, threads
        self.input_shape = lite.input_shape(path)

    def __call__(self, batch):
        return lite.predict(self.path, batch, self.threads)


def onnxruntime_available():
    """True when onnxruntime can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def open_runner(path, cfg=None):
    """A runner for ``path`` chosen by its extension (``.ckpt`` needs ``cfg`` to build the network)."""
    kind = EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if kind is None:
        raise DeployError(f"cannot run '{path}': expected one of {', '.join(EXTENSIONS)}")
    if not os.path.isfile(path):
        raise DeployError(f"model file not found: {path}")
    if kind == "ckpt":
        return CellRunner(build_cell(cfg, path))
    if kind == "mindir":
        return MindirRunner(path)
    if kind == "onnx":
        if not onnxruntime_available():
            raise DeployError("running .onnx files needs onnxruntime: pip install onnxruntime")
        return OnnxRunner(path)
    return LiteRunner(path)
