"""Helpers shared by the model and checkpoint tests."""

from __future__ import annotations

import torch
from torch import nn

from senet import create_model


def randomize_(model: nn.Module) -> nn.Module:
    """Random BN statistics and affine weights, random biases: undoes zero-init so every path carries signal and
    outputs depend on every tensor."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
            elif isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.uniform_(-0.2, 0.2)
    return model


def random_model(arch: str, seed: int, num_classes: int) -> nn.Module:
    """A seeded random-init model in eval mode whose batch norms are random too (zero-init residuals would
    otherwise make every SE block's input 0)."""
    torch.manual_seed(seed)
    model = create_model(arch, num_classes=num_classes)
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            channels = module.num_features
            module.weight.data = torch.rand(channels, generator=generator) + 0.5
            module.bias.data = torch.randn(channels, generator=generator) * 0.1
            module.running_mean = torch.randn(channels, generator=generator) * 0.1
            module.running_var = torch.rand(channels, generator=generator) + 0.5
    return model.eval()
