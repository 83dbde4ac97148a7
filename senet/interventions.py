"""What the SE gates do for one photo: the prediction with chosen SE blocks bypassed or channels muted.

Bypassing a block forces its gate to 1 (every channel passes unchanged: the block acts as if SE were not
there); muting a channel forces its gate to 0 (the channel is switched off after the block). The baseline and
the intervened prediction come from one batched forward pass of two copies of the photo: hooks change only the
second copy, and batch norm in eval mode treats each sample on its own, so the first copy is exactly the plain
prediction. No backward pass.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from PIL import Image
from torch import nn

from .calibration import calibrated_probabilities
from .card import ModelCard
from .explain import _preprocess, _to_model  # the exact preprocessing of analyze()
from .hooks import HookSet, model_lock, preserved_state
from .layers import SEBlockInfo, se_blocks


class InterventionError(ValueError):
    """An intervention names an SE block or a channel the model does not have."""


@dataclass(frozen=True)
class Intervention:
    """Class probabilities before and after an intervention on the SE gates of one photo."""

    probabilities: dict[str, float]  # label -> probability with the intervention, card label order
    baseline: dict[str, float]  # label -> probability of the unchanged model (as ``analyze`` reports)
    bypass: tuple[str, ...]  # SE blocks whose gate was forced to 1
    mute: dict[str, tuple[int, ...]] = field(default_factory=dict)  # SE block -> channels whose gate was 0

    @property
    def predicted(self) -> str:
        """The most probable class with the intervention."""
        return max(self.probabilities, key=self.probabilities.__getitem__)

    @property
    def baseline_predicted(self) -> str:
        """The most probable class without it."""
        return max(self.baseline, key=self.baseline.__getitem__)

    def changes(self) -> dict[str, float]:
        """label -> probability after minus before."""
        return {label: self.probabilities[label] - self.baseline[label] for label in self.probabilities}


def intervene(
    model: nn.Module,
    card: ModelCard,
    image: Image.Image,
    *,
    bypass: Iterable[str] = (),
    mute: Mapping[str, Sequence[int]] | None = None,
) -> Intervention:
    """The class probabilities of ``image`` with SE blocks bypassed and/or SE channels muted.

    Args:
        model: an SE-ResNet / SE-DenseNet; left exactly as found (flags, requires_grad, .grad, no hooks).
        card: its model card (labels and preprocessing, the same as ``analyze``).
        image: a PIL image in any mode.
        bypass: SE block names (``SE_5_2``) or module paths whose gate is forced to 1.
        mute: SE block name -> channel indices whose gate is forced to 0.

    Returns:
        The probabilities with the intervention and the baseline ones, from one forward pass.

    Raises:
        InterventionError: an unknown block, a channel out of range, or nothing to do.
    """
    blocks = {info.name: info for info in se_blocks(model)}
    paths = {info.path: info for info in blocks.values()}
    bypassed = _resolve(blocks, paths, bypass)
    muted: dict[str, tuple[int, ...]] = {}
    for name, channels in (mute or {}).items():
        (info,) = _resolve(blocks, paths, [name])
        muted[info.name] = _channels(info, channels)
    if not bypassed and not muted:
        raise InterventionError("nothing to change: name SE blocks to bypass or channels to mute")
    with torch.inference_mode(False), model_lock(model), preserved_state(model):
        batch, _ = _preprocess(card, image)
        batch = _to_model(batch.repeat(2, 1, 1, 1), model, next(model.parameters()))  # row 0 baseline, 1 edited
        bypassed_names = {info.name for info in bypassed}
        edits = {info.name: (info, info.name in bypassed_names, muted.get(info.name, ()))
                 for info in [*bypassed, *(blocks[name] for name in muted)]}
        with _GateEdits(list(edits.values())), torch.no_grad():
            logits = model(batch)
    if logits.shape != (2, card.num_classes):
        raise ValueError(f"the model gives {tuple(logits.shape[1:])} logits for {card.num_classes} card labels")
    probabilities = calibrated_probabilities(logits, card).cpu()
    labels = list(card.labels)
    return Intervention(
        probabilities={label: float(p) for label, p in zip(labels, probabilities[1])},
        baseline={label: float(p) for label, p in zip(labels, probabilities[0])},
        bypass=tuple(info.name for info in bypassed),
        mute=muted,
    )


def stage_blocks(model: nn.Module, stage: int) -> list[str]:
    """Names of every SE block of one stage (2-5, as in the SE paper), in network order."""
    return [info.name for info in se_blocks(model) if info.stage == stage]


def _resolve(blocks: dict[str, SEBlockInfo], paths: dict[str, SEBlockInfo], names: Iterable[str]) -> list[SEBlockInfo]:
    if isinstance(names, str):  # "SE_5_2" is one block, not six one-letter names
        names = [names]
    found: list[SEBlockInfo] = []
    for name in names:
        info = blocks.get(str(name)) or paths.get(str(name))
        if info is None:
            known = ", ".join(blocks) if len(blocks) <= 12 else f"{', '.join(list(blocks)[:6])}, ... ({len(blocks)})"
            raise InterventionError(f"this model has no SE block {str(name)[:40]!r}; its blocks are {known}")
        if info not in found:
            found.append(info)
    return found


def _channels(info: SEBlockInfo, channels: Sequence[int] | int) -> tuple[int, ...]:
    values = [channels] if isinstance(channels, int) else list(channels)
    result: list[int] = []
    for value in values:
        try:
            if isinstance(value, bool):
                raise TypeError
            index = operator.index(value)
        except TypeError:
            raise InterventionError(f"channels of {info.name} must be whole numbers, got {value!r}") from None
        if not 0 <= index < info.channels:
            raise InterventionError(f"{info.name} has channels 0 to {info.channels - 1}, got {index}")
        if index not in result:
            result.append(index)
    if not result:
        raise InterventionError(f"no channels given to mute in {info.name}")
    return tuple(sorted(result))


class _GateEdits(HookSet):
    """Replaces the output of chosen SE modules for the second sample of the batch.

    An SE module returns ``x * gate``; forcing the gate to 1 returns ``x`` itself, forcing a channel's gate to
    0 zeroes that channel. Editing the module's output (not the gate's) keeps these exact: no sigmoid saturates
    to exactly 1.
    """

    def __init__(self, edits: list[tuple[SEBlockInfo, bool, tuple[int, ...]]]) -> None:
        super().__init__()
        self.edits = edits

    def _register(self) -> None:
        for info, bypassed, channels in self.edits:
            self._handles.append(info.module.register_forward_hook(partial(self._edit, bypassed, channels)))

    @staticmethod
    def _edit(bypassed: bool, channels: tuple[int, ...], module: nn.Module, inputs: Any,
              output: torch.Tensor) -> torch.Tensor:
        edited = output.clone()
        if bypassed:
            edited[1] = inputs[0][1]
        if channels:
            edited[1, list(channels)] = 0
        return edited
