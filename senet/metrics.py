"""Classification metrics for model cards: accuracy, balanced accuracy, macro-F1, per class, ROC-AUC, confusion."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np


def roc_auc(scores: np.ndarray, positives: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); None when a class is absent."""
    positives = positives.astype(bool)
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_metrics(probabilities: np.ndarray, targets: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Metrics of (N, K) class probabilities against (N,) true indices, as JSON-able values."""
    k = len(labels)
    predictions = probabilities.argmax(1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (targets, predictions), 1)
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(1)
    predicted = confusion.sum(0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    present = support > 0
    aucs = [roc_auc(probabilities[:, c], targets == c) for c in range(k)]
    valid_aucs = [a for a in aucs if a is not None]
    per_class = {
        label: {"precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
                "support": int(support[c]), "roc_auc": aucs[c]}
        for c, label in enumerate(labels)
    }
    return {
        "n": int(len(targets)),
        "accuracy": float((predictions == targets).mean()) if len(targets) else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "roc_auc_macro": float(np.mean(valid_aucs)) if valid_aucs else None,
        "per_class": per_class,
        "labels": list(labels),
        "confusion_matrix": confusion.tolist(),  # rows: true class, columns: predicted class
    }


def one_vs_rest_metrics(probabilities: np.ndarray, targets: np.ndarray, labels: Sequence[str], positive: str
                        ) -> dict[str, Any]:
    """``positive`` vs. every other class, read off a multi-class model's P(positive) (threshold: argmax)."""
    c = list(labels).index(positive)
    is_positive = targets == c
    called_positive = probabilities.argmax(1) == c
    tp = int((is_positive & called_positive).sum())
    tn = int((~is_positive & ~called_positive).sum())
    n_pos, n_neg = int(is_positive.sum()), int((~is_positive).sum())
    return {
        "positive": positive,
        "accuracy": float((is_positive == called_positive).mean()) if len(targets) else 0.0,
        "sensitivity": tp / n_pos if n_pos else None,
        "specificity": tn / n_neg if n_neg else None,
        "roc_auc": roc_auc(probabilities[:, c], is_positive),
        "n_positive": n_pos,
        "n_negative": n_neg,
    }


def vs_rest_key(positive: str) -> str:
    """Where the metrics keep ``positive`` vs. the rest: ``Monkeypox`` -> ``monkeypox_vs_rest``."""
    return re.sub(r"\W+", "_", positive.lower()).strip("_") + "_vs_rest"


def evaluation_metrics(probabilities: np.ndarray, targets: np.ndarray, labels: Sequence[str],
                       positive: str | None = None) -> dict[str, Any]:
    """What training puts in a card's Test metrics and ``senet.evaluate`` prints: ``classification_metrics``,
    plus ``positive`` (the card's ``data.positive``, e.g. MSLD's Monkeypox) vs. rest read off a multi-class model."""
    metrics = classification_metrics(probabilities, targets, labels)
    if positive is not None and positive in labels and len(labels) > 2:
        metrics[vs_rest_key(positive)] = one_vs_rest_metrics(probabilities, targets, labels, positive)
    return metrics


def summarize_folds(per_fold: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """Mean and (population) standard deviation over folds of the scalar ``keys`` (dotted paths allowed)."""
    summary: dict[str, Any] = {"folds": len(per_fold)}
    for key in keys:
        values = []
        for fold in per_fold:
            value: Any = fold
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is not None:
                values.append(float(value))
        if values:
            summary[key] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}
    return summary
