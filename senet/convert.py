"""Import a model trained with the seed code into a safe, self-describing checkpoint.

    python -m senet.convert se_resnet50.pth --arch se_resnet50 --labels cat dog --out checkpoints/pets

The ``.pth`` file is read with ``torch.load(..., weights_only=True)``: plain tensors only, no code runs. Seed key
names are mapped onto ours (SE linears named ``fc1/fc2`` on the block, ``se.fc.0/2`` or ``SE_Block.fc.0/2``;
``features.norm_final``), SE layers trained without bias get zero biases (the same function), and missing
``num_batches_tracked`` counters are filled with zeros. The result is checked strictly against
``create_model(arch)``. Seed hyper-parameters must match our standard configurations (DenseNet growth rate,
block config and ``num_init_features``; SE reduction 16 unless ``--se-reduction`` says otherwise); only the
DenseNet small-input stem (the seed's ``small_inputs``) is a switch, ``--small-inputs``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import pickle
import re
import sys
from collections.abc import Container, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .card import IMAGENET_MEAN, IMAGENET_STD, ModelCard
from .checkpoint import CheckpointError, save_checkpoint
from .registry import create_model, list_models

# Where training scripts commonly nest the state dict inside a saved dict.
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")

# Seed key name -> ours, applied in order (the first match wins).
_RENAMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(layer\d+\.\d+)\.fc([12])\."), r"\1.se.fc\2."),  # seed 000: SE linears sit on the block
    (re.compile(r"\.(?:se|SE_Block)\.fc\.0\."), ".se.fc1."),  # seeds 002/003: nn.Sequential(Linear, ReLU,
    (re.compile(r"\.(?:se|SE_Block)\.fc\.2\."), ".se.fc2."),  # Linear, Sigmoid) named se or SE_Block
    (re.compile(r"^features\.norm_final\."), "features.norm5."),  # seed 002's final batch norm
)
_SE_BIAS = re.compile(r"\.se\.fc[12]\.bias$")
_HEAD_KEYS = ("fc.weight", "fc.bias", "classifier.weight", "classifier.bias")


class ConversionError(CheckpointError):
    """A seed state dict cannot be converted; the message says what is wrong and what to do."""


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Read a ``torch.save`` file safely (``weights_only=True``) and return the state dict it holds.

    Accepts a bare state dict or a dict holding one under ``state_dict`` / ``model`` / ``model_state_dict``;
    strips the ``module.`` prefix that ``nn.DataParallel`` adds.
    """
    source = Path(path)
    if not source.is_file():
        raise ConversionError(f"{source} not found")
    try:
        loaded = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(error))
        reason = detail.group(1).strip() if detail else str(error).strip().splitlines()[0]
        if "Unsupported operand" in reason or "invalid load key" in reason:
            raise ConversionError(f"{source} is not a torch.save file, or it is damaged ({reason})") from None
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", reason)
        what = f"a pickled {found.group(1)}" if found else reason
        raise ConversionError(
            f"{source} holds more than tensors ({what}), so it was not loaded: unpickling it could run code. If "
            "the seed code saved the whole model (torch.save(model, ...)), save its weights instead: "
            "torch.save(model.state_dict(), PATH), then convert that file") from None
    except (RuntimeError, EOFError, ValueError, OSError) as error:
        raise ConversionError(f"{source} is not a readable torch.save file ({error})") from None
    return extract_state_dict(loaded, source=str(source))


def extract_state_dict(loaded: object, *, source: str = "the file") -> dict[str, Tensor]:
    """The state dict inside what ``torch.load`` returned, with any ``module.`` prefix removed."""
    if isinstance(loaded, Mapping) and not _all_tensors(loaded):
        for key in _WRAPPER_KEYS:
            if isinstance(loaded.get(key), Mapping):
                loaded = loaded[key]
                break
    if not isinstance(loaded, Mapping) or not loaded or not _all_tensors(loaded):
        found = sorted(map(str, loaded))[:10] if isinstance(loaded, Mapping) else type(loaded).__name__
        raise ConversionError(f"{source} does not hold a state dict (name -> tensor), nor one under "
                              f"{list(_WRAPPER_KEYS)}; found {found}")
    return {str(key).removeprefix("module."): tensor for key, tensor in loaded.items()}


def _all_tensors(mapping: Mapping[Any, Any]) -> bool:
    return all(isinstance(value, Tensor) for value in mapping.values())


def rename_key(key: str) -> str:
    """Our name for a seed state-dict key (keys that already follow our names are returned unchanged)."""
    for pattern, replacement in _RENAMES:
        renamed, count = pattern.subn(replacement, key, count=1)
        if count:
            return renamed
    return key


