"""GhostNet, RepGhostNet and GhostNetV2 as MindSpore Cells, plus the model registry."""
from .ghostnet import GhostModule, GhostNet
from .ghostnetv2 import GhostModuleV2, GhostNetV2
from .layers import ConvBnAct, GhostBottleneck, SqueezeExcite, make_divisible
from .registry import (check_input_size, create_model, list_models, load_checkpoint_strict, model_family,
                       read_checkpoint, write_checkpoint)
from .repghost import RepGhostModule, RepGhostNet, is_train_form, reparameterize, reparameterize_params

RepGhostBottleneck = GhostBottleneck  # the same bottleneck; RepGhostNet builds it with RepGhost modules

__all__ = ["check_input_size", "ConvBnAct", "create_model", "GhostBottleneck", "GhostModule", "GhostModuleV2",
           "GhostNet", "GhostNetV2", "is_train_form", "list_models", "load_checkpoint_strict", "make_divisible",
           "model_family", "read_checkpoint", "reparameterize", "reparameterize_params", "RepGhostBottleneck",
           "RepGhostModule", "RepGhostNet", "SqueezeExcite", "write_checkpoint"]
