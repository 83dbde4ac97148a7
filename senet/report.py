"""Human-readable training outputs: the confusion-matrix PNG (the model-card markdown is ``describe``'s)."""

from __future__ import annotations

from pathlib import Path


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
