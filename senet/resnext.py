"""SE-ResNeXt and the plain ResNeXt baselines (seed 001): a ResNet whose bottleneck 3x3 is a grouped convolution.

ResNeXt's bottleneck (type C): 1x1 to ``width = planes * base_width / 64 * groups`` channels, a 3x3 convolution in
``groups`` groups, 1x1 back to ``4 * planes``. The 32x4d models use 32 groups of width 4 per 64 planes, as in
torchvision (whose attribute names we keep, so plain ResNeXt loads its state dicts unchanged) and in the SE paper's
SE-ResNeXt-50 (32x4d): the SE block sits on the residual branch before the addition, reduction 16, as in SE-ResNet.
Everything else (stem, stages, SE naming ``SE_<stage>_<block>``, CAM layers) is the ResNet family's.
"""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from .layers import SqueezeExcitation
from .registry import register_model
from .resnet import Bottleneck, ResNet


class GroupedBottleneck(Bottleneck):
    """ResNeXt's bottleneck: ``Bottleneck`` (same forward, same SE position) with a wider, grouped 3x3."""

    groups: ClassVar[int] = 32
    base_width: ClassVar[int] = 4

    def __init__(
        self, in_channels: int, planes: int, *, stride: int = 1, downsample: nn.Module | None = None,
        se_reduction: int | None = 16,
    ) -> None:
        nn.Module.__init__(self)  # not Bottleneck.__init__: it would build (and initialise) the narrow layers
        width = planes * self.base_width // 64 * self.groups
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, groups=self.groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.se = SqueezeExcitation(out_channels, reduction=se_reduction) if se_reduction else None
        self.downsample = downsample


class ResNeXt(ResNet):
    """ResNeXt / SE-ResNeXt. ``se_reduction=None`` gives the plain network."""

    family = "resnext"
    family_display = "ResNeXt"


@register_model
def se_resnext50_32x4d(*, num_classes: int = 1000, se_reduction: int = 16) -> ResNeXt:
    return ResNeXt(GroupedBottleneck, (3, 4, 6, 3), num_classes=num_classes, se_reduction=se_reduction)


@register_model
def se_resnext101_32x4d(*, num_classes: int = 1000, se_reduction: int = 16) -> ResNeXt:
    return ResNeXt(GroupedBottleneck, (3, 4, 23, 3), num_classes=num_classes, se_reduction=se_reduction)


@register_model
def resnext50_32x4d(*, num_classes: int = 1000) -> ResNeXt:
    return ResNeXt(GroupedBottleneck, (3, 4, 6, 3), num_classes=num_classes, se_reduction=None)


@register_model
def resnext101_32x4d(*, num_classes: int = 1000) -> ResNeXt:
    return ResNeXt(GroupedBottleneck, (3, 4, 23, 3), num_classes=num_classes, se_reduction=None)
