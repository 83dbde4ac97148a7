"""Where a model comes from, for its card: the datasets (names, citations, licenses) and the command that ran."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MSLD_LICENSE = "CC BY-NC-SA 4.0 (derived from the MSLD / MSLD v2.0 data: attribution, non-commercial, share-alike)"
MSLD_CITATION = (
    "Ali, S. N. et al. (2022). Monkeypox Skin Lesion Detection Using Deep Learning Models: A Feasibility Study. "
    "arXiv:2207.03342. MSLD v2.0: mHealth lab, BUET (2024).")
IMAGENET_TERMS = "ImageNet terms of access: non-commercial research and education"

# "positive": the class of interest, whose one-vs-rest metrics cards report (it becomes the card's data.positive).
KNOWN_DATASETS: dict[str, dict[str, Any]] = {
    "msld_v2": {
        "name": "MSLD v2.0 (Mpox Skin Lesion Dataset v2.0)",
        "description": "755 web-scraped photos of 6 classes; the authors' 5 patient-independent folds",
        "license": MSLD_LICENSE, "citation": MSLD_CITATION, "positive": "Monkeypox",
    },
    "msld_v1": {
        "name": "MSLD v1 (Monkeypox Skin Lesion Dataset)",
        "description": "228 web-scraped photos, Monkeypox vs. Others; the authors' patient-independent fold 1",
        "license": MSLD_LICENSE, "citation": MSLD_CITATION, "positive": "Monkeypox",
    },
    "imagenette": {
        "name": "Imagenette (fast.ai subset of ImageNet, 10 classes, 112 px)",
        "description": "13,394 natural images", "license": IMAGENET_TERMS, "citation": "fast.ai Imagenette",
    },
    "imagewoof": {
        "name": "Imagewoof (fast.ai subset of ImageNet, 10 dog breeds, 112 px)",
        "description": "12,954 natural images", "license": IMAGENET_TERMS, "citation": "fast.ai Imagewoof",
    },
}


def command_line(module: str, argv: Sequence[str] | None = None) -> str:
    """``python -m MODULE ARGS`` as run: ``argv`` when a CLI's ``main(argv)`` was called with it, else sys.argv."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python -m", module, *(shlex.quote(a) for a in args)])


def describe_dataset(root: Path) -> dict[str, Any]:
    """Provenance of the dataset at ``root`` (known datasets by folder name; otherwise just the path)."""
    known = KNOWN_DATASETS.get(root.resolve().name, {})
    return {"path": root.name, **known} if known else {"path": root.name, "name": root.name,
                                                        "license": "unspecified (add it to the card)"}
