"""Stand-in, see ``torchvision/__init__.py``; ``InterpolationMode`` is real because timm reads its members."""
from enum import Enum

from .._placeholder import module_getattr


class InterpolationMode(Enum):
    """The members timm maps to PIL names."""
    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


__getattr__ = module_getattr(__name__)
