"""Any model file opened for ``eval.py`` and ``infer.py``: a runner, with what the model is settled in ``cfg``.

MindSpore is not imported here: a ``.ms`` model runs without it (a ``.mindir`` runner imports it itself).
"""
from src.deploy.runtimes import CellRunner, model_kind, open_runner
from src.record import reconcile


def open_model(cfg, path):
    """A runner for any model file, with ``cfg`` completed and checked against what the file is.

    A checkpoint fills ``cfg`` from its model record (see :func:`src.flows.network.build_cell`). An exported graph
    is fixed to an input size and a class count: both are read from the file itself, and its record (sidecar
    ``<file>.json``, or ONNX metadata) supplies the model name, preprocessing and class names. A flag that
    contradicts the file is a one-line error; without a record, one warning names the values that are guesses.
    """
    if model_kind(path) == "ckpt":
        from .network import build_cell, form_of  # lazy: MindSpore and the model code only for a .ckpt

        net, record = build_cell(cfg, path)
        return CellRunner(net, record, form_of(net))
    runner = open_runner(path)
    size = runner.input_shape[2]
    reconcile(cfg, path, runner.record, graph={"num_classes": runner.num_classes,
                                               "image_size": size if size > 0 else None})
    return runner
