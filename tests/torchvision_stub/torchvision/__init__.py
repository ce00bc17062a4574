"""Test-only stand-in for ``torchvision``: just enough for ``import timm`` to succeed.

timm imports torchvision at module level (datasets, transforms, ``FrozenBatchNorm2d``) even though building and
running the GhostNet models never uses it, and the real torchvision's compiled ops do not load with the torch
wheel pinned for the tests. Every public name resolves to a placeholder class that raises when instantiated, so
any real use fails loudly instead of silently doing something else. Only ``tests/test_convert.py`` puts this
directory on ``sys.path``.
"""
from ._placeholder import module_getattr

__version__ = "0.0.0+stub"
__getattr__ = module_getattr(__name__)