def convert_state_dict(
    state: Mapping[str, Tensor], arch: str, *, num_classes: int, model_args: Mapping[str, Any] | None = None
) -> dict[str, Tensor]:
    """Map a seed state dict onto ``create_model(arch, num_classes=..., **model_args)``'s keys, strictly.

    Returns:
        A state dict with exactly the model's keys, shapes and dtypes, ready for ``load_state_dict(strict=True)``.
    Raises:
        ConversionError: unknown architecture, keys that do not map (wrong ``arch``?), or shapes that do not
            fit (label count vs head size, small-input stem, other hyper-parameters).
    """
    model_args = dict(model_args or {})
    expected = _reference_state(arch, num_classes, model_args)
    renamed: dict[str, Tensor] = {}
    for key, tensor in state.items():
        ours = rename_key(key.removeprefix("module."))
        if ours in renamed:
            raise ConversionError(f"two keys of the state dict map to {ours!r}; one of them is {key!r}")
        renamed[ours] = tensor
    seed_keys = set(renamed)
    _fill_defaults(renamed, expected)

    missing = [key for key in expected if key not in renamed]
    unexpected = [key for key in renamed if key not in expected]
    if missing or unexpected:
        raise ConversionError(
            f"the state dict does not fit {_describe(arch, model_args)}: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} keys that do not map {unexpected[:5]}. {_guess_hint(seed_keys)}")
    _check_shapes(renamed, expected, arch, num_classes, model_args)
    return {key: renamed[key].detach().to(dtype=ref.dtype).contiguous() for key, ref in expected.items()}


def _describe(arch: str, model_args: Mapping[str, Any]) -> str:
    return f"{arch} {dict(model_args)}" if model_args else arch


def _reference_state(arch: str, num_classes: int, model_args: Mapping[str, Any]) -> dict[str, Tensor]:
    """The target model's state dict on the meta device: keys, shapes and dtypes without allocating memory."""
    if arch not in list_models():
        raise ConversionError(f"unknown architecture {arch!r}; known: {', '.join(list_models())}")
    try:
        with torch.device("meta"):
            return create_model(arch, num_classes=num_classes, **model_args).state_dict()
    except TypeError as error:
        raise ConversionError(f"model arguments {dict(model_args)} do not fit {arch}: {error}") from None


def _fillable(key: str, present: Container[str]) -> bool:
    """Whether a missing ``key`` has a function-preserving default, given the keys ``present``."""
    if _SE_BIAS.search(key):
        return key.removesuffix("bias") + "weight" in present  # a Linear without bias adds zero
    if key.endswith(".num_batches_tracked"):
        return key.removesuffix("num_batches_tracked") + "running_mean" in present  # read only if momentum=None
    return False


def _fill_defaults(state: dict[str, Tensor], expected: Mapping[str, Tensor]) -> None:
    """Add what the seeds may lack: zero SE biases and zero BN batch counters."""
    for key, ref in expected.items():
        if key not in state and _fillable(key, state):
            state[key] = torch.zeros(ref.shape, dtype=ref.dtype)


@functools.cache
def _key_set(name: str, small_inputs: bool) -> frozenset[str] | None:
    """The state-dict keys of a registered model (None if it has no such variant)."""
    try:
        with torch.device("meta"):
            model = create_model(name, **({"small_inputs": True} if small_inputs else {}))
    except TypeError:
        return None  # ResNets have no small_inputs
    return frozenset(model.state_dict())


def _guess_hint(keys: set[str]) -> str:
    """Name the architectures whose keys match ``keys`` (up to fillable defaults), as a hint for the error."""
    matches = []
    for name in list_models():
        for small_inputs in (False, True):
            candidate = _key_set(name, small_inputs)
            if candidate is not None and keys <= candidate and all(_fillable(k, keys) for k in candidate - keys):
                matches.append(f"--arch {name}" + (" --small-inputs" if small_inputs else ""))
    if matches:
        return f"The keys fit {' or '.join(matches)}."
    return "Check --arch; the seed's layout must be one of the registered architectures."


def _check_shapes(
    state: Mapping[str, Tensor], expected: Mapping[str, Tensor], arch: str, num_classes: int,
    model_args: Mapping[str, Any],
) -> None:
    wrong = [key for key, ref in expected.items() if tuple(state[key].shape) != tuple(ref.shape)]
    if not wrong:
        return
    if all(key in _HEAD_KEYS for key in wrong):
        outputs = state[wrong[0]].shape[0]
        raise ConversionError(
            f"--labels gives {num_classes} labels but the seed model's head {wrong[0]} has {outputs} outputs: pass "
            f"its {outputs} class names, in the order used in training (ImageFolder sorts the folder names)")
    details = [f"{key}: file {tuple(state[key].shape)} vs {arch} {tuple(expected[key].shape)}" for key in wrong[:3]]
    hint = "Seed hyper-parameters must match the standard configuration of --arch."
    if "features.conv0.weight" in wrong:
        hint = ("The stem differs: pass --small-inputs for a seed DenseNet trained with small_inputs=True; "
                "num_init_features and growth_rate must match the standard configuration.")
    elif all(".se." in key for key in wrong):
        hint = "The SE layers differ: pass the seed's reduction ratio with --se-reduction."
    raise ConversionError(f"{len(wrong)} tensors have the wrong shape for {_describe(arch, model_args)}: "
                          f"{details}. {hint}")


