"""Optional packages: the one place that knows which feature needs a package outside ``requirements.txt``.

Training, QAT, evaluation, inference, MINDIR export and Hub loading need only ``requirements.txt``. Writing ONNX
files (and ``.ms`` files, which are converted from ONNX) needs ``onnx``; running ONNX files needs ``onnxruntime``;
drawing the documentation's figures (``python -m benchmarks.plots``) needs ``matplotlib``.
A module imports such a package with :func:`optional_module`, so importing the module never fails; using the
package when it is missing raises :class:`MissingPackage`, one line naming the package to install. Entry points
call :func:`require` before any work, so nothing is computed or written first.
"""
import importlib
import importlib.util

from .errors import ProjectError

PACKAGES = {"onnx": "onnx>=1.15", "onnxruntime": "onnxruntime>=1.17",
            "matplotlib": "matplotlib>=3.7"}  # the pins of requirements-test.txt


class MissingPackage(ProjectError, ImportError):
    """An optional package that the requested feature needs is not installed."""


def available(name):
    """True when the top-level package ``name`` can be imported."""
    return importlib.util.find_spec(name) is not None


def require(name, feature):
    """Raise :class:`MissingPackage` unless ``name`` is installed; ``feature`` says what needs it."""
    if not available(name):
        raise MissingPackage(f"{feature} needs the optional package {name}: pip install '{PACKAGES[name]}' "
                             f"(or pip install -r requirements-test.txt for every optional package)")


class _Absent:
    """Stands in for a module that is not installed: any attribute access raises :class:`MissingPackage`."""

    def __init__(self, name, feature):
        self._name, self._feature = name, feature

    def __getattr__(self, attr):
        if attr.startswith("__"):  # hasattr, inspect, copy: a missing module has no such attribute
            raise AttributeError(attr)
        require(self._name.split(".")[0], self._feature)
        raise AssertionError(f"{self._name} is installed but was not importable at start-up")


def optional_module(name, feature):
    """Module ``name`` (e.g. ``onnx.helper``), or a stand-in that raises :class:`MissingPackage` when used."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name.split(".")[0]:  # the package is there but broken: a real error
            raise
        return _Absent(name, feature)
