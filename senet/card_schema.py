"""The model card's JSON schema: every field's type and bounds, declared in one table (:data:`CARD_SCHEMA`).

Cards are files anyone can drop into ``checkpoints/`` (or upload with their own model), so a card is checked
field by field, nested ones included, before a :class:`~senet.card.ModelCard` is built from it: one bad card
then makes only its own model unavailable, with a sentence that names the field.

Unknown keys:
  * at the top level they are refused: a ``ModelCard`` field must exist to hold them, and an unknown name is
    most likely a typo or a card from a newer version;
  * inside the open sections (``metrics``, ``training``, ``data``, ``backbone``, ``class_profiles``) they are
    allowed but bounded (:data:`FREE`: depth, text length, item count, finite numbers), because training,
    evaluation and conversion add facts to these sections over time and an older app should still serve the
    model. Anything the app reads from these sections is declared below with its own type.

To add a field: add its entry to :data:`CARD_SCHEMA` (a new top-level ``ModelCard`` field) or to the section's
``Record`` below. A ``ModelCard`` field without an entry is checked as :data:`FREE` JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any

MAX_CARD_BYTES = 2 * 2**20  # the shipped cards are about 0.5 MB, almost all of it class profiles
MAX_DEPTH = 24  # nesting of the whole JSON document, checked before it is parsed

# Metric names whose values are fractions in [0, 1] wherever they appear in ``metrics`` (also as the last part of
# a dotted cross-validation key such as ``monkeypox_vs_rest.accuracy``, and for every number under them: mean,
# std, per-fold values).
FRACTION_KEYS = frozenset({
    "accuracy", "test_accuracy", "valid_accuracy", "heldout_accuracy", "balanced_accuracy", "macro_f1", "f1",
    "precision", "recall", "sensitivity", "specificity", "roc_auc", "roc_auc_macro", "ece", "ece_raw",
    "ece_calibrated", "mce", "coverage",
})


class CardSchemaError(ValueError):
    """A card field has the wrong type or is out of bounds; the message names the field."""


def _fail(path: str, wanted: str, value: Any) -> CardSchemaError:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return CardSchemaError(f"{path or 'the card'} must be {wanted}, got {shown}")


class Spec:
    """One node of the schema: ``check(value, path)`` raises :class:`CardSchemaError` or returns None."""

    def check(self, value: Any, path: str) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(Spec):
    """A string of at most ``max_len`` characters."""

    max_len: int = 200
    non_empty: bool = False

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise _fail(path, "text", value)
        if len(value) > self.max_len:
            raise CardSchemaError(f"{path} is too long ({len(value)} characters; at most {self.max_len})")
        if self.non_empty and not value.strip():
            raise CardSchemaError(f"{path} must not be empty")


@dataclass(frozen=True)
class Number(Spec):
    """A finite number in ``[low, high]`` (a whole number when ``integer``); booleans are not numbers."""

    low: float = -1e12
    high: float = 1e12
    integer: bool = False
    low_open: bool = False  # True: ``low`` itself is excluded (e.g. a std or a temperature must be > 0)

    def check(self, value: Any, path: str) -> None:
        kind = "a whole number" if self.integer else "a number"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(path, kind, value)
        if self.integer and not isinstance(value, int):
            raise _fail(path, kind, value)
        if not math.isfinite(value):
            raise _fail(path, f"a finite {kind[2:]}", value)
        too_low = value <= self.low if self.low_open else value < self.low
        if too_low or value > self.high:
            bracket = "(" if self.low_open else "["
            raise _fail(path, f"{kind} in {bracket}{self.low:g}, {self.high:g}]", value)


@dataclass(frozen=True)
class Flag(Spec):
    """``true`` or ``false``."""

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            raise _fail(path, "true or false", value)


@dataclass(frozen=True)
class ListOf(Spec):
    """A JSON array of ``item``, with ``min_len`` to ``max_len`` entries."""

    item: Spec
    min_len: int = 0
    max_len: int = 10_000

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list | tuple):
            raise _fail(path, "a list", value)
        if not self.min_len <= len(value) <= self.max_len:
            size = f"exactly {self.min_len}" if self.min_len == self.max_len else \
                f"at least {self.min_len}" if len(value) < self.min_len else f"at most {self.max_len}"
            raise CardSchemaError(f"{path} must have {size} entries, got {len(value)}")
        if isinstance(self.item, Number) and all(type(v) in (int, float) for v in value):
            # Fast path for long numeric arrays (class profiles hold ~100k numbers): one pass, no per-item call.
            bad = next((v for v in value if not self._number_ok(v)), None)
            if bad is None:
                return
        for index, item in enumerate(value):
            self.item.check(item, f"{path}[{index}]")

    def _number_ok(self, value: float) -> bool:
        spec = self.item
        assert isinstance(spec, Number)
        if spec.integer and not isinstance(value, int):
            return False
        low_ok = value > spec.low if spec.low_open else value >= spec.low
        return math.isfinite(value) and low_ok and value <= spec.high


@dataclass(frozen=True)
class MapOf(Spec):
    """A JSON object with free keys (at most ``max_items``, each a short text) and values of one kind."""

    value: Spec
    max_items: int = 1000
    key_len: int = 200

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise _fail(path, "an object", value)
        if len(value) > self.max_items:
            raise CardSchemaError(f"{path} has too many entries ({len(value)}; at most {self.max_items})")
        for key, item in value.items():
            _check_key(key, path, self.key_len)
            self.value.check(item, _join(path, key))


@dataclass(frozen=True)
class Record(Spec):
    """A JSON object with declared ``fields`` (each optional); other keys must fit ``extra`` (None: refused)."""

    fields: Mapping[str, Spec]
    extra: Spec | None = None
    max_items: int = 1000

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise _fail(path, "an object", value)
        if len(value) > self.max_items:
            raise CardSchemaError(f"{path} has too many entries ({len(value)}; at most {self.max_items})")
        for key, item in value.items():
            _check_key(key, path, 200)
            spec = self.fields.get(key, self.extra)
            if spec is None:
                raise CardSchemaError(f"{_join(path, key)} is not a known field")
            if isinstance(spec, Free):  # the key itself may make its numbers fractions
                spec.check_under(key, item, _join(path, key))
            else:
                spec.check(item, _join(path, key))


@dataclass(frozen=True)
class Either(Spec):
    """Any one of ``options`` (tried in order); the message lists what was expected."""

    options: tuple[Spec, ...]
    wanted: str

    def check(self, value: Any, path: str) -> None:
        for option in self.options:
            try:
                option.check(value, path)
                return
            except CardSchemaError:
                continue
        raise _fail(path, self.wanted, value)


@dataclass(frozen=True)
class Free(Spec):
    """Any JSON value within bounds: nesting depth, text length, items per list or object, finite numbers.

    With ``fractions``, a number under a key named in :data:`FRACTION_KEYS` (or ending in ``.<name>``) must be in
    [0, 1].
    """

    max_depth: int = 10
    max_text: int = 10_000
    max_items: int = 10_000
    fractions: bool = False
    _fraction: Number = field(default=Number(0, 1), repr=False)

    def check(self, value: Any, path: str) -> None:
        self._walk(value, path, 0, False)

    def check_under(self, key: str, value: Any, path: str) -> None:
        """``check`` for the value of ``key`` in an object."""
        self._walk(value, path, 0, self._is_fraction(key))

    def _is_fraction(self, key: str) -> bool:
        return self.fractions and key.rsplit(".", 1)[-1] in FRACTION_KEYS

    def _check_size(self, value: Sized, path: str) -> None:
        if len(value) > self.max_items:
            raise CardSchemaError(f"{path} has too many entries ({len(value)}; at most {self.max_items})")

    def _walk(self, value: Any, path: str, depth: int, fraction: bool) -> None:
        if depth > self.max_depth:
            raise CardSchemaError(f"{path} is nested too deeply (more than {self.max_depth} levels)")
        if value is None or isinstance(value, bool):
            return
        if isinstance(value, int | float):
            (self._fraction if fraction else _FINITE).check(value, path)
        elif isinstance(value, str):
            Text(self.max_text).check(value, path)
        elif isinstance(value, list | tuple):
            self._check_size(value, path)
            for index, item in enumerate(value):
                self._walk(item, f"{path}[{index}]", depth + 1, fraction)
        elif isinstance(value, Mapping):
            self._check_size(value, path)
            for key, item in value.items():
                _check_key(key, path, 200)
                inner = fraction or self._is_fraction(key)
                self._walk(item, _join(path, key), depth + 1, inner)
        else:
            raise _fail(path, "a JSON value", value)


_FINITE = Number()


def _check_key(key: Any, path: str, max_len: int) -> None:
    if not isinstance(key, str) or len(key) > max_len:
        raise CardSchemaError(f"{path} has a key that is not a short text ({str(key)[:40]!r})")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- the card ----------------------------------------------------------------------------------------------

FREE = Free()
METRICS_FREE = Free(fractions=True)
FRACTION = Number(0, 1)
COUNT = Number(0, 1e12, integer=True)
SHORT = Text(200)
LONG = Text(10_000)
SCALAR = Either((Number(-1e6, 1e6), Flag(), Text(200)), "a number, true/false or a short text")

METRICS = Record({
    "test": Record({
        "n": COUNT,
        "labels": ListOf(Text(100), max_len=1000),
        "confusion_matrix": ListOf(ListOf(COUNT, max_len=1000), max_len=1000),
        "per_class": MapOf(Record({"precision": FRACTION, "recall": FRACTION, "f1": FRACTION, "roc_auc": FRACTION,
                                   "support": COUNT}, extra=METRICS_FREE)),
    }, extra=METRICS_FREE),
    "cv": Record({
        "folds": Number(1, 1000, integer=True),
        "incomplete": Either((Flag(), Text(1000)), "true/false or a short text"),
        "fold_ids": ListOf(Either((Text(100), Number(integer=True)), "a fold name"), max_len=1000),
    }, extra=METRICS_FREE),
    "calibration": Record({  # added by temperature scaling: T > 0, ECE in [0, 1] (FRACTION_KEYS), NLL >= 0
        "temperature": Number(0, 1000, low_open=True),
        "nll": Number(0, 1e6), "nll_raw": Number(0, 1e6), "nll_calibrated": Number(0, 1e6),
    }, extra=METRICS_FREE),
    "fold": Either((Text(100), Number(integer=True)), "a fold name"),
    "best_epoch": COUNT,
    "epochs": COUNT,
}, extra=METRICS_FREE)

TRAINING = Record({
    "command": Either((LONG, ListOf(Text(1000), max_len=1000)), "a command line (text or list of words)"),
    "recipe": FREE,
    "device": SHORT,
    "seconds": Number(0, 1e9),
    "epochs_trained": COUNT,
    "finished": Flag(),
    "world_size": Number(1, 1e6, integer=True),
}, extra=FREE)

DATA = Record({
    **{key: SHORT for key in ("name", "short_name", "dataset", "path", "split", "version")},
    **{key: LONG for key in ("description", "license", "citation")},
    "positive": Text(100),
    "counts": MapOf(MapOf(COUNT, max_items=1000), max_items=100),
    "provenance": Either((LONG, FREE), "text or an object"),
}, extra=FREE)

BACKBONE = Record({
    "checkpoint": SHORT, "arch": SHORT, "license": LONG, "description": LONG,
    "data": FREE, "training": FREE, "metrics": METRICS_FREE,
}, extra=FREE)

_PROFILE_VALUES = ListOf(ListOf(Number(-1e6, 1e6), max_len=100_000), max_len=1000)
_CLASS_PROFILE = Record({"count": COUNT, "mean": _PROFILE_VALUES, "std": _PROFILE_VALUES}, extra=FREE)
CLASS_PROFILES = Record({
    "blocks": ListOf(Text(100), max_len=1000),
    "channels": ListOf(Number(1, 1e6, integer=True), max_len=1000),
    "classes": MapOf(_CLASS_PROFILE),
    # the fold's Test photos (senet.add_profiles --data): same blocks and channels
    "test": Record({"split": SHORT, "classes": MapOf(_CLASS_PROFILE)}, extra=FREE),
}, extra=FREE)

CARD_SCHEMA = Record({
    "arch": Text(64, non_empty=True),
    "labels": ListOf(Text(100, non_empty=True), min_len=2, max_len=1000),
    "model_args": MapOf(Either((SCALAR, ListOf(Number(-1e6, 1e6), max_len=16)), "a number, flag or short text"),
                        max_items=32),
    "title": Text(200),
    "description": Text(5000),
    "input_size": ListOf(Number(32, 1024, integer=True), min_len=2, max_len=2),
    "resize_ratio": Number(0.25, 1),
    "mean": ListOf(Number(0, 1), min_len=3, max_len=3),
    "std": ListOf(Number(0.001, 10), min_len=3, max_len=3),
    "metrics": METRICS,
    "training": TRAINING,
    "data": DATA,
    "backbone": BACKBONE,
    "class_profiles": CLASS_PROFILES,
    "license": Text(2000),
    "citation": Text(5000),
    "limitations": Text(5000),
    "created": Text(40),
    "num_params": Number(0, 1e11, integer=True),
    "schema_version": Number(1, 1000, integer=True),
}, extra=None)


def validate_card(data: Mapping[str, Any], fields: Sequence[str] = ()) -> None:
    """Check a card's JSON data against :data:`CARD_SCHEMA`.

    Args:
        data: the parsed card.
        fields: the ``ModelCard`` field names; those missing from the schema are checked as :data:`FREE` JSON
            (so a field added to the dataclass works before its schema entry is written).
    Raises:
        CardSchemaError: the first problem found, naming the field (e.g. ``metrics.cv.folds must be a whole
            number, got 'abc'``).
    """
    schema = CARD_SCHEMA
    missing = [name for name in fields if name not in schema.fields]
    if missing:
        schema = Record({**schema.fields, **dict.fromkeys(missing, FREE)}, extra=None)
    schema.check(data, "")


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """The deepest nesting of ``[`` / ``{`` in a JSON text, without parsing it (strings are skipped)."""
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


__all__ = ["CARD_SCHEMA", "FRACTION_KEYS", "MAX_CARD_BYTES", "MAX_DEPTH", "CardSchemaError", "json_depth",
           "validate_card"]
