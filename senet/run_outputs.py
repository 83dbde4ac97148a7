"""What a training run leaves on disk: the checkpoint, its model-card markdown and a confusion-matrix PNG."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .card import ModelCard
from .checkpoint import card_path, read_card, save_checkpoint
from .texts import model_card_markdown


def write_outputs(model: nn.Module, card: ModelCard, out: Path, *, half: bool) -> Path:
    """Write OUT.safetensors + OUT.json, then OUT.md and OUT_confusion.png from the stored card."""
    path = save_checkpoint(model, card, out, half=half)
    write_card_outputs(read_card(path), out)  # the stored card has num_params filled in
    return path


def write_card_outputs(card: ModelCard, out: Path) -> None:
    """Write OUT.json (the card), OUT.md (its markdown) and, when it has a Test confusion matrix, the PNG."""
    card_path(out).write_text(card.to_json() + "\n", encoding="utf-8")
    test = card.metrics.get("test", {})
    if "confusion_matrix" in test:
        save_confusion_png(test["confusion_matrix"], list(card.labels), out.with_name(out.name + "_confusion.png"),
                           title=f"{card.display_name}: confusion matrix ({card.metrics.get('fold', 'Test')})")
    out.with_suffix(".md").write_text(model_card_markdown(card, "en", level=1), encoding="utf-8")


def save_confusion_png(confusion: list[list[int]], labels: list[str], path: Path, *, title: str = "") -> Path:
    """Write a labelled confusion matrix (rows true, columns predicted) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.1 * n + 2.5, 1.0 * n + 2))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=40, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = max((max(row) for row in confusion), default=0)
    for i, row in enumerate(confusion):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black")
    ax.set_title(title or "Confusion matrix (Test)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
