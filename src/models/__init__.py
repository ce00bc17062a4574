"""GhostNet, RepGhostNet, GhostNetV2 and GhostNetV3 as MindSpore Cells, plus plug-and-play Ghost modules and the model registry."""
from .features import FeatureExtractor, FeatureInfo
from .ghostify import GhostifyReport, ghostify
from .ghostnet import GhostModule, GhostNet, GhostNetNoSE
from .ghostnet_600m import GhostNet600M
from .ghostnetv2 import GhostModuleV2, GhostNetV2
from .ghostnetv3 import GhostBottleneckV3, GhostModuleV3, GhostNetV3
from .layers import ConvBnAct, GhostBottleneck, SqueezeExcite, make_divisible, reparameterizable_cells
from .registry import (check_input_size, create_model, has_deploy_form, list_models, load_checkpoint_strict,
                       model_family, read_checkpoint, saved_deployed, write_checkpoint)
from .reparam import is_train_form
from .repghost import RepGhostModule, RepGhostNet, reparameterize, reparameterize_params

RepGhostBottleneck = GhostBottleneck  # the same bottleneck; RepGhostNet builds it with RepGhost modules

__all__ = ["check_input_size", "ConvBnAct", "FeatureExtractor", "FeatureInfo", "GhostBottleneck", "GhostModule", "GhostModuleV2",
           "GhostNet", "GhostNet600M", "GhostNetNoSE", "GhostNetV2", "GhostBottleneckV3", "GhostModuleV3", "GhostNetV3", "GhostifyReport", "RepGhostBottleneck",
           "RepGhostModule", "RepGhostNet", "SqueezeExcite", "create_model", "ghostify", "has_deploy_form",
           "list_models", "is_train_form", "load_checkpoint_strict", "make_divisible", "model_family", "read_checkpoint",
           "reparameterizable_cells", "saved_deployed", "reparameterize", "reparameterize_params", "write_checkpoint"]
