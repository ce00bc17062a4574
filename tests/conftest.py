"""Shared test setup: CPU, PyNative by default (tests that need GRAPH mode switch and restore)."""
import mindspore as ms
import pytest

ms.set_device("CPU")
ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture
def graph_mode():
    """Run one test in GRAPH mode, then return to PyNative."""
    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=ms.PYNATIVE_MODE)
