"""The model card: a typed, frozen description of a trained model that rebuilds and describes it."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

SCHEMA_VERSION = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _today() -> str:
    return _dt.date.today().isoformat()


# A JSON list of numbers only, spread over lines by json.dumps(indent=...); JSON strings cannot hold a raw newline,
# so no string can match.
_NUMBER_LIST = re.compile(r"\[\n[ \d.eE+\-,\n]*\n *\]")


def _one_line(match: re.Match[str]) -> str:
    return "[" + ", ".join(item.strip() for item in match.group(0)[1:-1].split(",")) + "]"


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to rebuild, preprocess for and describe a trained model.

    Only ``arch`` and ``labels`` are required; ``ModelCard(arch="se_resnet18", labels=["a", "b"])`` works.
    Mappings hold plain JSON values so the card round-trips through JSON unchanged.
    """

    arch: str
    labels: Sequence[str]  # stored as a tuple
    model_args: Mapping[str, Any] = field(default_factory=dict)
    title: str = ""
    description: str = ""
    input_size: tuple[int, int] = (224, 224)  # (height, width) the network sees
    resize_ratio: float = 1.0  # resize to input_size / ratio, then centre-crop input_size (1.0: no crop)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    metrics: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)  # command, recipe, hardware, duration
    data: Mapping[str, Any] = field(default_factory=dict)  # dataset name, version, folds, provenance
    backbone: Mapping[str, Any] = field(default_factory=dict)  # pretraining provenance when fine-tuned
    class_profiles: Mapping[str, Any] = field(default_factory=dict)  # per class, per SE block: mean/std excitation
    license: str = "unspecified"
    citation: str = ""
    limitations: str = ""
    created: str = field(default_factory=_today)
    num_params: int = 0
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if isinstance(self.labels, str):  # tuple("abcdef") would silently make six one-letter classes
            raise ValueError(f"labels must be a list of class names, not the text {self.labels[:40]!r}")
        # Accept lists from callers and JSON, store tuples so the card really is immutable.
        object.__setattr__(self, "labels", tuple(str(label) for label in self.labels))
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if not self.arch:
            raise ValueError("ModelCard.arch must name a registered architecture")
        if len(self.labels) < 2:
            raise ValueError(f"a classifier needs at least 2 labels, got {list(self.labels)}")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be unique, got {list(self.labels)}")
        if len(self.input_size) != 2 or min(self.input_size) < 32:
            raise ValueError(f"input_size must be (height, width), each >= 32, got {self.input_size}")
        if not 0 < self.resize_ratio <= 1:
            raise ValueError(f"resize_ratio must be in (0, 1], got {self.resize_ratio}")
        if not all(value > 0 for value in self.std):
            raise ValueError(f"std must be positive (it divides every pixel), got {list(self.std)}")

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def display_name(self) -> str:
        """A human name for pickers: the title, or the architecture and classes."""
        return self.title or f"{self.arch} · {self.num_classes} classes"

    def transforms(self) -> Callable[[Image.Image], torch.Tensor]:
        """Inference preprocessing: PIL image (any mode) -> normalised (3, H, W) float tensor."""
        from .preprocess import InferenceTransform

        return InferenceTransform(self.input_size, self.resize_ratio, self.mean, self.std)

    def replace(self, **changes: Any) -> ModelCard:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_json(self) -> str:
        """Indented JSON, with every list of plain numbers on one line: the class profiles and reliability bins
        one number per line made each shipped card about 1 MB, 60 % of it indentation."""
        return _NUMBER_LIST.sub(_one_line, json.dumps(self.to_dict(), indent=2, ensure_ascii=False))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """Build a card from JSON data, checked field by field against ``senet.card_schema.CARD_SCHEMA``.

        Raises:
            ValueError: unknown or missing required fields, a newer schema, or a field of the wrong type or out
                of bounds (a ``CardSchemaError`` naming the field).
        """
        from .card_schema import validate_card

        if not isinstance(data, Mapping):
            raise ValueError("a model card must be a JSON object")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(str(key)[:40] for key in set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown model card fields {unknown[:10]}; this card may come from a newer version")
        missing = [name for name in ("arch", "labels") if name not in data]
        if missing:
            raise ValueError(f"model card lacks required fields {missing}")
        version = data.get("schema_version", SCHEMA_VERSION)
        if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
            raise ValueError(f"model card schema {version} is newer than this code's {SCHEMA_VERSION}")
        validate_card(data, known)
        return cls(**data)
