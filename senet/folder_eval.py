"""Measure a checkpoint on a folder of labelled photos and write what was measured into its card.

    python -m senet.folder_eval checkpoints/pets.safetensors --data photos/              # metrics into the card
    python -m senet.folder_eval checkpoints/pets.safetensors --data photos/ --profiles   # and SE class profiles
    python -m senet.folder_eval checkpoints/pets.safetensors --data photos/ --dry-run    # only print them

The folder has one sub-folder per class, named as the card's labels (torchvision's ImageFolder layout); folders
for some labels may be missing. Photos are preprocessed with the card's own transforms, as in the app. Made for
converted models, whose cards know nothing about their data: the card then says on how many photos of which folder
the metrics were measured, and that those photos may overlap the (unknown) training data.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .card import ModelCard
from .checkpoint import CheckpointError, card_path, load_checkpoint
from .data import open_rgb
from .image_io import IMAGE_SUFFIXES
from .metrics import evaluation_metrics
from .profiles import class_profiles_from_folder

COMMAND = "python -m senet.folder_eval"


class FolderError(ValueError):
    """The folder does not fit the card; the message says how."""


def labelled_images(folder: str | Path, labels: Sequence[str]) -> list[tuple[Path, int]]:
    """``(path, label index)`` of every image in ``folder/<label>/``, in label then name order.

    Raises:
        FolderError: no such folder, sub-folders that are not labels of the card, or no images at all.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FolderError(f"{root} is not a folder")
    unknown = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in labels)
    if unknown:
        raise FolderError(f"the sub-folders {unknown} of {root.name} are not classes of this model ({list(labels)}); "
                          "name each sub-folder after one class")
    items = [(path, index) for index, label in enumerate(labels) if (root / label).is_dir()
             for path in sorted((root / label).iterdir()) if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()]
    if not items:
        raise FolderError(f"no images in {root.name}/<class>/ for the classes {list(labels)}")
    return items


def _batches(items: list[tuple[Path, int]], card: ModelCard, size: int) -> Iterator[tuple[torch.Tensor, list[int]]]:
    transform = card.transforms()
    for start in range(0, len(items), size):
        chunk = items[start:start + size]
        yield torch.stack([transform(open_rgb(path)) for path, _ in chunk]), [index for _, index in chunk]


def evaluate_folder(model: nn.Module, card: ModelCard, folder: str | Path, *, batch_size: int = 32) -> dict[str, Any]:
    """The card's metrics (accuracy, balanced accuracy, macro-F1, per class, confusion matrix) on ``folder``."""
    items = labelled_images(folder, card.labels)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    probabilities, targets = [], []
    try:
        with torch.no_grad():
            for images, indices in _batches(items, card, batch_size):
                probabilities.append(model(images.to(device)).float().softmax(1).cpu().numpy())
                targets += indices
    finally:
        model.train(was_training)
    return evaluation_metrics(np.concatenate(probabilities), np.asarray(targets), list(card.labels))


def attach(checkpoint: str | Path, folder: str | Path, *, profiles: bool = False, write: bool = True,
           device: str = "cpu") -> ModelCard:
    """Evaluate ``checkpoint`` on ``folder`` (and compute class profiles) and rewrite its JSON card.

    Returns:
        The new card (written next to the weights unless ``write`` is False).
    """
    model, card = load_checkpoint(checkpoint, device=device)
    items = labelled_images(folder, card.labels)
    name = Path(folder).resolve().name
    metrics = evaluate_folder(model, card, folder)
    counts = {label: sum(1 for _, index in items if index == i) for i, label in enumerate(card.labels)}
    data = {**dict(card.data), "name": dict(card.data).get("name") or name,
            "evaluated_on": {"folder": name, "images": len(items), "counts": counts, "command": COMMAND}}
    note = (f" Metrics measured by {COMMAND} on {len(items)} photos of the folder {name!r}, which may overlap the "
            "training data; they are not an independent test.")
    changes: dict[str, Any] = {"metrics": metrics, "data": data,
                               "limitations": card.limitations.split(" Metrics measured by")[0] + note}
    if profiles:
        changes["class_profiles"] = class_profiles_from_folder(model, card, folder)
    updated = card.replace(**changes)
    if write:
        card_path(checkpoint).write_text(updated.to_json() + "\n", encoding="utf-8")
    return updated


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="the .safetensors file (its .json card is rewritten)")
    parser.add_argument("--data", type=Path, required=True, help="folder with one sub-folder of photos per class")
    parser.add_argument("--profiles", action="store_true", help="also store per-class SE profiles (the SE tab)")
    parser.add_argument("--dry-run", action="store_true", help="print the metrics, leave the card as it is")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args(argv)
    try:
        card = attach(args.checkpoint, args.data, profiles=args.profiles, write=not args.dry_run,
                      device=args.device)
    except (CheckpointError, FolderError, OSError) as error:
        print(f"{COMMAND}: error: {error}", file=sys.stderr)
        return 1
    summary = {key: card.metrics[key] for key in ("accuracy", "balanced_accuracy", "macro_f1") if key in card.metrics}
    print(json.dumps({"images": card.data["evaluated_on"]["images"], **summary}))
    if not args.dry_run:
        print(f"wrote {card_path(args.checkpoint)}" + (" (with class profiles)" if args.profiles else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
