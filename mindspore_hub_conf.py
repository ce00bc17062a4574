"""MindSpore Hub configuration: ``create_network(name, *args, **kwargs)`` (implementation in ``src/hub.py``).

mindspore_hub loads this file by path with the repository directory first on ``sys.path``; the insert below makes
a plain ``spec_from_file_location`` load work as well.
"""
import os
import sys

_REPO = os.path.dirname(os.path.abspath(__file__))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from src.hub import create_network, hub_names  # noqa: E402  (needs the repo root on sys.path)

__all__ = ["create_network", "hub_names"]
