"""SE-DenseNet 121/169/201/161 and the plain DenseNet baselines.

Follows the SE-DenseNet seed: one SE block on the new features of every dense layer (after ``conv2``), an
optional memory-efficient mode (gradient checkpointing of the concatenation + bottleneck) and an optional
small-input stem (3x3 convolution, no pooling, for 32-64 px images). Attribute names follow torchvision
(``features.denseblock<i>.denselayer<j>``, ``features.norm5``, ``classifier``). No op runs in place: a
forward hook on ``features`` receives exactly what the head sees (grad-cam issue #147).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as checkpoint
from torch import nn

from .family import FamilyModel
from .layers import SqueezeExcitation
from .registry import register_model


@contextmanager
def _keep_running_stats(norm: nn.BatchNorm2d) -> Iterator[None]:
    """Undo the running-statistics update of ``norm`` made inside the block (checkpoint recomputation)."""
    saved = [buffer.clone() for buffer in norm.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(norm.buffers(), saved):
                buffer.copy_(value)


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bottleneck) then BN-ReLU-3x3 conv producing ``growth_rate`` new channels, then SE."""

    def __init__(
        self, in_channels: int, *, growth_rate: int, bn_size: int, drop_rate: float, se_reduction: int | None,
        memory_efficient: bool,
    ) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, padding=1, bias=False)
        self.se = SqueezeExcitation(growth_rate, reduction=se_reduction) if se_reduction else None
        self.drop_rate = drop_rate
        self.memory_efficient = memory_efficient

    def _bottleneck(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.conv1(self.relu1(self.norm1(torch.cat(inputs, 1))))

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if self.memory_efficient and self.training and any(t.requires_grad for t in inputs):
            # Recompute the concatenation in backward instead of storing it: memory grows linearly, not
            # quadratically, with depth.
            # The recomputation runs norm1 in train mode again: keep it from updating the running statistics a
            # second time, so both modes train the same network.
            bottleneck = checkpoint.checkpoint(
                self._bottleneck, *inputs, use_reentrant=False,
                context_fn=lambda: (nullcontext(), _keep_running_stats(self.norm1)),
            )
        else:
            bottleneck = self._bottleneck(*inputs)
        new_features = self.conv2(self.relu2(self.norm2(bottleneck)))
        if self.se is not None:
            new_features = self.se(new_features)
        if self.drop_rate > 0:
            new_features = F.dropout(new_features, p=self.drop_rate, training=self.training)
        return new_features


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; each sees the concatenation of the block input and all earlier outputs."""

    def __init__(
        self, num_layers: int, in_channels: int, *, growth_rate: int, bn_size: int, drop_rate: float,
        se_reduction: int | None, memory_efficient: bool,
    ) -> None:
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(
                in_channels + i * growth_rate, growth_rate=growth_rate, bn_size=bn_size, drop_rate=drop_rate,
                se_reduction=se_reduction, memory_efficient=memory_efficient))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """BN-ReLU-1x1 conv (compression) then 2x2 average pooling between dense blocks."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(OrderedDict(
            norm=nn.BatchNorm2d(in_channels),
            relu=nn.ReLU(),
            conv=nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
            pool=nn.AvgPool2d(kernel_size=2, stride=2),
        ))


