"""The Squeeze-and-Excitation block and helpers to find every SE block of a model."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from .family import as_family

# How se_blocks() names a block for people (the SE paper's SE_<stage>_<block>); views that read names back use it.
SE_BLOCK_NAME = re.compile(r"^SE_(\d+)_(\d+)$")


class SqueezeExcitation(nn.Module):
    """Squeeze (global average pool) -> excite (bottleneck MLP + sigmoid) -> scale the channels.

    The sigmoid is its own submodule, ``gate``, so a forward hook on it reads the (B, C) excitation of an image
    without touching ``forward``. Pooling is adaptive (a mean over H and W), so any input size works.
    """

    def __init__(self, channels: int, *, reduction: int = 16, bias: bool = True) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden, bias=bias)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, channels, bias=bias)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = x.mean(dim=(2, 3))  # (B, C)
        weights = self.gate(self.fc2(self.relu(self.fc1(squeezed))))  # (B, C), in (0, 1)
        return x * weights[:, :, None, None]


@dataclass(frozen=True)
class SEBlockInfo:
    """Where one SE block sits in a model and what people call it."""

    path: str  # module path, e.g. "layer1.0.se"
    name: str  # the SE paper's name, e.g. "SE_2_1"
    stage: int  # 2-5 for the four stages, as in the paper
    index: int  # 1-based position inside its stage
    channels: int
    module: SqueezeExcitation


def se_blocks(model: nn.Module) -> list[SEBlockInfo]:
    """Every SE block of ``model`` in network (forward) order, with the SE paper's names (``SE_<stage>_<block>``).

    The model's family names them (``se_block_position``); a plain model has none.

    Raises:
        ValueError: ``model`` is not a family model, or holds an SE block where its family puts none.
    """
    family = as_family(model)
    found: list[SEBlockInfo] = []
    for path, module in model.named_modules():
        if not isinstance(module, SqueezeExcitation):
            continue
        position = family.se_block_position(path)
        if position is None:
            raise ValueError(f"SE block at unexpected path {path!r}: {type(model).__name__} cannot name it")
        stage, index = position
        found.append(SEBlockInfo(path, f"SE_{stage}_{index}", stage, index, module.fc2.out_features, module))
    return found
