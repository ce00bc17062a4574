"""Export (MINDIR / ONNX / AIR / MindSpore Lite .ms), verification of exported files, and inference on images.

Nothing here imports MindSpore at module level: running a ``.ms`` file needs only the Lite side env.
"""

from src.errors import ProjectError


class DeployError(ProjectError, ValueError):
    """A deployment step failed for a reason the user can act on; entry points print it as one line."""
