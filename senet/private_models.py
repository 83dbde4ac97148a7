"""Models that visitors bring themselves: held in memory for their owner only, bounded in number and age.

A front end gives each visitor an opaque owner key (a browser session). :class:`PrivateModels` converts an
uploaded weights file exactly as ``python -m senet.convert`` does (``weights_only`` reading, recognition, the same
refusals), keeps the model under a random name, and answers lookups only for the same owner: another owner gets the
same "unknown model" answer as for a name that never existed. At most ``max_models`` are held in all (the oldest
is dropped first) and each expires ``ttl_s`` seconds after its last use. Nothing is written to disk.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .card import ModelCard
from .catalog import Entry, UnknownModel, card_display_name
from .convert import make_card, recognize_file
from .recognize import Recognition

PREFIX = "own-"  # private names start with this, so a lookup never falls through to the shared catalog
MAX_UPLOAD_BYTES = 300 * 2**20  # float32 state dicts: SE-ResNet-152 248 MB, SE-ResNet-101 181 MB
SUFFIXES = (".pth", ".pt", ".safetensors")


class UploadRefused(ValueError):
    """An uploaded model cannot be used; the message is one sentence for the visitor."""


@dataclass
class PrivateModel:
    owner: str
    entry: Entry
    model: nn.Module
    recognition: Recognition
    last_used: float


class PrivateModels:
    """The uploaded models of every owner, at most ``max_models`` in all, each kept ``ttl_s`` after last use.

    Args:
        device: where the models run (the catalog's device).
        max_models: how many are held at once over all owners; adding one more drops the least recently used.
        ttl_s: seconds after its last use that a model is dropped.
    """

    def __init__(self, *, device: torch.device | str = "cpu", max_models: int = 4, ttl_s: float = 3600.0) -> None:
        if max_models < 1:
            raise ValueError("max_models must be at least 1")
        self.device = torch.device(device)
        self.max_models = max_models
        self.ttl_s = ttl_s
        self._models: OrderedDict[str, PrivateModel] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._models)

    def add(self, owner: str, path: str | Path, labels: Sequence[str], *, title: str = "") -> PrivateModel:
        """Convert the weights file ``path`` for ``owner`` and hold it.

        Raises:
            UploadRefused: wrong suffix, too large, not a state dict, unknown architecture, wrong labels; one
                sentence each.
        """
        source = Path(path)
        if not owner:
            raise UploadRefused("This page has no session, so an uploaded model could not be kept for you alone.")
        if source.suffix.lower() not in SUFFIXES:
            raise UploadRefused(f"Upload a .pth, .pt or .safetensors weights file, not {source.suffix or 'this'}.")
        size = source.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise UploadRefused(f"The file is {size / 2**20:.0f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB.")
        try:
            recognition = recognize_file(source)
            if not [label for label in labels if label.strip()]:
                raise UploadRefused(f"This file holds {recognition.describe()}: type its {recognition.num_classes} "
                                    "class names, in the order used in training.")
            card = make_card(recognition, labels, title=title.strip() or source.stem,
                             training={"converted_from": source.name})
            model = recognition.build().to(self.device)
        except UploadRefused:
            raise
        except (ValueError, RuntimeError) as error:  # ConversionError is a CheckpointError (RuntimeError)
            raise UploadRefused(_sentence(str(error))) from None
        name = PREFIX + secrets.token_hex(8)
        entry = Entry(name, f"{card_display_name(card)} · yours", Path(source.name), card=card)
        held = PrivateModel(owner, entry, model, recognition, time.monotonic())
        with self._lock:
            self._expire()
            self._models[name] = held
            while len(self._models) > self.max_models:
                self._models.popitem(last=False)
        return held

    def get(self, owner: str, name: str) -> tuple[nn.Module, ModelCard, Entry]:
        """The model ``name`` of ``owner``.

        Raises:
            UnknownModel: no such model for this owner (whether it never existed, expired or is someone else's).
        """
        with self._lock:
            self._expire()
            held = self._models.get(name)
            if held is None or held.owner != owner:
                raise UnknownModel(f"unknown model {name[:80]!r}: uploaded models are only available in the browser "
                                   "session that uploaded them, until it ends")
            held.last_used = time.monotonic()
            self._models.move_to_end(name)
        assert held.entry.card is not None
        return held.model, held.entry.card, held.entry

    def owned(self, owner: str) -> list[Entry]:
        """The entries of ``owner``'s models, oldest first."""
        with self._lock:
            self._expire()
            return [held.entry for held in self._models.values() if held.owner == owner]

    def drop_owner(self, owner: str) -> int:
        """Forget every model of ``owner`` (the session ended); returns how many were dropped."""
        with self._lock:
            names = [name for name, held in self._models.items() if held.owner == owner]
            for name in names:
                del self._models[name]
        return len(names)

    def _expire(self) -> None:
        limit = time.monotonic() - self.ttl_s
        for name in [name for name, held in self._models.items() if held.last_used < limit]:
            del self._models[name]


def is_private_name(name: object) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def _sentence(message: str) -> str:
    """A library message as a sentence for a web page, ending with a full stop (not capitalised: it often starts
    with the file's name)."""
    message = message.strip()
    if not message:
        return "The file could not be used."
    return message if message.endswith((".", "!", "?")) else message + "."
