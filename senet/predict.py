"""Calibrated class probabilities for a few images at once: a forward pass only (no CAM, no hooks)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from torch import nn

from .calibration import calibrated_probabilities
from .card import ModelCard
from .hooks import model_lock, preserved_state


def predict(model: nn.Module, card: ModelCard, images: Sequence[Image.Image], *, batch: int = 16
            ) -> list[dict[str, float]]:
    """label -> calibrated probability for each image, preprocessed from the card as ``analyze`` does.

    The model is left as found (train/eval flags); calls on one model are serialised like ``analyze``.
    """
    transform = card.transforms()
    out: list[dict[str, float]] = []
    with torch.inference_mode(False), model_lock(model), preserved_state(model), torch.no_grad():
        parameter = next(model.parameters())
        for start in range(0, len(images), batch):
            inputs = torch.stack([transform(image) for image in images[start:start + batch]])
            logits = model(inputs.to(parameter.device, parameter.dtype)).float().cpu()
            for row in calibrated_probabilities(logits, card):
                out.append({label: float(p) for label, p in zip(card.labels, row)})
    return out
