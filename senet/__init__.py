"""SENet Explorer's library: SE-ResNet / SE-DenseNet / SE-ResNeXt model zoo, safe checkpoints and explanations.

Importable without Gradio. Each model family lives in its own module and registers itself on import (one line
below per family).
"""

from . import densenet as _densenet  # noqa: F401  (registers the DenseNet family)
from . import resnet as _resnet  # noqa: F401  (registers the ResNet family)
from . import resnext as _resnext  # noqa: F401  (registers the ResNeXt family)
from .family import FamilyModel
from .layers import SEBlockInfo, SqueezeExcitation, se_blocks
from .options import OptionError
from .registry import create_model, display_name, list_models, model_class, model_family, register_model

__all__ = [
    "FamilyModel",
    "OptionError",
    "SEBlockInfo",
    "SqueezeExcitation",
    "create_model",
    "display_name",
    "list_models",
    "model_class",
    "model_family",
    "register_model",
    "se_blocks",
]

from .card import ModelCard  # noqa: E402
from .checkpoint import CheckpointError, load_checkpoint, read_card, save_checkpoint  # noqa: E402

__all__ += ["CheckpointError", "ModelCard", "load_checkpoint", "read_card", "save_checkpoint"]

from .calibration import calibrated_probabilities  # noqa: E402
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
from .predict import predict  # noqa: E402
from .profiles import class_profiles, class_profiles_from_folder  # noqa: E402

__all__ += [
    "CAM_METHODS",
    "Analysis",
    "CamMethod",
    "analyze",
    "calibrated_probabilities",
    "cam_layers",
    "channel_map",
    "class_profiles",
    "class_profiles_from_folder",
    "heatmap_image",
    "overlay",
    "predict",
    "strongest_channels",
]

from .interventions import Intervention, InterventionError, intervene  # noqa: E402

__all__ += ["Intervention", "InterventionError", "intervene"]
