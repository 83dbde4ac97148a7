"""Cross-validation that may span several runs: merge per-fold checkpoints into one card with mean +- std.

Five folds do not always fit in one sitting (the lent GPU takes 10-minute commands, and a killed command
returns nothing), so ``senet.train --folds 1,2`` and later ``--folds 3,4,5`` each write STEM_foldK as every
fold finishes; this merges the fold cards into STEM (the weights of one fold, the card with ``metrics.cv``).
``senet.train --cv`` ends with the same merge.

    python -m senet.crossval --out runs/NAME [--ship-fold 1]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path
from typing import Any

from .card import ModelCard
from .checkpoint import read_card, weights_path
from .metrics import summarize_folds
from .provenance import command_line
from .run_outputs import write_card_outputs

CV_KEYS = ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc_macro", "monkeypox_vs_rest.accuracy",
           "monkeypox_vs_rest.sensitivity", "monkeypox_vs_rest.specificity", "monkeypox_vs_rest.roc_auc")
# What must be equal across the folds of one cross-validation (commands, timings and metrics may differ).
SAME_RECIPE = ("arch", "labels", "model_args", "input_size", "resize_ratio", "mean", "std")


def fold_path(stem: Path, fold: int) -> Path:
    """Where ``senet.train`` writes fold ``fold`` of the run ``stem``: STEM_foldK."""
    return stem.with_name(f"{stem.name}_fold{fold}")


def find_folds(stem: Path) -> dict[int, Path]:
    """The fold checkpoints of ``stem`` on disk, by fold number."""
    pattern = re.compile(re.escape(stem.name) + r"_fold(\d+)\.json")
    found = {}
    for path in stem.parent.glob(f"{stem.name}_fold*.json"):
        match = pattern.fullmatch(path.name)
        if match:
            found[int(match.group(1))] = path.with_suffix("")
    return dict(sorted(found.items()))


def _recipe(card: ModelCard) -> dict[str, Any]:
    return {**{key: getattr(card, key) for key in SAME_RECIPE},
            "recipe": card.training.get("recipe"), "data": card.data.get("path"),
            "positive": card.data.get("positive"), "backbone": card.backbone.get("checkpoint")}


def merge_folds(stem: Path, *, ship_fold: int | None = None, command: str = "") -> Path:
    """Merge every STEM_foldK checkpoint into STEM and return STEM's weights path.

    STEM gets the weights of ``ship_fold`` (default: the lowest fold; the app's examples come from fold 1's
    Test part, which only a fold-1 model has never trained on) and its card, plus ``metrics.cv``: mean, std
    and per-fold values of ``CV_KEYS``, which folds ran, and ``incomplete`` when folds of the dataset are missing.

    Raises:
        ValueError: no fold checkpoints, the ship fold is missing, or the folds were trained differently.
    """
    folds = find_folds(stem)
    if not folds:
        raise ValueError(f"no fold checkpoints {stem.name}_foldK.json in {stem.parent}")
    cards = {fold: read_card(path) for fold, path in folds.items()}
    ship_fold = min(folds) if ship_fold is None else ship_fold
    if ship_fold not in folds:
        raise ValueError(f"fold {ship_fold} was not trained; found folds {sorted(folds)}")
    reference = _recipe(cards[ship_fold])
    for fold, card in cards.items():
        differing = sorted(key for key, value in _recipe(card).items() if value != reference[key])
        if differing:
            raise ValueError(f"fold {fold} was trained differently from fold {ship_fold} ({', '.join(differing)}): "
                             "merge only folds of one recipe")
    summary = summarize_folds([cards[fold].metrics["test"] for fold in folds], CV_KEYS)
    summary["fold_ids"] = list(folds)
    summary["commands"] = sorted({card.training.get("command", "") for card in cards.values()} - {""})
    available = cards[ship_fold].data.get("official_folds")
    if isinstance(available, int) and len(folds) < available:
        summary["incomplete"] = (f"only folds {', '.join(map(str, folds))} of the {available} official folds "
                                 "were trained")
    shipped = cards[ship_fold]
    card = shipped.replace(metrics={**shipped.metrics, "cv": summary},
                           training={**shipped.training, **({"merge_command": command} if command else {})})
    target = weights_path(stem)
    if weights_path(folds[ship_fold]).resolve() != target.resolve():
        shutil.copyfile(weights_path(folds[ship_fold]), target)  # byte for byte: no float16 round trip
        target.chmod(0o644)
    write_card_outputs(card, stem)
    return target


def cv_summary(path: Path) -> str:
    """The merged card's cross-validation as indented JSON, for the console (the fold commands left out)."""
    cv = read_card(path).metrics["cv"]
    return json.dumps({key: value for key, value in cv.items() if key != "commands"}, indent=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m senet.crossval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="the run's stem, as given to senet.train --out")
    p.add_argument("--ship-fold", type=int, help="whose weights STEM gets (default: the lowest fold)")
    args = p.parse_args(argv)
    try:
        path = merge_folds(args.out, ship_fold=args.ship_fold, command=command_line("senet.crossval", argv))
    except ValueError as error:
        raise SystemExit(f"senet.crossval: {error}") from None
    print(cv_summary(path))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
