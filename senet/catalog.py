"""The checkpoints a UI can offer: discovery, human names, device choice, and a lazy per-device model cache.

Only ``<name>.json`` cards with ``<name>.safetensors`` weights beside them are offered. Pickle files
(``.pth``, ``.pt``, ...) are listed as refused and never opened. A checkpoint that cannot be read or loaded is
kept in the list as unavailable, with its reason, so the others keep working. Names coming from clients are
looked up in the discovered list, never joined onto a path.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from .card import ModelCard
from .checkpoint import CARD_SUFFIX, WEIGHTS_SUFFIX, CheckpointError, is_pickle, load_checkpoint, read_card
from .devices import device_name, resolve_device
from .registry import display_name, model_class

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
ENV_DIR = "SENET_CHECKPOINTS"
PICKLE_SUFFIXES = (".pth", ".pt", ".pkl", ".ckpt", ".bin")


class UnknownModel(LookupError):
    """A client asked for a model name that is not in the catalog."""


class ModelUnavailable(RuntimeError):
    """The named checkpoint is listed but cannot be used; the message says why."""


@dataclass
class Entry:
    """One checkpoint of the catalog.

    Attributes:
        name: the file stem, the stable identifier clients send (e.g. ``se_resnet18_msld_v2``).
        display_name: what people see in the picker.
        card: the model card, or None when it could not be read.
        error: why the checkpoint cannot be used, or None when it looks usable.
    """

    name: str
    display_name: str
    path: Path
    card: ModelCard | None = None
    error: str | None = None
    load_ms: float = 0.0
    load_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # one load at a time

    @property
    def available(self) -> bool:
        return self.error is None and self.card is not None


def dataset_display_name(data: Mapping[str, Any]) -> str:
    """A short dataset name from the card's ``data`` section: ``msld_v2`` -> ``MSLD v2``."""
    for key in ("short_name", "name", "dataset"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            value = value.split(" (")[0].strip()  # "MSLD v2.0 (Mpox Skin Lesion Dataset v2.0)" -> "MSLD v2.0"
            if " " in value or "_" not in value:
                return value
            head, *rest = value.split("_")
            return " ".join([head.upper(), *rest])
    return ""


def _complete_cv_accuracy(metrics: Mapping[str, Any]) -> float | None:
    """The mean accuracy over every official fold, when the card has a complete cross-validation."""
    cv = metrics.get("cv")
    folds = cv.get("folds") if isinstance(cv, Mapping) else None
    if not isinstance(cv, Mapping) or cv.get("incomplete") or not isinstance(folds, int) or folds < 2:
        return None
    accuracy = cv.get("accuracy")
    mean = accuracy.get("mean") if isinstance(accuracy, Mapping) else None
    return float(mean) if isinstance(mean, int | float) else None


def headline_accuracy(metrics: Mapping[str, Any]) -> float | None:
    """The accuracy people should compare, as a fraction in [0, 1]: the cross-validation mean when the card
    has a complete one (the number comparable with the literature), else the checkpoint's own Test accuracy."""
    cv_mean = _complete_cv_accuracy(metrics)
    if cv_mean is not None:
        return cv_mean
    candidates: list[Any] = [metrics.get("accuracy"), metrics.get("test_accuracy")]
    for section in ("test", "cv"):
        nested = metrics.get(section)
        if isinstance(nested, Mapping):
            candidates += [nested.get("accuracy"), nested.get("accuracy_mean")]
    for value in candidates:
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 100:
            return float(value) / 100 if value > 1 else float(value)  # cards made in Python may hold percents
    return None


def card_display_name(card: ModelCard) -> str:
    """E.g. ``SE-ResNet-18 · MSLD v2 · 77 % acc (5-fold)``, built from the card alone.

    The accuracy says what it is: the mean over a complete cross-validation (``(k-fold)``), one checkpoint's
    test accuracy while its cross-validation is incomplete (``(CV incomplete)``), or a plain test accuracy. The
    class count is left to the model's note and card: the name must fit a phone's picker.
    """
    parts = [display_name(card.arch)]
    if card.training.get("converter"):  # imported: the owner's title says what it is; no data or metrics known
        parts = [card.title, *parts] if card.title else parts
    dataset = dataset_display_name(card.data)
    if dataset:
        parts.append(dataset)
    accuracy = headline_accuracy(card.metrics)
    if accuracy is not None:
        cv = card.metrics.get("cv")
        if _complete_cv_accuracy(card.metrics) is not None and isinstance(cv, Mapping):
            note = f" ({int(cv['folds'])}-fold)"
        elif isinstance(cv, Mapping) and cv.get("incomplete"):
            note = " (CV incomplete)"
        else:
            note = ""
        parts.append(f"{accuracy * 100:.0f} % acc{note}")
    return " · ".join(parts)


def _check_header(weights: Path, card: ModelCard) -> None:
    """Catch corrupted files and label / head mismatches from the safetensors header alone (no tensor is read)."""
    if is_pickle(weights):
        raise CheckpointError(f"{weights.name} is a pickle / torch.save file, which is never loaded here")
    try:
        with safe_open(str(weights), framework="pt") as reader:
            shapes = {key: reader.get_slice(key).get_shape() for key in reader.keys()}
    except Exception as error:  # safetensors raises its own error types and OSError on broken files
        raise CheckpointError(f"{weights.name} is corrupted or not a safetensors file ({error})") from None
    key = f"{model_class(card.arch).classifier_name}.weight"
    if shapes.get(key) and shapes[key][0] != card.num_classes:
        raise CheckpointError(f"{weights.name}: the card lists {card.num_classes} labels but the head {key} "
                              f"has {shapes[key][0]} outputs")


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: keep the absolute path; listing it finds nothing
        return path.absolute()


class Catalog:
    """The checkpoints of one directory, loaded lazily and cached per name on one device.

    Args:
        directory: where to look; default ``$SENET_CHECKPOINTS`` or the project's ``checkpoints/``.
        device: ``auto``, ``cpu``, ``cuda`` or a ``torch.device``.
    """

    def __init__(self, directory: str | Path | None = None, *, device: str | torch.device = "auto") -> None:
        self.directory = _resolved(Path(directory or os.environ.get(ENV_DIR) or DEFAULT_DIR))
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self._models: dict[str, nn.Module] = {}
        self.entries: dict[str, Entry] = self._discover()
        self._stamps = {name: _stamp(entry) for name, entry in self.entries.items()}

    @property
    def device_name(self) -> str:
        return device_name(self.device)

    def _relative(self, message: str) -> str:
        # Reasons are shown to visitors: no absolute server paths in them.
        return message.replace(str(self.directory), "checkpoints")

    def _discover(self) -> dict[str, Entry]:
        try:
            files = sorted(p for p in self.directory.iterdir() if not p.name.startswith("."))
        except OSError:  # missing, not a directory, unreadable, a symlink loop
            return {}
        entries: dict[str, Entry] = {}
        stems = sorted({p.stem for p in files if p.suffix in (CARD_SUFFIX, WEIGHTS_SUFFIX)})
        for stem in stems:
            entries[stem] = self._inspect(stem)
        for path in files:
            if path.suffix.lower() in PICKLE_SUFFIXES and path.stem not in entries:
                entries[path.stem] = Entry(
                    path.stem, f"{path.name} (refused)", path,
                    error=f"{path.name} is a pickle file, which is never loaded here (it can run code); convert it "
                          "with python -m senet.convert into a .safetensors file with a .json card")
        named: dict[str, int] = {}
        for entry in entries.values():
            named[entry.display_name] = named.get(entry.display_name, 0) + 1
        for entry in entries.values():  # two checkpoints with equal cards stay distinguishable
            if named[entry.display_name] > 1:
                entry.display_name = f"{entry.display_name} ({entry.name})"
        return entries

    def _inspect(self, stem: str) -> Entry:
        weights = self.directory / f"{stem}{WEIGHTS_SUFFIX}"
        entry = Entry(stem, stem, weights)
        try:
            for part in (weights, weights.with_suffix(CARD_SUFFIX)):
                if part.is_symlink():
                    try:
                        target = part.resolve(strict=True)
                    except (OSError, RuntimeError):  # dangling or a loop (RuntimeError before Python 3.13)
                        raise CheckpointError(f"{part.name} is a broken or looping link; refused") from None
                    if not target.is_relative_to(self.directory):
                        raise CheckpointError(f"{part.name} links outside checkpoints/; refused")
            entry.card = read_card(weights)
            if not weights.is_file():
                raise CheckpointError(f"{weights.name} is missing: the card {stem}.json has no weights beside it")
            _check_header(weights, entry.card)
            entry.display_name = card_display_name(entry.card)
        except CheckpointError as error:
            entry.error = self._relative(str(error))
        except Exception as error:  # noqa: BLE001 - whatever one file does, the other models must still list
            entry.card = None
            entry.error = self._relative(f"{stem} could not be read ({type(error).__name__})")
        if entry.error is not None:
            entry.display_name = f"{stem} (unavailable)"
        return entry

    def names(self) -> list[str]:
        """Every listed checkpoint: available ones first, the most accurate first (the default), then by name."""
        def order(name: str) -> tuple[bool, float, str]:
            entry = self.entries[name]
            accuracy = headline_accuracy(entry.card.metrics) if entry.card else None
            return not entry.available, -(accuracy or 0.0), name
        return sorted(self.entries, key=order)

    def available(self) -> list[str]:
        return [name for name in self.names() if self.entries[name].available]

    @property
    def default(self) -> str | None:
        """The first available model, or None when there is none."""
        names = self.available()
        return names[0] if names else None

    def choices(self) -> list[tuple[str, str]]:
        """``(display name, name)`` pairs for a picker."""
        return [(self.entries[name].display_name, name) for name in self.names()]

    def entry(self, name: str | None) -> Entry:
        """The entry for ``name`` (a file stem or a display name); None means the default model.

        Raises:
            UnknownModel: the name is not in the list (nothing is ever looked up on disk by it).
        """
        if name is None or name == "":
            name = self.default
            if name is None:
                raise UnknownModel("no usable checkpoint is installed in checkpoints/")
        if not isinstance(name, str):
            raise UnknownModel("a model name must be a string")
        if name in self.entries:
            return self.entries[name]
        for entry in self.entries.values():
            if entry.display_name == name:
                return entry
        raise UnknownModel(f"unknown model {name[:80]!r}; choose one of: {', '.join(self.names()) or 'none'}")

    def load(self, name: str | None) -> tuple[nn.Module, ModelCard, Entry]:
        """The model (loaded once, then cached), its card and entry.

        Raises:
            UnknownModel: the name is not listed.
            ModelUnavailable: the checkpoint is listed but broken; it stays marked unavailable.
        """
        entry = self.entry(name)
        if not entry.available:
            raise ModelUnavailable(f"{entry.name} is unavailable: {entry.error}")
        model = self._models.get(entry.name)
        if model is None:
            with entry.load_lock:  # different models load in parallel, one model loads once
                model = self._models.get(entry.name)
                if model is None:
                    model = self._load(entry)
        assert entry.card is not None
        return model, entry.card, entry

    def _load(self, entry: Entry) -> nn.Module:
        if entry.error is not None:
            raise ModelUnavailable(f"{entry.name} is unavailable: {entry.error}")
        start = time.perf_counter()
        try:
            model, card = load_checkpoint(entry.path, device=self.device)
            # channels_last: the convolutions (and their backward, which every analysis runs) are 5-13 % faster
            # on the CPU in this layout (scripts/bench_roundtrip.py); explain.py feeds inputs to match.
            model = model.to(memory_format=torch.channels_last)
        except Exception as error:  # any failure marks only this checkpoint unavailable
            reason = str(error) if isinstance(error, CheckpointError) else f"loading failed ({error})"
            entry.error = self._relative(reason)
            entry.display_name = f"{entry.name} (unavailable)"
            raise ModelUnavailable(f"{entry.name} is unavailable: {entry.error}") from None
        entry.card = card
        entry.load_ms = (time.perf_counter() - start) * 1000
        self._models[entry.name] = model
        return model

    def is_loaded(self, name: str) -> bool:
        return name in self._models

    def rescan(self) -> list[str]:
        """Read the directory again: new checkpoints appear, removed ones go, and changed ones (weights or card
        rewritten) are inspected again and reloaded on next use. Unchanged entries, their locks and their loaded
        models are kept.

        Returns:
            The names that were added, changed or removed.
        """
        fresh = self._discover()
        changed = [name for name in set(self.entries) | set(fresh)
                   if name not in fresh or name not in self.entries or _stamp(fresh[name]) != self._stamps.get(name)]
        entries = {name: entry if name in changed else self.entries[name] for name, entry in fresh.items()}
        for name in changed:
            self._models.pop(name, None)
        self._stamps = {name: _stamp(entry) for name, entry in entries.items()}
        self.entries = entries  # one assignment: readers see the old or the new list, never a mix
        return sorted(changed)


def _stamp(entry: Entry) -> tuple[tuple[int, int] | None, ...]:
    """Modification time and size of an entry's files: what tells a rescan that a checkpoint changed."""
    stamps: list[tuple[int, int] | None] = []
    for path in (entry.path, entry.path.with_suffix(CARD_SUFFIX)):
        try:
            info = path.stat()
            stamps.append((info.st_mtime_ns, info.st_size))
        except OSError:
            stamps.append(None)
    return tuple(stamps)
