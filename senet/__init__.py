"""SENet Explorer's library: SE-ResNet / SE-DenseNet model zoo, safe checkpoints and explanations.

Importable without Gradio.
"""

from . import densenet as _densenet  # noqa: F401  (registers the DenseNet family)
from . import resnet as _resnet  # noqa: F401  (registers the ResNet family)
from .layers import SEBlockInfo, SqueezeExcitation, se_blocks
from .registry import create_model, list_models, register_model

__all__ = [
    "SEBlockInfo",
    "SqueezeExcitation",
    "create_model",
    "list_models",
    "register_model",
    "se_blocks",
]

from .card import ModelCard  # noqa: E402
from .checkpoint import CheckpointError, load_checkpoint, read_card, save_checkpoint  # noqa: E402

__all__ += ["CheckpointError", "ModelCard", "load_checkpoint", "read_card", "save_checkpoint"]

from .explain import (  # noqa: E402
    CAM_METHODS,
    Analysis,
    CamMethod,
    analyze,
    cam_layers,
    channel_map,
    strongest_channels,
)
from .heatmaps import heatmap_image, overlay  # noqa: E402
from .profiles import class_profiles, class_profiles_from_folder  # noqa: E402

__all__ += [
    "CAM_METHODS",
    "Analysis",
    "CamMethod",
    "analyze",
    "cam_layers",
    "channel_map",
    "class_profiles",
    "class_profiles_from_folder",
    "heatmap_image",
    "overlay",
    "strongest_channels",
]
