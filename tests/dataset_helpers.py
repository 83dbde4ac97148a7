"""A tiny generated MSLD-like dataset for the training tests: colour-coded classes and an official folds.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = {"Monkeypox": (190, 70, 60), "Healthy": (70, 170, 90), "Measles": (60, 80, 190)}


def make_dataset(root: Path, per_class: int = 8, folds: int = 2) -> Path:
    """Colour-coded images per class and a folds.csv with Train/Valid/Test in every fold."""
    rng = np.random.default_rng(0)
    rows = []
    for label, colour in CLASSES.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = (rng.normal(0, 25, (40, 44, 3)) + colour).clip(0, 255).astype(np.uint8)
            name = f"{label}_{i}.jpg"
            Image.fromarray(pixels).save(root / label / name)
            rows.append([name, label] + [("Test", "Valid", "Train", "Train")[(i + k) % 4] for k in range(folds)])
    with (root / "folds.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "class"] + [f"fold{k + 1}" for k in range(folds)])
        writer.writerows(rows)
    return root
