"""Recognise a registered architecture from a state dict's keys and shapes, and convert it to our names.

The registry is the source of truth: every registered builder (and each of its boolean structural switches,
such as ``small_inputs``) is built once on the meta device, and its key/shape signature is compared with the
state dict's, so a new family needs no edit here. What a signature cannot give is read from the shapes: the
number of classes (the tensors whose shape follows ``num_classes``) and the SE reduction ratio (the tensors whose
shape follows ``se_reduction``). Seed-code key names are mapped onto ours first (:data:`SEED_RENAMES`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .checkpoint import CheckpointError
from .registry import builder_options, create_model, list_models

# Seed key name -> ours, applied in order (the first match wins). See ../shared/seeds/.
SEED_RENAMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(layer\d+\.\d+)\.fc([12])\."), r"\1.se.fc\2."),  # seed 000: SE linears sit on the block
    # seeds 001-003: SE as nn.Sequential(Linear, ReLU, Linear, Sigmoid) in a submodule named se, SE_Block, ...
    (re.compile(r"\.(?:se|SE|SE_Block|se_block|SELayer|se_layer|selayer|se_module)\.fc\.0\."), ".se.fc1."),
    (re.compile(r"\.(?:se|SE|SE_Block|se_block|SELayer|se_layer|selayer|se_module)\.fc\.2\."), ".se.fc2."),
    (re.compile(r"^features\.norm_final\."), "features.norm5."),  # seed 002's final batch norm
    (re.compile(r"^stage([1-4])\."), r"layer\1."),  # seed 004 names the stages stage1..stage4
    # torchvision's pre-0.4 DenseNet weights: norm.1 -> norm1 inside dense layers
    (re.compile(r"(\.denselayer\d+\.(?:norm|relu|conv))\.([12])\."), r"\1\2."),
)
# Seed layouts whose key names reveal a block that computes something else than ours with the same tensors:
# (pattern on the file's keys, builder options that reproduce it, what it is in words).
SEED_FUNCTIONS: tuple[tuple[re.Pattern[str], dict[str, Any], str], ...] = (
    (re.compile(r"^stage[1-4]\."), {"stride_in_1x1": True, "relu_before_add": True},
     "seed 004's bottleneck (stride on the first 1x1 convolution, ReLU before the addition)"),
)
_SE_BIAS = re.compile(r"\.se\.fc[12]\.bias$")
_SE_WEIGHT = re.compile(r"\.se\.fc[12]\.weight$")
_INDEXED = re.compile(r"^([A-Za-z_]*?)(\d+)$")


class RecognitionError(CheckpointError):
    """The state dict fits no registered architecture; the message names the closest one and what differs."""


@dataclass(frozen=True)
class Recognition:
    """What a state dict was recognised as.

    Attributes:
        arch: the registered name (``se_resnet50``).
        model_args: builder options that differ from the defaults (``{"small_inputs": True}``).
        num_classes: outputs of the classification head.
        se_reduction: the SE reduction ratio, or None for a model without SE blocks.
        se_bias: whether the file's SE layers had biases (None without SE blocks).
        state: the weights under our names, exactly the model's keys, shapes and dtypes.
    """

    arch: str
    model_args: Mapping[str, Any]
    num_classes: int
    se_reduction: int | None
    se_bias: bool | None
    display_name: str
    state: Mapping[str, Tensor] = field(repr=False, compare=False)

    def describe(self) -> str:
        """E.g. ``SE-ResNet-50, SE reduction 16, SE layers without biases, 2 classes``."""
        parts = [self.display_name]
        parts += [_option_words(key, value) for key, value in self.model_args.items() if key != "se_reduction"]
        if self.se_reduction is not None:
            parts.append(f"SE reduction {self.se_reduction}")
            if self.se_bias is False:
                parts.append("SE layers without biases")
        parts.append(f"{self.num_classes} classes")
        return ", ".join(parts)

    def build(self) -> nn.Module:
        """The recognised model, in eval mode, holding the weights."""
        model = create_model(self.arch, num_classes=self.num_classes, **dict(self.model_args))
        model.load_state_dict(dict(self.state), strict=True)
        return model.eval()


def _option_words(key: str, value: Any) -> str:
    words = key.replace("_", " ")
    return words if value is True else f"{words} {value}"


def display_name(arch: str) -> str:
    """The human name of a registered architecture (``SE-ResNet-50``)."""
    from . import registry

    return registry.display_name(arch)


# --- key names -----------------------------------------------------------------------------------------------


def rename_key(key: str) -> str:
    """Our name for a seed state-dict key (keys that already follow our names are returned unchanged)."""
    for pattern, replacement in SEED_RENAMES:
        renamed, count = pattern.subn(replacement, key, count=1)
        if count:
            return renamed
    return key


def to_our_names(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The state dict under our key names; SE weights stored as 1x1 convolutions become linear weights."""
    renamed: dict[str, Tensor] = {}
    for key, tensor in state.items():
        ours = rename_key(key)
        if ours in renamed:
            raise RecognitionError(f"two tensors of the file map to {ours!r} (one is {key!r}), so the file mixes "
                                   "two layouts; save the state dict of one model")
        if _SE_WEIGHT.search(ours) and tensor.dim() == 4 and tuple(tensor.shape[2:]) == (1, 1):
            tensor = tensor.flatten(1)  # timm / torchvision SE: Conv2d 1x1 == Linear
        renamed[ours] = tensor
    return renamed


