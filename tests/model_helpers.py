"""Helpers shared by the model and checkpoint tests."""

from __future__ import annotations

import torch
from torch import nn


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
