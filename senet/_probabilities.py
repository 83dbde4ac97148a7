"""Logits -> class probabilities on the scale ``analyze`` reports, in one place.

Interventions and faithfulness scores compare their probabilities with the analysis's, so all three must use
the same mapping. Today that is a plain softmax; when the card carries a calibration (temperature scaling,
``senet.calibration``), switch this one function to it and every caller follows.
"""

from __future__ import annotations

import torch

from .card import ModelCard


def class_probabilities(logits: torch.Tensor, card: ModelCard) -> torch.Tensor:
    """(B, K) logits -> (B, K) float64 probabilities on the CPU, rows summing to 1."""
    del card  # the calibration, when there is one, is read from the card
    return torch.softmax(logits.detach().double(), dim=1).cpu()
