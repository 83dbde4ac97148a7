"""Human-readable training outputs: the confusion-matrix PNG and the model-card markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .card import ModelCard


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


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f} %"


def card_markdown(card: ModelCard) -> str:
    """The model card as markdown: what it is, how it was trained, how well it does, its license."""
    test: dict[str, Any] = dict(card.metrics.get("test", {}))
    cv: dict[str, Any] = dict(card.metrics.get("cv", {}))
    lines = [f"# {card.display_name}", "", card.description, "",
             f"- Architecture: `{card.arch}` {dict(card.model_args) or ''} ({card.num_params:,} parameters)",
             f"- Classes: {', '.join(card.labels)}",
             f"- Input: {card.input_size[0]}x{card.input_size[1]} RGB, mean {card.mean}, std {card.std}",
             f"- Data: {card.data.get('name', 'n/a')} — {card.data.get('split', '')}",
             f"- License: {card.license}", ""]
    if cv:
        lines += ["## Cross-validation (official folds, Test parts)", "", "| metric | mean | std |", "|---|---|---|"]
        for key, value in cv.items():
            if isinstance(value, dict) and "mean" in value:
                lines.append(f"| {key} | {_pct(value['mean'])} | {_pct(value['std'])} |")
        lines.append("")
    if test:
        lines += ["## This checkpoint's Test metrics", "",
                  f"accuracy {_pct(test.get('accuracy'))}, balanced accuracy {_pct(test.get('balanced_accuracy'))},"
                  f" macro-F1 {_pct(test.get('macro_f1'))}, ROC-AUC (macro) {_pct(test.get('roc_auc_macro'))}"
                  f" on {test.get('n', '?')} images.", "",
                  "| class | precision | recall | support |", "|---|---|---|---|"]
        for label, row in test.get("per_class", {}).items():
            lines.append(f"| {label} | {_pct(row['precision'])} | {_pct(row['recall'])} | {row['support']} |")
        lines.append("")
    if card.training:
        lines += ["## Training", "", f"```\n{card.training.get('command', '')}\n```", ""]
    if card.backbone:
        lines += ["## Pretrained backbone", "", f"{card.backbone.get('description', '')}", ""]
    if card.limitations:
        lines += ["## Limitations", "", card.limitations, ""]
    if card.citation:
        lines += ["## Citation", "", card.citation, ""]
    return "\n".join(lines)