class DenseNet(FamilyModel):
    """DenseNet-BC / SE-DenseNet. ``se_reduction=None`` gives the plain network.

    Stages 2-5 of the SE paper are dense blocks 1-4; the SE block of ``denseblock<s>.denselayer<l>`` is
    ``SE_<s+1>_<l>``.
    """

    family = "densenet"
    family_display = "DenseNet"
    classifier_name = "classifier"

    def __init__(
        self, *, growth_rate: int = 32, block_config: tuple[int, ...] = (6, 12, 24, 16), num_init_features: int = 64,
        bn_size: int = 4, compression: float = 0.5, drop_rate: float = 0.0, num_classes: int = 1000,
        se_reduction: int | None = 16, memory_efficient: bool = False, small_inputs: bool = False,
    ) -> None:
        super().__init__()
        if not 0 < compression <= 1:
            raise ValueError(f"compression must be in (0, 1], got {compression}")
        if small_inputs:
            stem: OrderedDict[str, nn.Module] = OrderedDict(
                conv0=nn.Conv2d(3, num_init_features, kernel_size=3, padding=1, bias=False))
        else:
            stem = OrderedDict(
                conv0=nn.Conv2d(3, num_init_features, kernel_size=7, stride=2, padding=3, bias=False),
                norm0=nn.BatchNorm2d(num_init_features),
                relu0=nn.ReLU(),
                pool0=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            )
        self.features = nn.Sequential(stem)
        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(
                num_layers, channels, growth_rate=growth_rate, bn_size=bn_size, drop_rate=drop_rate,
                se_reduction=se_reduction, memory_efficient=memory_efficient,
            )
            self.features.add_module(f"denseblock{i + 1}", block)
            channels += num_layers * growth_rate
            if i != len(block_config) - 1:
                out_channels = int(channels * compression)
                self.features.add_module(f"transition{i + 1}", Transition(channels, out_channels))
                channels = out_channels
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.num_features = channels
        self.classifier = nn.Linear(channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def cam_layers(self) -> dict[str, str]:
        """``features`` (after ``norm5``: what the classifier sees; the default), then ``denseblock4`` .. 1."""
        choices = {"features": "output of features (after norm5): what the classifier sees; default"}
        for path in reversed(self.stage_names()):
            name = path.removeprefix("features.")
            choices[name] = f"{path}: output of dense block {name.removeprefix('denseblock')}"
        return choices

    def _cam_layer_path(self, key: str) -> str:
        return key if key == "features" else f"features.{key}"

    def se_block_position(self, path: str) -> tuple[int, int] | None:
        parts = path.split(".")  # features.denseblock<s>.denselayer<l>.se
        if len(parts) != 4 or parts[3] != "se" or f"features.{parts[1]}" not in self.stage_names():
            return None
        layer = parts[2].removeprefix("denselayer")
        return (int(parts[1].removeprefix("denseblock")) + 1, int(layer)) if layer.isdigit() else None

    def stage_names(self) -> list[str]:
        return [f"features.{name}" for name, _ in self.features.named_children() if name.startswith("denseblock")]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) image batch -> (B, C, h, w) output of ``features`` (after ``norm5``)."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Feature map -> (B, num_classes) logits."""
        pooled = F.adaptive_avg_pool2d(F.relu(features), 1)  # not in place: hooks on `features` see this tensor
        return self.classifier(torch.flatten(pooled, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# depth -> (growth rate, layers per dense block, stem channels)
_CONFIGS: dict[str, tuple[int, tuple[int, int, int, int], int]] = {
    "121": (32, (6, 12, 24, 16), 64),
    "169": (32, (6, 12, 32, 32), 64),
    "201": (32, (6, 12, 48, 32), 64),
    "161": (48, (6, 12, 36, 24), 96),
}


def _densenet(
    depth: str, se_reduction: int | None, *, num_classes: int, memory_efficient: bool, small_inputs: bool,
    drop_rate: float,
) -> DenseNet:
    growth_rate, block_config, num_init_features = _CONFIGS[depth]
    return DenseNet(growth_rate=growth_rate, block_config=block_config, num_init_features=num_init_features,
                    se_reduction=se_reduction, num_classes=num_classes, memory_efficient=memory_efficient,
                    small_inputs=small_inputs, drop_rate=drop_rate)


@register_model
def se_densenet121(
    *, num_classes: int = 1000, se_reduction: int = 16, memory_efficient: bool = False, small_inputs: bool = False,
    drop_rate: float = 0.0,
) -> DenseNet:
    return _densenet("121", se_reduction, num_classes=num_classes, memory_efficient=memory_efficient,
                     small_inputs=small_inputs, drop_rate=drop_rate)


@register_model
def se_densenet169(
    *, num_classes: int = 1000, se_reduction: int = 16, memory_efficient: bool = False, small_inputs: bool = False,
    drop_rate: float = 0.0,
) -> DenseNet:
    return _densenet("169", se_reduction, num_classes=num_classes, memory_efficient=memory_efficient,
                     small_inputs=small_inputs, drop_rate=drop_rate)


@register_model
def se_densenet201(
    *, num_classes: int = 1000, se_reduction: int = 16, memory_efficient: bool = False, small_inputs: bool = False,
    drop_rate: float = 0.0,
) -> DenseNet:
    return _densenet("201", se_reduction, num_classes=num_classes, memory_efficient=memory_efficient,
                     small_inputs=small_inputs, drop_rate=drop_rate)


@register_model
def se_densenet161(
    *, num_classes: int = 1000, se_reduction: int = 16, memory_efficient: bool = False, small_inputs: bool = False,
    drop_rate: float = 0.0,
) -> DenseNet:
    return _densenet("161", se_reduction, num_classes=num_classes, memory_efficient=memory_efficient,
                     small_inputs=small_inputs, drop_rate=drop_rate)


@register_model
def densenet121(
    *, num_classes: int = 1000, memory_efficient: bool = False, small_inputs: bool = False, drop_rate: float = 0.0
) -> DenseNet:
    return _densenet("121", None, num_classes=num_classes, memory_efficient=memory_efficient,
                     small_inputs=small_inputs, drop_rate=drop_rate)


@register_model
def densenet169(
    *, num_classes: int = 1000, memory_efficient: bool = False, small_inputs: bool = False, drop_rate: float = 0.0
) -> DenseNet:
    return _densenet("169", None, num_classes=num_classes, memory_efficient=memory_efficient,
                     small_inputs=small_inputs, drop_rate=drop_rate)


@register_model
def densenet201(
    *, num_classes: int = 1000, memory_efficient: bool = False, small_inputs: bool = False, drop_rate: float = 0.0
) -> DenseNet:
    return _densenet("201", None, num_classes=num_classes, memory_efficient=memory_efficient,
                     small_inputs=small_inputs, drop_rate=drop_rate)


@register_model
def densenet161(
    *, num_classes: int = 1000, memory_efficient: bool = False, small_inputs: bool = False, drop_rate: float = 0.0
) -> DenseNet:
    return _densenet("161", None, num_classes=num_classes, memory_efficient=memory_efficient,
                     small_inputs=small_inputs, drop_rate=drop_rate)