def _fillable(key: str, present: Mapping[str, Any] | set[str]) -> bool:
    """Whether a missing ``key`` has a function-preserving default, given the keys ``present``."""
    if _SE_BIAS.search(key):
        return key.removesuffix("bias") + "weight" in present  # a Linear without bias adds zero
    if key.endswith(".num_batches_tracked"):
        return key.removesuffix("num_batches_tracked") + "running_mean" in present  # read only if momentum=None
    return False


# --- signatures of registered models ----------------------------------------------------------------------------

Shape = tuple[int, ...]
_INIT_FUNCTIONS = ("kaiming_normal_", "kaiming_uniform_", "normal_", "uniform_", "ones_", "zeros_", "constant_",
                   "trunc_normal_", "xavier_uniform_", "xavier_normal_", "orthogonal_")


@contextmanager
def _no_init() -> Iterator[None]:
    """Skip weight initialisation while building signatures: values are never read, and initialising on the
    meta device costs half the build time."""
    saved = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS if hasattr(nn.init, name)}
    try:
        for name in saved:
            setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for name, function in saved.items():
            setattr(nn.init, name, function)


@functools.lru_cache(maxsize=256)
def _signature(arch: str, options: tuple[tuple[str, Any], ...], num_classes: int) -> Mapping[str, tuple[Shape, Any]]:
    """Keys -> (shape, dtype) of ``create_model(arch, ...)``, built on the meta device without allocating."""
    with _no_init(), torch.device("meta"):
        model = create_model(arch, num_classes=num_classes, **dict(options))
    return {key: (tuple(t.shape), t.dtype) for key, t in model.state_dict().items()}


def _varying(arch: str, options: tuple[tuple[str, Any], ...], option: str, a: Any, b: Any) -> dict[str, int]:
    """Keys whose shape follows ``option`` (or ``num_classes``), with the dimension that changes."""
    def build(value: Any) -> Mapping[str, tuple[Shape, Any]]:
        if option == "num_classes":
            return _signature(arch, options, value)
        return _signature(arch, tuple(sorted({**dict(options), option: value}.items())), 7)
    first, second = build(a), build(b)
    found = {}
    for key, (shape, _) in first.items():
        other = second[key][0]
        if shape != other:
            found[key] = next(i for i, (x, y) in enumerate(zip(shape, other)) if x != y)
    return found


@dataclass(frozen=True)
class _Variant:
    arch: str
    options: tuple[tuple[str, Any], ...]  # structural switches that differ from the builder's defaults