def build_model(
    state: Mapping[str, Tensor], arch: str, *, num_classes: int, model_args: Mapping[str, Any] | None = None
) -> nn.Module:
    """Our model, in eval mode, holding a seed state dict (converted with :func:`convert_state_dict`)."""
    converted = convert_state_dict(state, arch, num_classes=num_classes, model_args=model_args)
    model = create_model(arch, num_classes=num_classes, **dict(model_args or {}))
    model.load_state_dict(converted, strict=True)
    return model.eval()


def convert_file(
    source: str | Path, out: str | Path, *, arch: str, labels: Sequence[str],
    model_args: Mapping[str, Any] | None = None, half: bool = False, **card_fields: Any,
) -> Path:
    """Convert the seed ``.pth`` file ``source`` into our checkpoint ``out`` (.safetensors + .json card).

    Args:
        card_fields: further :class:`ModelCard` fields (title, license, input_size, mean, std, description, ...).
    Returns:
        The weights path.
    """
    source = Path(source)
    model_args = dict(model_args or {})
    card = ModelCard(arch=arch, labels=tuple(labels), model_args=model_args, **card_fields)  # validates early
    model = build_model(load_state_dict_file(source), arch, num_classes=card.num_classes, model_args=model_args)
    training = {"converted_from": source.name, "sha256": _sha256(source), "converter": "python -m senet.convert"}
    return save_checkpoint(model, card.replace(training={**training, **card.training}), out, half=half)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m senet.convert", description=__doc__.split("\n\n")[0],
        epilog="Seed hyper-parameters other than --small-inputs and --se-reduction must match the standard "
               "configurations (torchvision's ResNet/DenseNet layouts, SE reduction 16).")
    parser.add_argument("state_dict", type=Path, help="the .pth file written by torch.save")
    parser.add_argument("--arch", required=True, choices=list_models(), metavar="ARCH",
                        help=f"one of: {', '.join(list_models())}")
    parser.add_argument("--labels", required=True, nargs="+", metavar="LABEL",
                        help="class names in the head's output order")
    parser.add_argument("--out", type=Path, help="checkpoint path without suffix (default: next to the input)")
    parser.add_argument("--title", default="", help="a human name for the model")
    parser.add_argument("--description", default="")
    parser.add_argument("--license", default="unspecified", help="license of the weights")
    parser.add_argument("--input-size", type=int, nargs="+", metavar="PX", default=[224],
                        help="input size the model was trained at: SIDE or HEIGHT WIDTH (default 224)")
    parser.add_argument("--mean", type=float, nargs=3, default=list(IMAGENET_MEAN), help="normalisation mean")
    parser.add_argument("--std", type=float, nargs=3, default=list(IMAGENET_STD), help="normalisation std")
    parser.add_argument("--small-inputs", action="store_true",
                        help="DenseNet trained with the seed's small_inputs=True (3x3 stem, no pooling)")
    parser.add_argument("--se-reduction", type=int, help="SE reduction ratio, if the seed did not use 16")
    parser.add_argument("--half", action="store_true", help="store float16 weights (half the size)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    if len(args.input_size) not in (1, 2):
        print("senet.convert: error: --input-size takes SIDE or HEIGHT WIDTH", file=sys.stderr)
        return 2
    model_args: dict[str, Any] = {}
    if args.small_inputs:
        model_args["small_inputs"] = True
    if args.se_reduction is not None:
        model_args["se_reduction"] = args.se_reduction
    out = args.out if args.out is not None else args.state_dict.with_suffix("")
    height, width = args.input_size * 2 if len(args.input_size) == 1 else args.input_size
    try:
        target = convert_file(
            args.state_dict, out, arch=args.arch, labels=args.labels, model_args=model_args, half=args.half,
            title=args.title, description=args.description, license=args.license, input_size=(height, width),
            mean=tuple(args.mean), std=tuple(args.std),
        )
    except (CheckpointError, ValueError) as error:
        print(f"senet.convert: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {target} and {target.with_suffix('.json')} ({args.arch}, {len(args.labels)} classes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
