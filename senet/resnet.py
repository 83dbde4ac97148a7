"""SE-ResNet 18-152 and the plain ResNet baselines, built by the same code with SE switched off.

Layout and attribute names follow torchvision (``conv1 bn1 layer1..layer4 fc``), so state-dict keys and CAM
target layers are predictable. The SE block sits on the residual branch after the last batch norm and before
the addition, as in the SE paper. No op runs in place: a forward hook may hold any intermediate tensor.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from .family import FamilyModel
from .layers import SqueezeExcitation
from .registry import register_model


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (ResNet-18/34), with an optional SE block before the addition."""

    expansion = 1

    def __init__(
        self, in_channels: int, planes: int, *, stride: int = 1, downsample: nn.Module | None = None,
        se_reduction: int | None = 16,
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = SqueezeExcitation(planes, reduction=se_reduction) if se_reduction else None
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (ResNet-50+), with an optional SE block before the addition."""

    expansion = 4

    def __init__(
        self, in_channels: int, planes: int, *, stride: int = 1, downsample: nn.Module | None = None,
        se_reduction: int | None = 16,
    ) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = _conv1x1(in_channels, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)  # stride on the 3x3, as torchvision (ResNet v1.5)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.se = SqueezeExcitation(out_channels, reduction=se_reduction) if se_reduction else None
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(FamilyModel):
    """ResNet / SE-ResNet. ``se_reduction=None`` gives the plain network.

    Stages 2-5 of the SE paper are ``layer1``..``layer4``; the SE block of ``layer<s>.<b>`` is ``SE_<s+1>_<b+1>``.
    """

    family = "resnet"
    family_display = "ResNet"
    classifier_name = "fc"
    _STAGE_NOTES: ClassVar[dict[int, str]] = {
        4: "deepest, coarsest; default", 3: "stage 4", 2: "stage 3", 1: "stage 2, finest"}

    def __init__(
        self, block: type[BasicBlock | Bottleneck], depths: tuple[int, int, int, int], *, num_classes: int = 1000,
        se_reduction: int | None = 16, zero_init_residual: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, depths[0], 1, se_reduction)
        self.layer2 = self._make_layer(block, 128, depths[1], 2, se_reduction)
        self.layer3 = self._make_layer(block, 256, depths[2], 2, se_reduction)
        self.layer4 = self._make_layer(block, 512, depths[3], 2, se_reduction)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # adaptive: any input size works, not only 224
        self.num_features = 512 * block.expansion
        self.fc = nn.Linear(self.num_features, num_classes)
        self._init_weights(zero_init_residual)

    def _make_layer(
        self, block: type[BasicBlock | Bottleneck], planes: int, depth: int, stride: int, se_reduction: int | None
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.in_channels != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.in_channels, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
            )
        blocks = [block(self.in_channels, planes, stride=stride, downsample=downsample, se_reduction=se_reduction)]
        self.in_channels = planes * block.expansion
        blocks += [block(self.in_channels, planes, se_reduction=se_reduction) for _ in range(1, depth)]
        return nn.Sequential(*blocks)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:  # each residual branch starts as identity: trains faster from scratch
            for module in self.modules():
                if isinstance(module, Bottleneck):
                    nn.init.zeros_(module.bn3.weight)
                elif isinstance(module, BasicBlock):
                    nn.init.zeros_(module.bn2.weight)

    def cam_layers(self) -> dict[str, str]:
        """``layer4`` (the default) .. ``layer1``: the output of each stage's last block."""
        return {f"layer{i}": f"layer{i}[-1]: last block of layer{i} ({note})" for i, note in self._STAGE_NOTES.items()}

    def _cam_layer_path(self, key: str) -> str:
        stage = self.get_submodule(key)
        assert isinstance(stage, nn.Sequential)
        return f"{key}.{len(stage) - 1}"

    def se_block_position(self, path: str) -> tuple[int, int] | None:
        parts = path.split(".")  # layer<s>.<b>.se
        if len(parts) != 3 or parts[2] != "se" or parts[0] not in self.stage_names() or not parts[1].isdigit():
            return None
        return int(parts[0].removeprefix("layer")) + 1, int(parts[1]) + 1

    def stage_names(self) -> list[str]:
        return ["layer1", "layer2", "layer3", "layer4"]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) image batch -> (B, C, H/32, W/32) feature map of ``layer4``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Feature map -> (B, num_classes) logits."""
        return self.fc(torch.flatten(self.avgpool(features), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model
def se_resnet18(*, num_classes: int = 1000, se_reduction: int = 16) -> ResNet:
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes, se_reduction=se_reduction)


@register_model
def se_resnet34(*, num_classes: int = 1000, se_reduction: int = 16) -> ResNet:
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes=num_classes, se_reduction=se_reduction)


@register_model
def se_resnet50(*, num_classes: int = 1000, se_reduction: int = 16) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes=num_classes, se_reduction=se_reduction)


@register_model
def se_resnet101(*, num_classes: int = 1000, se_reduction: int = 16) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 23, 3), num_classes=num_classes, se_reduction=se_reduction)


@register_model
def se_resnet152(*, num_classes: int = 1000, se_reduction: int = 16) -> ResNet:
    return ResNet(Bottleneck, (3, 8, 36, 3), num_classes=num_classes, se_reduction=se_reduction)


@register_model
def resnet18(*, num_classes: int = 1000) -> ResNet:
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes, se_reduction=None)


@register_model
def resnet34(*, num_classes: int = 1000) -> ResNet:
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes=num_classes, se_reduction=None)


@register_model
def resnet50(*, num_classes: int = 1000) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes=num_classes, se_reduction=None)


@register_model
def resnet101(*, num_classes: int = 1000) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 23, 3), num_classes=num_classes, se_reduction=None)


@register_model
def resnet152(*, num_classes: int = 1000) -> ResNet:
    return ResNet(Bottleneck, (3, 8, 36, 3), num_classes=num_classes, se_reduction=None)
