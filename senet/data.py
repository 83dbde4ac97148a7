"""Datasets on disk: image folders, the MSLD ``folds.csv`` splits, and decoding into uint8 tensors.

Training keeps whole datasets as uint8 tensors (MSLD is 755 photos, the pretraining corpora 26k small ones), so
augmentation runs batched on the training device and no loader process can starve the GPU.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .card import ModelCard
from .image_io import IMAGE_SUFFIXES
from .preprocess import to_rgb

SPLITS = ("Train", "Valid", "Test")
OTHERS = "Others"  # the negative class name of "--positive X" datasets (as in MSLD v1)


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str


@dataclass(frozen=True)
class Splits:
    """Train / Valid / Test samples and the class names, in label-index order."""

    train: list[Sample]
    valid: list[Sample]
    test: list[Sample]
    labels: list[str]
    source: str  # how the split was made, for the model card

    def counts(self) -> dict[str, dict[str, int]]:
        return {name: dict(Counter(s.label for s in part)) for name, part in
                (("train", self.train), ("valid", self.valid), ("test", self.test))}


def list_image_folder(root: Path) -> list[Sample]:
    """Every image under ``root/<class>/``; classes are the sub-folder names."""
    samples = [Sample(path, path.parent.name) for path in sorted(root.glob("*/*"))
               if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()]
    if not samples:
        raise FileNotFoundError(f"no images found under {root}/<class>/ (expected one sub-folder per class)")
    return samples


def official_folds(root: Path) -> list[int]:
    """The fold numbers of ``root/folds.csv`` (its fold1, fold2, ... columns)."""
    with (root / "folds.csv").open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    return [int(column[4:]) for column in header if column.startswith("fold") and column[4:].isdigit()]


def read_folds(root: Path, fold: int) -> Splits:
    """The official split ``fold`` (1-based) of a dataset with a ``folds.csv`` (columns file,class,fold1..)."""
    table = root / "folds.csv"
    with table.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    column = f"fold{fold}"
    if not rows or column not in rows[0]:
        available = [f"fold{k}" for k in official_folds(root)]
        raise ValueError(f"{table} has no column {column!r}; available: {available}")
    parts: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    for row in rows:
        split = row[column]
        if split not in parts:
            raise ValueError(f"{table}: unknown split {split!r} for {row['file']} (expected {SPLITS})")
        parts[split].append(Sample(root / row["class"] / row["file"], row["class"]))
    labels = sorted({s.label for s in parts["Train"]})
    return Splits(parts["Train"], parts["Valid"], parts["Test"], labels, f"{table.name} {column} (official)")


def random_splits(samples: Sequence[Sample], *, valid: float = 0.15, test: float = 0.15, seed: int = 0) -> Splits:
    """Stratified random Train / Valid / Test split for a plain image folder without ``folds.csv``."""
    rng = random.Random(seed)
    by_class: dict[str, list[Sample]] = {}
    for sample in samples:
        by_class.setdefault(sample.label, []).append(sample)
    train: list[Sample] = []
    valid_part: list[Sample] = []
    test_part: list[Sample] = []
    for items in by_class.values():
        items = sorted(items, key=lambda s: s.path)
        rng.shuffle(items)
        n_test = max(1, round(len(items) * test)) if len(items) >= 3 else 0
        n_valid = max(1, round(len(items) * valid)) if len(items) >= 3 else 0
        test_part += items[:n_test]
        valid_part += items[n_test:n_test + n_valid]
        train += items[n_test + n_valid:]
    return Splits(train, valid_part, test_part, sorted(by_class), f"random stratified split, seed {seed}")


def load_splits(root: Path, *, fold: int | None = None, seed: int = 0) -> Splits:
    """Official folds when ``root/folds.csv`` exists (fold 1 by default), else a seeded random split."""
    if (root / "folds.csv").is_file():
        return read_folds(root, fold or 1)
    if fold is not None:
        raise ValueError(f"--fold needs {root}/folds.csv")
    return random_splits(list_image_folder(root), seed=seed)


def binarize(splits: Splits, positive: str) -> Splits:
    """Turn any dataset into ``positive`` vs. everything else (labels: ["Others", positive])."""
    if positive not in splits.labels:
        raise ValueError(f"--positive {positive!r} is not a class; classes: {splits.labels}")

    def relabel(part: list[Sample]) -> list[Sample]:
        return [Sample(s.path, positive if s.label == positive else OTHERS) for s in part]

    return Splits(relabel(splits.train), relabel(splits.valid), relabel(splits.test), [OTHERS, positive],
                  f"{splits.source}, {positive} vs. rest")


def binarized_positive(labels: Sequence[str], positive: str | None) -> str | None:
    """``positive`` when ``labels`` are those :func:`binarize` makes for it (``[Others, positive]``), else None.

    A card's ``data.positive`` names its class of interest; only these labels mean the data itself was binarised.
    """
    return positive if positive and list(labels) == [OTHERS, positive] else None


def open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return to_rgb(image)


def decode_resized(paths: Sequence[Path], size: tuple[int, int], *, workers: int = 8) -> torch.Tensor:
    """Decode images and resize (squash) each to ``size`` (H, W): a (N, 3, H, W) uint8 tensor."""

    def one(path: Path) -> np.ndarray:
        image = open_rgb(path).resize((size[1], size[0]), Image.Resampling.BILINEAR, reducing_gap=3.0)
        return np.asarray(image, dtype=np.uint8)

    if not paths:
        return torch.empty((0, 3, *size), dtype=torch.uint8)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        arrays = list(pool.map(one, paths))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def eval_tensor(paths: Sequence[Path], card: ModelCard) -> torch.Tensor:
    """Images preprocessed exactly as at inference (``card.transforms()``): (N, 3, H, W) float."""
    transform = card.transforms()
    if not paths:
        return torch.empty((0, 3, *card.input_size))
    return torch.stack([transform(open_rgb(p)) for p in paths])


def label_indices(samples: Sequence[Sample], labels: Sequence[str]) -> torch.Tensor:
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({s.label for s in samples} - set(index))
    if unknown:
        raise ValueError(f"samples with labels {unknown} not among the model's labels {list(labels)}")
    return torch.tensor([index[s.label] for s in samples], dtype=torch.long)
