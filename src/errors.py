"""The project's own error types: problems a user can fix, printed by the entry points as one ``error:`` line.

Everything else (a ``ValueError`` from deep inside MindSpore, a ``KeyError`` in our code) is a bug and keeps its
traceback: :func:`src.config.run_cli` catches only :class:`ProjectError`.
"""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository root, computed once


class ProjectError(Exception):
    """A problem with the user's input, files or environment; one line says what is wrong and how to fix it."""


class ConfigError(ProjectError, ValueError):
    """A configuration key or value is wrong."""


class DataError(ProjectError, ValueError):
    """An input file (dataset, image, label list, checkpoint) is missing, corrupt, empty or inconsistent."""


class OutputError(ProjectError, OSError):
    """An output cannot be written (not a directory, no permission, disk full); nothing partial is left."""


class DeployError(ProjectError, ValueError):
    """A deployment step failed for a reason the user can act on (a model file that is not one, a flag that
    contradicts it, an export that does not verify); also :class:`src.deploy.DeployError`."""