def _variants(arch: str) -> list[_Variant]:
    """The builder's default configuration, then one per boolean switch that changes the keys or shapes."""
    defaults = builder_options(arch)
    base = _Variant(arch, ())
    found = [base]
    seen = {frozenset(_signature(arch, (), 7).items())}
    for name, default in defaults.items():
        if default is False:
            variant = _Variant(arch, ((name, True),))
            signature = frozenset(_signature(arch, variant.options, 7).items())
            if signature not in seen:
                seen.add(signature)
                found.append(variant)
    return found


# --- matching ---------------------------------------------------------------------------------------------------


@dataclass
class _Fit:
    variant: _Variant
    missing: list[str]
    unexpected: list[str]
    wrong_shapes: list[tuple[str, Shape, Shape]]
    num_classes: int | None = None
    se_reduction: int | None = None
    reference: Mapping[str, tuple[Shape, Any]] = field(default_factory=dict)

    @property
    def distance(self) -> float:
        """0 for a perfect fit; grows with the share of keys that do not match, then with wrong shapes."""
        matched = len(self.reference) - len(self.missing)
        union = matched + len(self.missing) + len(self.unexpected)
        return (1 - matched / max(union, 1)) * 1000 + len(self.wrong_shapes)


def _key_fit(variant: _Variant, state: Mapping[str, Tensor]) -> _Fit:
    expected = _signature(variant.arch, variant.options, 7)
    missing = [key for key in expected if key not in state and not _fillable(key, state)]
    unexpected = [key for key in state if key not in expected]
    return _Fit(variant, missing, unexpected, [], reference=expected)


def _shape_fit(fit: _Fit, state: Mapping[str, Tensor]) -> _Fit:
    """Read the head size and SE reduction from ``state``, rebuild the reference with them, compare shapes."""
    variant = fit.variant
    head = _varying(variant.arch, variant.options, "num_classes", 7, 11)
    present = [(key, dim) for key, dim in head.items() if key in state]
    num_classes = int(state[present[0][0]].shape[present[0][1]]) if present else 7
    options = dict(variant.options)
    options.update(_infer_sizes(variant, state, num_classes if present else 7))
    se_reduction = None
    if "se_reduction" in builder_options(variant.arch):
        default = builder_options(variant.arch)["se_reduction"]
        se_reduction = _infer_reduction(
            _varying(variant.arch, variant.options, "se_reduction", 4, 32), fit.reference, state, default)
        if se_reduction != default:
            options["se_reduction"] = se_reduction
    reference = _signature(variant.arch, tuple(sorted(options.items())), max(num_classes, 1))
    wrong = [(key, tuple(state[key].shape), shape) for key, (shape, _) in reference.items()
             if key in state and tuple(state[key].shape) != shape]
    return _Fit(_Variant(variant.arch, tuple(sorted(options.items()))), fit.missing, fit.unexpected, wrong,
                num_classes if present else None, se_reduction, reference)


def _infer_sizes(variant: _Variant, state: Mapping[str, Tensor], num_classes: int) -> dict[str, int]:
    """Integer size options (e.g. DenseNet's ``num_init_features``) read from the dimensions that follow them.

    Each candidate value is a dimension of a tensor whose shape follows the option; the one whose rebuilt shapes
    fit best wins, the default on a tie. ``se_reduction`` is not a size (see :func:`_infer_reduction`).
    """
    found: dict[str, int] = {}
    for name, default in builder_options(variant.arch).items():
        if name == "se_reduction" or isinstance(default, bool) or not isinstance(default, int):
            continue
        varying = _varying(variant.arch, variant.options, name, default, default * 2 + 1)
        values = {int(state[key].shape[dim]) for key, dim in varying.items() if key in state and state[key].dim() > dim}
        best, best_wrong = default, None
        for value in [default, *sorted(values - {default})[:4]]:
            if value < 1:
                continue
            options = tuple(sorted({**dict(variant.options), **found, name: value}.items()))
            reference = _signature(variant.arch, options, num_classes)
            wrong = sum(1 for key, (shape, _) in reference.items() if key in state and tuple(state[key].shape) != shape)
            if best_wrong is None or wrong < best_wrong:
                best, best_wrong = value, wrong
        if best != default:
            found[name] = best
    return found


