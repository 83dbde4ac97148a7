"""Evaluate a checkpoint on a dataset split and print the card's metrics as JSON.

    python -m senet.evaluate --checkpoint checkpoints/NAME.safetensors --data ../shared/data/msld_v2 --fold 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .checkpoint import load_checkpoint
from .data import binarize, binarized_positive, eval_tensor, label_indices, load_splits
from .devices import DeviceError, resolve_device
from .metrics import evaluation_metrics
from .trainer import predict


def evaluate(checkpoint: Path, data: Path, *, fold: int | None = None, split: str = "test", device: str = "auto",
             seed: int = 0) -> dict[str, Any]:
    """Metrics of ``checkpoint`` on one split of ``data``, preprocessed with the card's own transforms."""
    model, card = load_checkpoint(checkpoint, device=resolve_device(device))
    splits = load_splits(data, fold=fold, seed=seed)
    positive = card.data.get("positive")
    binary = binarized_positive(card.labels, positive)
    if binary:  # a "--positive X" model: X vs. everything else
        splits = binarize(splits, binary)
    samples = {"train": splits.train, "valid": splits.valid, "test": splits.test}[split]
    images = eval_tensor([s.path for s in samples], card)
    targets = label_indices(samples, list(card.labels)).numpy()
    probs = predict(model, images).numpy()
    return evaluation_metrics(probs, targets, list(card.labels), positive=positive)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m senet.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--fold", type=int)
    p.add_argument("--split", choices=["train", "valid", "test"], default="test")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    try:
        metrics = evaluate(args.checkpoint, args.data, fold=args.fold, split=args.split, device=args.device)
    except DeviceError as error:
        raise SystemExit(f"senet.evaluate: {error}") from None
    print(json.dumps(metrics, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
