"""Safe checkpoints: weights in safetensors plus the model card as JSON. Nothing is ever unpickled."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .card import ModelCard
from .card_schema import MAX_CARD_BYTES, MAX_DEPTH, json_depth
from .registry import create_model, list_models

WEIGHTS_SUFFIX = ".safetensors"
CARD_SUFFIX = ".json"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be loaded; the message says what is wrong and what to do."""


def card_path(path: str | Path) -> Path:
    """The JSON card that sits next to a checkpoint's weights."""
    return Path(path).with_suffix(CARD_SUFFIX)


def weights_path(path: str | Path) -> Path:
    return Path(path).with_suffix(WEIGHTS_SUFFIX)


def save_checkpoint(model: nn.Module, card: ModelCard, path: str | Path, *, half: bool = False) -> Path:
    """Write ``model``'s weights to ``<path>.safetensors`` and ``card`` to ``<path>.json``.

    Args:
        half: store floating-point tensors as float16 (half the size); loading casts back to float32.
    Returns:
        The weights path.
    """
    target = weights_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    state = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu").contiguous()
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        state[key] = tensor
    num_params = sum(p.numel() for p in model.parameters())
    card = card.replace(num_params=num_params)
    save_file(state, str(target), metadata={"format": "pt", "arch": card.arch})
    target.chmod(0o644)  # safetensors writes 0600; a server running as another user must be able to read it
    card_path(target).write_text(card.to_json() + "\n", encoding="utf-8")
    return target


def read_card(path: str | Path) -> ModelCard:
    """Read and validate the JSON card of a checkpoint (weights are not touched)."""
    source = card_path(path)
    if not source.is_file():
        raise CheckpointError(f"model card {source} not found: a checkpoint is a .safetensors file with a .json card "
                              "beside it, as written by senet.save_checkpoint")
    try:
        with source.open("rb") as handle:
            raw = handle.read(MAX_CARD_BYTES + 1)
    except OSError as error:  # unreadable, a symlink loop, ...
        raise CheckpointError(f"model card {source} cannot be read ({error.strerror or error})") from None
    if len(raw) > MAX_CARD_BYTES:
        raise CheckpointError(f"model card {source} is too large (over {MAX_CARD_BYTES // 2**20} MB)")
    try:
        text = raw.decode("utf-8")
        if json_depth(text) > MAX_DEPTH:  # json.loads recurses once per level: refuse deep nesting unparsed
            raise CheckpointError(f"model card {source} is nested too deeply (more than {MAX_DEPTH} levels)")
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise CheckpointError(f"model card {source} is not valid JSON ({str(error)[:200]}); restore it from git") \
            from None
    if not isinstance(data, dict):
        raise CheckpointError(f"model card {source} must hold a JSON object")
    try:
        card = ModelCard.from_dict(data)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"model card {source} is invalid: {error}") from None
    if card.arch not in list_models():
        raise CheckpointError(f"model card {source} names unknown architecture {card.arch!r}; "
                              f"known: {', '.join(list_models())}")
    return card


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"weights file {path} not found")
    with path.open("rb") as handle:
        head = handle.read(8)
    if head[:2] == b"PK" or head[:1] == b"\x80":
        raise CheckpointError(f"{path} is a pickle / torch.save file, which is never loaded here (it can run code). "
                              "Convert it with: python -m senet.convert FILE.pth --arch ARCH --labels A B ...")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is corrupted or not a safetensors file ({error}); "
                              "re-download or re-export it") from None


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelCard]:
    """Rebuild the model described by the card at ``path`` and load its weights strictly.

    Returns:
        The model in eval mode, float32, on ``device``, and its card.
    Raises:
        CheckpointError: missing or corrupted files, unknown architecture, label count that does not match
            the head, missing / unexpected keys or mismatched shapes.
    """
    card = read_card(path)
    state = _read_weights(weights_path(path))
    try:
        model = create_model(card.arch, num_classes=card.num_classes, **dict(card.model_args))
    except TypeError as error:
        raise CheckpointError(f"model_args {dict(card.model_args)} do not fit {card.arch}: {error}") from None
    _check_state(model, state, card, weights_path(path))
    expected = model.state_dict()
    state = {key: tensor.to(expected[key].dtype) for key, tensor in state.items()}
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), card


def _check_state(model: nn.Module, state: dict[str, torch.Tensor], card: ModelCard, path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match {card.arch}: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}. Is the card's arch right? "
            "Seed-code state dicts must go through python -m senet.convert first.")
    head = [key for key in expected if key.endswith(("fc.weight", "classifier.weight")) and key.count(".") == 1]
    for key in head:
        if state[key].shape[0] != card.num_classes:
            raise CheckpointError(f"{path}: the card lists {card.num_classes} labels but the head {key} has "
                                  f"{state[key].shape[0]} outputs; fix the card's labels")
    wrong = [f"{key}: file {tuple(state[key].shape)} vs model {tuple(expected[key].shape)}"
             for key in expected if state[key].shape != expected[key].shape]
    if wrong:
        raise CheckpointError(f"{path}: {len(wrong)} tensors have the wrong shape for {card.arch} "
                              f"{dict(card.model_args)}: {wrong[:3]}")
