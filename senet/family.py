"""What a model family tells the rest of the library, so nothing outside the family's own file guesses it.

Every model class of a family derives from :class:`FamilyModel` and declares its facts next to its layers (as
timm's ``default_cfg`` / ``get_classifier()`` do): the classifier's attribute name, the CAM layer choices, how
its SE blocks are named in the SE paper's style (``SE_<stage>_<block>``) and its stages. Checkpoints, training,
explanations and the catalog ask the model (or the registry, which records each builder's class) instead.
"""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from .options import unknown


class FamilyModel(nn.Module):
    """Base of every registered model class.

    Class attributes:
        family: the family's key in builder names and the registry, e.g. ``"resnet"``.
        family_display: how people write it, e.g. ``"ResNet"``.
        classifier_name: the attribute holding the final ``nn.Linear``, e.g. ``"fc"``.

    Subclasses implement ``cam_layers``, ``_cam_layer_path``, ``se_block_position`` and ``stage_names``.
    """

    family: ClassVar[str]
    family_display: ClassVar[str]
    classifier_name: ClassVar[str]

    @classmethod
    def display_name(cls, arch: str) -> str:
        """``se_resnext50_32x4d`` -> ``SE-ResNeXt-50 (32x4d)``, ``densenet121`` -> ``DenseNet-121``.

        Builder names are ``[se_]<family><depth>[_<variant>]``; a family with other names overrides this.
        """
        prefix = "SE-" if arch.startswith("se_") else ""
        depth, _, variant = arch.removeprefix("se_").removeprefix(cls.family).partition("_")
        name = f"{prefix}{cls.family_display}-{depth}"
        return f"{name} ({variant})" if variant else name

    def get_classifier(self) -> nn.Linear:
        """The final linear layer (the head that a fine-tuning run replaces)."""
        head = getattr(self, self.classifier_name)
        if not isinstance(head, nn.Linear):
            raise TypeError(f"{type(self).__name__}.{self.classifier_name} is {type(head).__name__}, not nn.Linear")
        return head

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head by a freshly initialised one with ``num_classes`` outputs (same device and dtype)."""
        old = self.get_classifier()
        setattr(self, self.classifier_name, nn.Linear(old.in_features, num_classes, device=old.weight.device,
                                                      dtype=old.weight.dtype))

    def cam_layers(self) -> dict[str, str]:
        """CAM layer choices: key -> readable description, the default first."""
        raise NotImplementedError

    def cam_layer(self, key: str) -> nn.Module:
        """The module whose output the CAM layer ``key`` (a key of ``cam_layers()``) explains.

        Raises:
            OptionError: ``key`` is not one of this model's CAM layers.
        """
        if key not in self.cam_layers():
            raise unknown("CAM layer", key, self.cam_layers())
        return self.get_submodule(self._cam_layer_path(key))

    def _cam_layer_path(self, key: str) -> str:
        """The module path of a valid CAM layer key."""
        raise NotImplementedError

    def se_block_position(self, path: str) -> tuple[int, int] | None:
        """``(stage, index)`` in the SE paper's naming (stages 2-5, index from 1) of the SE module at ``path``;
        None when ``path`` is not where this family puts an SE block."""
        raise NotImplementedError

    def stage_names(self) -> list[str]:
        """Module paths of the four stages that the SE paper numbers 2-5, in forward order."""
        raise NotImplementedError


def as_family(model: nn.Module) -> FamilyModel:
    """``model`` itself, typed as a family model.

    Raises:
        ValueError: ``model`` is not built by a registered family (its facts are unknown).
    """
    if not isinstance(model, FamilyModel):
        raise ValueError(f"{type(model).__name__} is not a model of a registered family; build one with "
                         "senet.create_model (senet.list_models() names them)")
    return model
