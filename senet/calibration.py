"""Calibrated probabilities: one temperature per checkpoint, fitted on Valid by NLL, judged on Test.

The card keeps everything under ``metrics["calibration"]`` (plain JSON)::

    {"temperature": T, "fitted_on": "fold1 Valid (72 photos)", "evaluated_on": "fold1 Test (74 photos)",
     "raw": {"ece": ..., "nll": ...}, "calibrated": {"ece": ..., "nll": ...},
     "reliability": [{"lo": 0.0, "hi": 0.1, "n": ..., "confidence": ..., "accuracy": ...}, ...],  # 10 bins
     "confidence_bins": [{"lo": 0.0, "hi": 0.6, "n": 23, "correct": 17}, ...]}

``reliability`` is the calibrated reliability diagram on Test (what the model-card tab draws);
``confidence_bins`` are wider bins of calibrated top-class confidence, each with at least a few Test photos,
for the sentence "Of test photos where it was this sure, it was right 8 times in 10".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

ECE_BINS = 10
_SENTENCE_EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MIN_BIN_PHOTOS = 8  # a sentence bin with fewer Test photos is merged into its neighbour


def temperature(card_or_metrics: Any) -> float | None:
    """The card's fitted temperature, or None when the card has no calibration."""
    metrics = getattr(card_or_metrics, "metrics", card_or_metrics)
    calibration = metrics.get("calibration") if isinstance(metrics, Mapping) else None
    value = calibration.get("temperature") if isinstance(calibration, Mapping) else None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def calibrated_probabilities(logits: torch.Tensor, card: Any) -> torch.Tensor:
    """Softmax of ``logits / T`` with the card's temperature (plain softmax when the card has none).

    Args:
        logits: (..., num_classes) raw model outputs.
        card: a ModelCard (or its metrics mapping).

    Returns:
        float64 probabilities of the same shape, summing to 1 over the last dimension.
    """
    scale = temperature(card) or 1.0
    return torch.softmax(logits.detach().double() / scale, dim=-1)


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The temperature that minimises the NLL of ``targets`` under ``softmax(logits / T)``.

    A bounded 1-D search over log T (golden section, [0.05, 20]): the NLL is convex in 1/T, so this finds
    the optimum without an optimiser's learning rate to tune.
    """
    logits, targets = logits.detach().double(), targets.long()

    def nll(log_t: float) -> float:
        return float(torch.nn.functional.cross_entropy(logits / math.exp(log_t), targets))

    low, high = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = nll(a), nll(b)
    for _ in range(80):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = nll(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = nll(b)
    return float(math.exp((low + high) / 2))


def reliability_bins(probabilities: torch.Tensor, targets: torch.Tensor, bins: int = ECE_BINS) -> list[dict[str, Any]]:
    """Equal-width bins of top-class confidence: count, mean confidence and accuracy in each (empty bins: None)."""
    confidence, predicted = probabilities.double().max(dim=1)
    correct = (predicted == targets.long()).double()
    out = []
    for i in range(bins):
        lo, hi = i / bins, (i + 1) / bins
        inside = (confidence > lo) & (confidence <= hi) if i else (confidence >= lo) & (confidence <= hi)
        n = int(inside.sum())
        out.append({"lo": round(lo, 3), "hi": round(hi, 3), "n": n,
                    "confidence": round(float(confidence[inside].mean()), 4) if n else None,
                    "accuracy": round(float(correct[inside].mean()), 4) if n else None})
    return out


def expected_calibration_error(probabilities: torch.Tensor, targets: torch.Tensor, bins: int = ECE_BINS) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over equal-width confidence bins."""
    table = reliability_bins(probabilities, targets, bins)
    total = sum(row["n"] for row in table)
    return sum(row["n"] * abs(row["accuracy"] - row["confidence"]) for row in table if row["n"]) / max(1, total)


def confidence_bins(probabilities: torch.Tensor, targets: torch.Tensor,
                    edges: Sequence[float] = _SENTENCE_EDGES, min_photos: int = MIN_BIN_PHOTOS) -> list[dict[str, Any]]:
    """Wide confidence bins with at least ``min_photos`` photos each (sparse bins merge into the one below)."""
    confidence, predicted = probabilities.double().max(dim=1)
    correct = predicted == targets.long()
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (confidence > lo) & (confidence <= hi) if lo > 0 else confidence <= hi
        rows.append({"lo": lo, "hi": hi, "n": int(inside.sum()), "correct": int(correct[inside].sum())})
    merged: list[dict[str, Any]] = []
    for row in rows:  # low to high: a sparse bin waits for the next one
        if merged and merged[-1]["n"] < min_photos:
            last = merged.pop()
            row = {"lo": last["lo"], "hi": row["hi"], "n": last["n"] + row["n"],
                   "correct": last["correct"] + row["correct"]}
        merged.append(row)
    if len(merged) > 1 and merged[-1]["n"] < min_photos:  # the top bin is sparse: join it to the one below
        last, before = merged.pop(), merged.pop()
        merged.append({"lo": before["lo"], "hi": last["hi"], "n": before["n"] + last["n"],
                       "correct": before["correct"] + last["correct"]})
    return merged


def confidence_bin(card_or_metrics: Any, confidence: float) -> dict[str, Any] | None:
    """The card's Test confidence bin that holds ``confidence`` (None without calibration)."""
    metrics = getattr(card_or_metrics, "metrics", card_or_metrics)
    calibration = metrics.get("calibration") if isinstance(metrics, Mapping) else None
    rows = calibration.get("confidence_bins") if isinstance(calibration, Mapping) else None
    if not rows:
        return None
    for row in rows:
        if confidence <= row["hi"] and row["n"]:
            return dict(row)
    return dict(rows[-1]) if rows[-1]["n"] else None


def calibration_metrics(valid_logits: torch.Tensor, valid_targets: torch.Tensor, test_logits: torch.Tensor,
                        test_targets: torch.Tensor, *, fitted_on: str = "Valid", evaluated_on: str = "Test"
                        ) -> dict[str, Any]:
    """Fit T on Valid; ECE and NLL on Test before and after; the Test reliability and confidence bins."""
    scale = fit_temperature(valid_logits, valid_targets)
    raw = torch.softmax(test_logits.double(), dim=1)
    calibrated = torch.softmax(test_logits.double() / scale, dim=1)

    def nll(p: torch.Tensor) -> float:
        return float(-torch.log(p[torch.arange(len(p)), test_targets.long()].clamp_min(1e-12)).mean())

    return {
        "temperature": round(scale, 4),
        "fitted_on": fitted_on,
        "evaluated_on": evaluated_on,
        "raw": {"ece": round(expected_calibration_error(raw, test_targets), 4), "nll": round(nll(raw), 4)},
        "calibrated": {"ece": round(expected_calibration_error(calibrated, test_targets), 4),
                       "nll": round(nll(calibrated), 4)},
        "reliability": reliability_bins(calibrated, test_targets),
        "reliability_raw": reliability_bins(raw, test_targets),
        "confidence_bins": confidence_bins(calibrated, test_targets),
    }
