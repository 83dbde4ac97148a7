"""Class reference profiles: the mean and std excitation of every SE block's channels, per class.

The SE paper (Fig. 6) plots these to show that early blocks excite channels alike for every class and late
blocks become class-specific. The result is plain JSON (stored in ``ModelCard.class_profiles``)::

    {"blocks": ["SE_2_1", ...], "channels": [64, ...],
     "classes": {label: {"count": n, "mean": [[...C] per block], "std": [[...C] per block]}}}

Classes without any image are left out. ``std`` is the population standard deviation (0 for one image).
This module must not import pytorch_grad_cam: it runs on training machines that lack it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from .card import ModelCard
from .hooks import ExcitationRecorder, model_lock, preserved_state
from .image_io import IMAGE_SUFFIXES

_DECIMALS = 4


def class_profiles(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    labels: Sequence[str],
    *,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Mean and std excitation per class and SE block over labelled batches.

    Args:
        model: a network with SE blocks, already on ``device``; its train/eval flags are restored afterwards.
        batches: ``(images, targets)`` pairs: normalised (B, 3, H, W) images and (B,) class indices.
        labels: class names; ``targets`` index into them.
        device: where the images are sent.

    Returns:
        The profiles dictionary described in the module docstring (floats rounded to 4 decimals).
    """
    labels = [str(label) for label in labels]
    num_classes = len(labels)
    with model_lock(model), preserved_state(model), ExcitationRecorder(model) as recorder, torch.no_grad():
        blocks = recorder.blocks
        if not blocks:
            raise ValueError("the model has no SE blocks: nothing to profile")
        # Float64 sums on the CPU: a few thousand images of values in (0, 1) stay exact enough for a std.
        sums = [torch.zeros(num_classes, info.channels, dtype=torch.float64) for info in blocks]
        squares = [torch.zeros(num_classes, info.channels, dtype=torch.float64) for info in blocks]
        counts = torch.zeros(num_classes, dtype=torch.int64)
        for images, targets in batches:
            targets = torch.as_tensor(targets).long().cpu().reshape(-1)
            if targets.numel() and (targets.min() < 0 or targets.max() >= num_classes):
                raise ValueError(f"class index out of range 0..{num_classes - 1}: {targets.tolist()}")
            recorder.values.clear()
            model(images.to(device))
            for i, gates in enumerate(recorder.ordered()):  # (B, C) each
                gates = gates.to("cpu", torch.float64)
                sums[i].index_add_(0, targets, gates)
                squares[i].index_add_(0, targets, gates * gates)
            counts += torch.bincount(targets, minlength=num_classes)

    classes: dict[str, Any] = {}
    for c, label in enumerate(labels):
        n = int(counts[c])
        if n == 0:
            continue
        means, stds = [], []
        for total, total_sq in zip(sums, squares):
            mean = total[c] / n
            var = (total_sq[c] / n - mean * mean).clamp_min(0)
            means.append(_rounded(mean))
            stds.append(_rounded(var.sqrt()))
        classes[label] = {"count": n, "mean": means, "std": stds}
    return {
        "blocks": [info.name for info in blocks],
        "channels": [info.channels for info in blocks],
        "classes": classes,
    }


def class_profiles_from_folder(
    model: nn.Module, card: ModelCard, folder: str | Path, *, batch_size: int = 16
) -> dict[str, Any]:
    """Class profiles for the images of ``folder/<label>/*`` (label folders named as ``card.labels``).

    Images are preprocessed with ``card.transforms()`` and sent to the model's device. Label folders that are
    missing give no entry; a folder that is not a card label is an error (probably the wrong card or folder).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    unknown = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in card.labels)
    if unknown:
        raise ValueError(f"folders {unknown} in {folder} are not labels of this card {list(card.labels)}")
    items = [
        (path, index)
        for index, label in enumerate(card.labels)
        if (folder / label).is_dir()
        for path in sorted((folder / label).iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not items:
        raise ValueError(f"no images found under {folder}/<label>/ for labels {list(card.labels)}")
    device = next(model.parameters()).device
    return class_profiles(model, image_batches(items, card, batch_size), card.labels, device=device)


def image_batches(
    items: list[tuple[Path, int]], card: ModelCard, batch_size: int
) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """``(images, class indices)`` batches of ``(path, index)`` items, preprocessed as at inference."""
    transform = card.transforms()
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        images = []
        for path, _ in chunk:
            with Image.open(path) as image:
                images.append(transform(image))
        yield torch.stack(images), torch.tensor([index for _, index in chunk])


def _rounded(values: torch.Tensor) -> list[float]:
    return [round(float(v), _DECIMALS) for v in values.tolist()]
