"""Export (MINDIR / ONNX / AIR / MindSpore Lite .ms) writers, verification of exported files, runtimes and
inference on images: the pieces ``src.flows`` puts together for export.py, infer.py and eval.py.

Nothing here imports MindSpore at module level: running a ``.ms`` file needs only the Lite side env.
"""
from src.errors import DeployError

__all__ = ["DeployError"]
