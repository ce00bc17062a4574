"""Shared test setup: CPU with the project's CPU defaults (oneDNN capped at AVX2, as the entry points do), PyNative
by default (tests that need GRAPH mode switch and restore), and a decode cache of this session's own
(``GHOSTNET_CACHE_DIR``, inherited by the entry points the tests start)."""
import os
import tempfile

import mindspore as ms
import pytest

from src.runtime import cpu_defaults

os.environ["GHOSTNET_CACHE_DIR"] = tempfile.mkdtemp(prefix="ghostnet-test-cache-")
ms.set_device("CPU")
cpu_defaults()
ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture
def graph_mode():
    """Run one test in GRAPH mode, then return to PyNative."""
    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=ms.PYNATIVE_MODE)
