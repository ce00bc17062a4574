"""Convert public PyTorch GhostNet / RepGhostNet / GhostNetV2 weights into MindSpore checkpoints (no PyTorch
needed)."""
from .cli import main
from .converter import ConversionReport, convert_checkpoint, load_source
from .mapping import ConversionError, clean_state_dict, map_to_model, select_state_dict
from .torch_reader import TorchReadError, load_torch_file

__all__ = ["ConversionError", "ConversionReport", "TorchReadError", "clean_state_dict", "convert_checkpoint",
           "load_source", "load_torch_file", "main", "map_to_model", "select_state_dict"]
