"""Import a model trained elsewhere (e.g. with the seed posts' code) into a safe, self-describing checkpoint.

    python -m senet.convert model.pth --labels cat dog            # -> checkpoints/model.safetensors + .json
    python -m senet.convert model.pth                             # only say what the file holds

The architecture is recognised from the state dict's keys and shapes (depth, block type, DenseNet layout, SE
reduction and biases, number of classes); ``--arch`` only checks it. The file is read with
``torch.load(weights_only=True)`` (or safetensors): plain tensors only, no code runs. Checkpoints saved as
``{"state_dict": ..., "epoch": ...}`` or ``{"model": ...}`` and ``module.`` / ``_orig_mod.`` prefixes are handled.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from .card import IMAGENET_MEAN, IMAGENET_STD, ModelCard
from .checkpoint import CheckpointError, save_checkpoint, weights_path
from .recognize import Recognition, RecognitionError, recognize
from .state_files import WeightsFileError, read_state_dict

CONVERTER = "python -m senet.convert"
CHECKPOINTS_ENV = "SENET_CHECKPOINTS"
LIMITATIONS = ("Converted from a state dict; training data and metrics unknown. Nothing is known here about what "
               "it was trained on or how well it works: treat its answers as untested.")
MAX_LABELS = 10_000
MAX_LABEL_CHARS = 200


class ConversionError(CheckpointError):
    """A state dict cannot be converted; the message says what is wrong and what to do."""


def default_output_dir() -> Path:
    """``$SENET_CHECKPOINTS``, else ``checkpoints/`` in the current directory (where ``python app.py`` looks)."""
    return Path(os.environ.get(CHECKPOINTS_ENV) or "checkpoints")


def read_labels_file(path: str | Path) -> list[str]:
    """Class names from a file: a JSON list, or one name per line (blank lines and ``#`` comments skipped)."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        raise ConversionError(f"the labels file {source.name} cannot be read as UTF-8 text") from None
    if text.lstrip().startswith("["):
        try:
            labels = json.loads(text)
        except json.JSONDecodeError:
            raise ConversionError(f"the labels file {source.name} starts like a JSON list but is not valid "
                                  "JSON") from None
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ConversionError(f"the labels file {source.name} must hold a JSON list of strings")
        return [label.strip() for label in labels]
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def check_labels(labels: Sequence[str], recognition: Recognition) -> tuple[str, ...]:
    """The labels as a tuple, or a :class:`ConversionError` saying how many the model needs."""
    labels = tuple(str(label).strip() for label in labels)
    need = recognition.num_classes
    if not labels:
        raise ConversionError(f"the file holds {recognition.describe()}: give its {need} class names with --labels, "
                              "in the order used in training (ImageFolder sorts the folder names alphabetically)")
    if len(labels) != need:
        raise ConversionError(f"{len(labels)} labels were given but the model has {need} outputs "
                              f"({recognition.describe()}); give exactly {need} class names, in training order")
    if len(labels) > MAX_LABELS or any(not label or len(label) > MAX_LABEL_CHARS for label in labels):
        raise ConversionError(f"every label must be 1 to {MAX_LABEL_CHARS} characters long")
    if len(set(labels)) != len(labels):
        duplicate = next(label for label in labels if labels.count(label) > 1)
        raise ConversionError(f"the label {duplicate!r} is given twice; class names must be unique")
    return labels


def recognize_file(source: str | Path, *, arch: str | None = None) -> Recognition:
    """Read ``source`` safely and recognise what it holds.

    Args:
        arch: when given, the file must be this registered architecture.
    Raises:
        ConversionError: the file is not a state dict, fits no architecture, or is not ``arch``.
    """
    path = Path(source)
    try:
        recognition = recognize(read_state_dict(path), source=path.name)
    except (WeightsFileError, RecognitionError) as error:
        raise ConversionError(str(error)) from None
    if arch is not None and recognition.arch != arch:
        raise ConversionError(f"--arch {arch} was given, but {path.name} holds {recognition.describe()} "
                              f"({recognition.arch}); leave out --arch, or give the file of a {arch}")
    return recognition


def convert_state_dict(
    state: Mapping[str, Tensor], arch: str, *, num_classes: int, model_args: Mapping[str, Any] | None = None
) -> dict[str, Tensor]:
    """``state`` under our names with exactly ``create_model(arch, num_classes=..., **model_args)``'s keys, shapes
    and dtypes (SE biases and batch-norm counters the file lacks filled with zeros), ready for a strict load.

    Raises:
        ConversionError: the state dict is not that architecture, head size or configuration.
    """
    try:
        recognition = recognize(state)
    except RecognitionError as error:
        raise ConversionError(str(error)) from None
    wanted = {key: value for key, value in dict(model_args or {}).items() if key != "memory_efficient"}
    found = (recognition.arch, recognition.num_classes, dict(recognition.model_args))
    if found != (arch, num_classes, wanted):
        raise ConversionError(f"the state dict holds {recognition.describe()} ({recognition.arch} "
                              f"{dict(recognition.model_args)}), not {arch} {wanted} with {num_classes} classes")
    return dict(recognition.state)


def make_card(recognition: Recognition, labels: Sequence[str], **card_fields: Any) -> ModelCard:
    """The card of a converted model: what was recognised, and honestly, that nothing else is known."""
    training = {"converter": CONVERTER, "recognised": recognition.describe(), **card_fields.pop("training", {})}
    fields = {"limitations": LIMITATIONS, **card_fields}
    try:
        return ModelCard(arch=recognition.arch, labels=check_labels(labels, recognition),
                         model_args=dict(recognition.model_args), training=training, **fields)
    except (TypeError, ValueError) as error:
        raise ConversionError(f"the model card cannot be made: {error}") from None


def convert_file(
    source: str | Path, out: str | Path | None = None, *, labels: Sequence[str], arch: str | None = None,
    half: bool = False, overwrite: bool = False, **card_fields: Any,
) -> tuple[Path, Recognition]:
    """Convert the weights file ``source`` into our checkpoint ``out`` (.safetensors + .json card).

    Args:
        out: the checkpoint path without suffix; default ``checkpoints/<source stem>``.
        labels: class names in the head's output order.
        arch: optional; the file must be this architecture.
        overwrite: replace an existing checkpoint at ``out``.
        card_fields: further :class:`ModelCard` fields (title, description, license, input_size, mean, std, ...).
    Returns:
        The weights path and what was recognised.
    """
    source = Path(source)
    target = Path(out) if out is not None else default_output_dir() / source.stem
    if weights_path(target).exists() and not overwrite:
        raise ConversionError(f"{weights_path(target)} already exists; pass --force to replace it, or --out NAME")
    recognition = recognize_file(source, arch=arch)
    provenance = {"converted_from": source.name, "sha256": _sha256(source)}
    card = make_card(recognition, labels, training=provenance, **card_fields)
    return save_checkpoint(recognition.build(), card, target, half=half), recognition


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=CONVERTER, description=(__doc__ or "").split("\n\n")[0],
        epilog="Without --labels it only prints what the file holds. The architecture is recognised from the file.")
    parser.add_argument("state_dict", type=Path, help="the .pth / .pt file written by torch.save, or a .safetensors")
    names = parser.add_mutually_exclusive_group()
    names.add_argument("--labels", nargs="+", metavar="LABEL", help="class names in the head's output order")
    names.add_argument("--labels-file", type=Path, metavar="FILE",
                       help="class names, one per line or as a JSON list")
    parser.add_argument("--arch", metavar="ARCH", help="check that the file is this architecture (optional)")
    parser.add_argument("--out", type=Path, help="checkpoint path without suffix (default: checkpoints/<file stem>)")
    parser.add_argument("--force", action="store_true", help="replace an existing checkpoint at --out")
    parser.add_argument("--title", default="", help="a human name for the model, shown in the app's picker")
    parser.add_argument("--description", default="", help="what the model does, for its card")
    parser.add_argument("--license", default="unspecified", help="license of the weights")
    parser.add_argument("--img-size", "--input-size", dest="img_size", type=int, nargs="+", metavar="PX",
                        default=[224], help="input size the model was trained at: SIDE or HEIGHT WIDTH (default 224)")
    parser.add_argument("--mean", type=float, nargs=3, default=list(IMAGENET_MEAN),
                        help="normalisation mean (default: ImageNet's, as in the seeds)")
    parser.add_argument("--std", type=float, nargs=3, default=list(IMAGENET_STD),
                        help="normalisation std (default: ImageNet's, as in the seeds)")
    parser.add_argument("--half", action="store_true", help="store float16 weights (half the size)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 done, 1 refused, 2 usage)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if len(args.img_size) not in (1, 2):
        parser.error("--img-size takes SIDE or HEIGHT WIDTH")
    if any(value <= 0 for value in args.std):
        parser.error("--std values must be positive")
    height, width = args.img_size * 2 if len(args.img_size) == 1 else args.img_size
    try:
        labels = read_labels_file(args.labels_file) if args.labels_file else (args.labels or [])
        if not labels:
            recognition = recognize_file(args.state_dict, arch=args.arch)
            print(f"{args.state_dict.name} holds {recognition.describe()} ({recognition.arch}). To convert it, "
                  f"give its {recognition.num_classes} class names: --labels NAME ... (in training order)")
            return 0
        target, recognition = convert_file(
            args.state_dict, args.out, labels=labels, arch=args.arch, half=args.half, overwrite=args.force,
            title=args.title, description=args.description, license=args.license, input_size=(height, width),
            mean=tuple(args.mean), std=tuple(args.std),
        )
    except (CheckpointError, OSError) as error:
        message = str(error) if isinstance(error, CheckpointError) else f"cannot write the checkpoint ({error})"
        print(f"senet.convert: error: {message}", file=sys.stderr)
        return 1
    print(f"found {recognition.describe()}")
    print(f"wrote {target} and {target.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
