"""Shared test setup: CPU, PyNative by default (tests that need GRAPH mode switch and restore), and a decode
cache of this session's own (``GHOSTNET_CACHE_DIR``, inherited by the entry points the tests start)."""
import os
import tempfile

import mindspore as ms
import pytest

os.environ["GHOSTNET_CACHE_DIR"] = tempfile.mkdtemp(prefix="ghostnet-test-cache-")
ms.set_device("CPU")
ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture
def graph_mode():
    """Run one test in GRAPH mode, then return to PyNative."""
    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=ms.PYNATIVE_MODE)
