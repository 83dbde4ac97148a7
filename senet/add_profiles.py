"""python -m senet.add_profiles: add per-class SE profiles to a checkpoint's card (the weights are not touched).

The app's class-average lines, class-specificity chart and takeaway need them. Two sources:

- ``--folder PHOTOS``: photos in one folder per class, named as the card's labels (``PHOTOS/Measles/*.jpg``,
  ...); use held-out photos, as the SE paper did. They become the card's profiles (e.g. for a converted model).
- ``--data DATASET``: the dataset with ``folds.csv`` the checkpoint was trained on. The fold named by the card
  (``metrics.fold`` / ``data.split``) gives its Test photos, whose profiles are stored beside the Train+Valid ones
  as ``class_profiles["test"]``: the SE paper view draws the average per class over the fold's Test photos.
  A card without profiles also gets the Train+Valid ones (as training computes them).

Only the JSON card is rewritten.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from torch import nn

from .card import ModelCard
from .checkpoint import CheckpointError, card_path, load_checkpoint
from .data import Sample, binarize, binarized_positive, read_folds
from .profiles import class_profiles, class_profiles_from_folder, image_batches
from .se_analysis import has_profiles
from .trust import card_fold


def _profiles(model: nn.Module, card: ModelCard, samples: list[Sample], batch_size: int) -> dict[str, Any]:
    index = {label: i for i, label in enumerate(card.labels)}
    unknown = sorted({s.label for s in samples} - set(index))
    if unknown:
        raise ValueError(f"photos of classes {unknown} are not labels of this card {list(card.labels)}")
    if not samples:
        raise ValueError("the split has no photos")
    items = [(s.path, index[s.label]) for s in samples]
    device = next(model.parameters()).device
    return class_profiles(model, image_batches(items, card, batch_size), card.labels, device=device)


def with_test_profiles(model: nn.Module, card: ModelCard, data: str | Path, *, batch_size: int = 16) -> dict[str, Any]:
    """The card's ``class_profiles`` plus ``test``: the per-class profiles of its fold's Test photos.

    Args:
        model: the checkpoint's network.
        card: its card (names the official fold it was trained on).
        data: the dataset folder with ``folds.csv``.
    Returns:
        The new ``class_profiles`` (Train+Valid ones computed too when the card had none).
    Raises:
        ValueError: no ``folds.csv``, a card without a fold, or photos the card has no label for.
        FileNotFoundError: a photo listed in ``folds.csv`` is missing.
    """
    data = Path(data)
    if not (data / "folds.csv").is_file():
        raise ValueError(f"--data {data} has no folds.csv: the Test photos are those of the checkpoint's fold")
    splits = read_folds(data, card_fold(card))
    positive = binarized_positive(card.labels, card.data.get("positive"))
    if positive:
        splits = binarize(splits, positive)
    profiles = dict(card.class_profiles) if has_profiles(card.class_profiles) else \
        _profiles(model, card, splits.train + splits.valid, batch_size)
    test = _profiles(model, card, splits.test, batch_size)
    if test["blocks"] != profiles["blocks"] or test["channels"] != profiles["channels"]:
        raise ValueError("the card's class profiles belong to other SE blocks than this model's")
    profiles["test"] = {"split": f"{splits.source}: Test", "classes": test["classes"]}
    return profiles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m senet.add_profiles", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="the .safetensors file (its .json card is updated)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--folder", help="photos in one sub-folder per class label (become the card's profiles)")
    source.add_argument("--data", help="the dataset with folds.csv the checkpoint was trained on: adds the "
                                       "profiles of its fold's Test photos (the SE paper view's class averages)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    try:
        model, card = load_checkpoint(args.checkpoint, device=args.device)
        if args.data:
            profiles = with_test_profiles(model, card, args.data, batch_size=args.batch_size)
        else:
            profiles = class_profiles_from_folder(model, card, args.folder, batch_size=args.batch_size)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"add_profiles: {error}", file=sys.stderr)
        return 2
    target = card_path(args.checkpoint)
    target.write_text(card.replace(class_profiles=profiles).to_json() + "\n", encoding="utf-8")
    counts = {label: entry["count"] for label, entry in profiles["classes"].items()}
    print(f"wrote class profiles of {len(profiles['blocks'])} SE blocks to {target}: {counts}")
    if "test" in profiles:
        tested = {label: entry["count"] for label, entry in profiles["test"]["classes"].items()}
        print(f"  and of the Test photos ({profiles['test']['split']}): {tested}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