def _infer_reduction(
    varying: Mapping[str, int], reference: Mapping[str, tuple[Shape, Any]], state: Mapping[str, Tensor], default: int
) -> int:
    """The SE reduction ``r`` for which every SE hidden size equals ``max(1, channels // r)``, as in the file.

    Prefers the builder's default, then powers of two, then the smallest ratio that fits; returns the default when
    none fits (the shape comparison then reports the difference).
    """
    low, high = 1, 1 << 20
    for key, dim in varying.items():
        shape = reference[key][0]
        if key not in state or len(shape) != 2 or state[key].dim() != 2:
            continue
        hidden = int(state[key].shape[dim])
        channels = int(state[key].shape[1 - dim])
        if hidden < 1:
            return default
        if hidden == 1:
            low = max(low, channels // 2 + 1)  # any r > channels / 2 gives max(1, 0 or 1) == 1
        else:
            low, high = max(low, channels // (hidden + 1) + 1), min(high, channels // hidden)
    if low > high:
        return default
    if low <= default <= high:
        return default
    powers = [1 << p for p in range(21) if low <= 1 << p <= high]
    return powers[0] if powers else low


def _candidates(state: Mapping[str, Tensor]) -> list[_Fit]:
    fits = []
    for arch in list_models():
        base = _key_fit(_Variant(arch, ()), state)
        fits.append(base)
        if len(base.missing) + len(base.unexpected) < max(len(state), 1) // 2:  # close: try its switches too
            fits += [_key_fit(variant, state) for variant in _variants(arch)[1:]]
    return fits


def _strip_common_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor] | None:
    """``model.conv1.weight`` -> ``conv1.weight`` when every key shares one leading component (Lightning's
    ``model.``, a wrapper's ``backbone.``...); None when there is no such prefix."""
    heads = {key.split(".", 1)[0] for key in state}
    if len(heads) != 1 or not all("." in key for key in state):
        return None
    return {key.split(".", 1)[1]: tensor for key, tensor in state.items()}


def recognize(state: Mapping[str, Tensor], *, source: str = "the file") -> Recognition:
    """Find the registered architecture (and options) whose keys and shapes fit ``state`` exactly.

    Args:
        state: a state dict with wrapper prefixes already removed (see ``state_files.extract_state_dict``).
        source: how to name the file in messages.
    Raises:
        RecognitionError: no architecture fits; the message names the closest and what differs.
    """
    implied = [(options, words) for pattern, options, words in SEED_FUNCTIONS if any(map(pattern.search, state))]
    ours = to_our_names(state)
    fits = _candidates(ours)
    if not any(not f.missing and not f.unexpected for f in fits):
        stripped = _strip_common_prefix(ours)
        if stripped is not None:
            retry = _candidates(to_our_names(stripped))
            if any(not f.missing and not f.unexpected for f in retry):
                ours, fits = to_our_names(stripped), retry
    exact = [_shape_fit(f, ours) for f in fits if not f.missing and not f.unexpected]
    for fit in sorted(exact, key=lambda f: len(f.variant.options)):
        if not fit.wrong_shapes and fit.num_classes is not None:
            for options, words in implied:
                if not set(options) <= set(builder_options(fit.variant.arch)):
                    raise RecognitionError(
                        f"{source} holds a {display_name(fit.variant.arch)} built with {words}, which computes "
                        "something else than the same network here, so it is not converted (its predictions would "
                        "change)")
                merged = {**dict(fit.variant.options), **options}
                fit.variant = _Variant(fit.variant.arch, tuple(sorted(merged.items())))
            return _recognition(fit, ours)
    backbone = [f for f in fits if not f.unexpected and f.missing and _is_head(f, f.missing)]
    if backbone:
        name = display_name(backbone[0].variant.arch)
        raise RecognitionError(
            f"{source} holds a {name} backbone without its classification head, so it cannot classify anything; "
            "convert the state dict of the trained classifier (backbone and head) instead")
    closest = min([*exact, *(f for f in fits if f.missing or f.unexpected)],
                  key=lambda f: (f.distance, len(f.variant.options)))
    raise RecognitionError(_explain_mismatch(source, closest, ours))


def _is_head(fit: _Fit, keys: list[str]) -> bool:
    head = _varying(fit.variant.arch, fit.variant.options, "num_classes", 7, 11)
    bias = {key.removesuffix("weight") + "bias" for key in head if key.endswith("weight")}
    return all(key in head or key in bias for key in keys)


def _recognition(fit: _Fit, state: Mapping[str, Tensor]) -> Recognition:
    assert fit.num_classes is not None
    converted: dict[str, Tensor] = {}
    se_bias: bool | None = None
    for key, (shape, dtype) in fit.reference.items():
        if key in state:
            tensor = state[key].detach()
            if _SE_BIAS.search(key):
                se_bias = True if se_bias is None else se_bias
        else:
            tensor = torch.zeros(shape, dtype=dtype)
            if _SE_BIAS.search(key):
                se_bias = False
        if tensor.is_sparse or tensor.is_quantized or tensor.is_complex():
            raise RecognitionError(f"{key} is stored as a sparse, quantized or complex tensor; save the float model's "
                                   "state dict")
        converted[key] = tensor.to(dtype=dtype).contiguous()
    bad = [key for key, tensor in converted.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if bad:
        raise RecognitionError(f"{len(bad)} tensors of the file hold NaN or infinite values (for example {bad[0]}), "
                               "so training diverged or the file is damaged; use an earlier checkpoint")
    arch, options = fit.variant.arch, dict(fit.variant.options)
    return Recognition(arch, options, fit.num_classes, fit.se_reduction, se_bias if fit.se_reduction else None,
                       display_name(arch), converted)


# --- explaining a mismatch --------------------------------------------------------------------------------------


def repeat_counts(keys: Iterator[str] | list[str] | set[str]) -> dict[str, int]:
    """How many numbered children each numbered container has: ``{"layer3": 6, "features.denseblock2": 12}``."""
    children: dict[str, set[str]] = {}
    for key in keys:
        parts = key.split(".")
        for i in range(1, len(parts) - 1):
            parent = parts[:i]
            if _INDEXED.match(parent[-1]) and _INDEXED.match(parts[i]):
                children.setdefault(".".join(parent), set()).add(parts[i])
    return {parent: len(names) for parent, names in children.items()
            if len({_INDEXED.match(name).group(1) for name in names if _INDEXED.match(name)}) == 1}  # type: ignore[union-attr]


def _explain_mismatch(source: str, fit: _Fit, state: Mapping[str, Tensor]) -> str:
    name = f"{display_name(fit.variant.arch)} ({fit.variant.arch}"
    name += "".join(f", {_option_words(k, v)}" for k, v in fit.variant.options if k != "se_reduction") + ")"
    differences: list[str] = []
    ours, theirs = repeat_counts(set(fit.reference)), repeat_counts(set(state))
    for parent in sorted(set(ours) & set(theirs)):
        if ours[parent] != theirs[parent]:
            differences.append(
                f"{parent} has {theirs[parent]} blocks in the file but {ours[parent]} in {fit.variant.arch}")
    for key, found, wanted in fit.wrong_shapes[:2]:
        differences.append(f"{key} is {list(found)} in the file but {list(wanted)} in {fit.variant.arch}")
    if not differences or len(differences) < 3:
        if fit.missing:
            differences.append(f"{len(fit.missing)} tensors are missing (such as {fit.missing[0]})")
        if fit.unexpected:
            differences.append(f"{len(fit.unexpected)} tensors are not in {fit.variant.arch} (such as "
                               f"{fit.unexpected[0]})")
    return f"{source} fits no architecture known here; the closest is {name}, but {'; '.join(differences[:4])}"
