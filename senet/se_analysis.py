"""The SE paper's analysis of excitations (Hu et al., arXiv 1709.01507, "Role of Excitation", Figs. 6-7).

Data only (arrays and small dataclasses); the app draws them. Everything reads a card's ``class_profiles``
(see ``profiles.py``: per class and SE block, the mean and std gate value of every channel):

- ``paper_view``: the blocks the paper plots (the last SE block of each stage before downsampling plus every
  block of the last stage), on a fixed seeded subset of 50 channels, with each class's mean ± std, the mean over
  every profiled photo, and this photo's weights.
- ``class_specificity``: one number per SE block saying how much the class-average profiles differ there.
- ``nearest_class``: which class-average profile this photo's weights resemble most in a block (the takeaway).
- ``distinctive_channels``: the drill-down order, channels most different from a class average first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .layers import SE_BLOCK_NAME

PAPER_CHANNELS = 50  # the paper plots the first 50 channels of each block; we take a seeded random 50
PAPER_SEED = 0
SATURATED = 0.9  # a channel whose mean gate over every photo exceeds this is "saturated" (passes ~unchanged)


@dataclass(frozen=True)
class BlockProfiles:
    """One panel of the paper view: a block's channel subset, this photo and the class averages on it."""

    block: str
    channels: np.ndarray  # (n,) channel indices shown, ascending
    photo: np.ndarray | None  # (n,) this photo's gate values, when given
    means: dict[str, np.ndarray]  # label -> (n,) class-average gate values
    stds: dict[str, np.ndarray]  # label -> (n,) within-class standard deviation
    overall: np.ndarray | None  # (n,) mean over every profiled photo (classes weighted by their photo count)
    counts: dict[str, int]  # label -> photos behind its average


@dataclass(frozen=True)
class BlockSpecificity:
    """How class-specific one SE block's excitations are (see ``class_specificity``)."""

    block: str
    stage: int
    specificity: float  # mean over channels of the between-class std of the class-average gate values
    mean_gate: float  # mean gate value over every channel and photo
    saturated: float  # fraction of channels whose mean gate exceeds SATURATED


@dataclass(frozen=True)
class Takeaway:
    """Which class-average profile this photo's weights in one block resemble most."""

    block: str
    label: str  # the closest class
    r: float  # its Pearson correlation with this photo's weights
    correlations: dict[str, float]  # every profiled class -> r, card label order


def has_profiles(profiles: Mapping[str, Any] | None) -> bool:
    """Whether ``profiles`` (a card's ``class_profiles``) hold at least one class."""
    return bool(profiles and profiles.get("blocks") and profiles.get("classes"))


def test_part_profiles(profiles: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The class profiles of the fold's Test photos, in the shape of a card's ``class_profiles`` (so every
    function here takes them), or None when the card has none.

    They live in ``class_profiles["test"]`` (``{"split": ..., "classes": {...}}``, same blocks and channels as
    the Train+Valid profiles; added by ``python -m senet.add_profiles --data DATASET``). The paper view uses
    them, as the SE paper averages over held-out photos; the takeaway, the specificity chart and the drill-down
    keep the Train+Valid profiles (several times more photos per class).
    """
    test = (profiles or {}).get("test")
    if not isinstance(test, Mapping) or not test.get("classes") or not has_profiles(profiles):
        return None
    assert profiles is not None  # has_profiles checked it
    return {"blocks": profiles["blocks"], "channels": profiles.get("channels") or [], "classes": test["classes"],
            "split": test.get("split", "")}


def paper_blocks(names: Sequence[str]) -> list[str]:
    """The blocks of the paper's Fig. 6: the last SE block of every stage but the last, then every block of the
    last stage (SE-ResNet-50: SE_2_3, SE_3_4, SE_4_6, SE_5_1, SE_5_2, SE_5_3). Other names are ignored."""
    stages: dict[int, list[tuple[int, str]]] = {}
    for name in names:
        match = SE_BLOCK_NAME.match(name)
        if match:
            stages.setdefault(int(match.group(1)), []).append((int(match.group(2)), name))
    if not stages:
        return list(names[-1:])
    last = max(stages)
    chosen = [max(stages[stage])[1] for stage in sorted(stages) if stage != last]
    return chosen + [name for _, name in sorted(stages[last])]


def last_block_per_stage(names: Sequence[str]) -> list[str]:
    """The last SE block of each stage (``SE_2_2, SE_3_2, ...`` for SE-ResNet-18).

    Names that do not follow ``SE_<stage>_<block>`` are ignored; with none, the last name is returned.
    """
    last: dict[int, tuple[int, str]] = {}
    for name in names:
        match = SE_BLOCK_NAME.match(name)
        if match:
            stage, index = int(match.group(1)), int(match.group(2))
            if stage not in last or index > last[stage][0]:
                last[stage] = (index, name)
    if not last:
        return list(names[-1:])
    return [last[stage][1] for stage in sorted(last)]


def channel_subset(channels: int, count: int | None = PAPER_CHANNELS, *, seed: int = PAPER_SEED) -> np.ndarray:
    """A fixed random subset of ``count`` channel indices (ascending); every channel when ``count`` is None or
    not smaller than ``channels``. The same block always gets the same subset."""
    if count is None or count >= channels:
        return np.arange(channels)
    rng = np.random.default_rng([seed, channels])
    return np.sort(rng.choice(channels, size=count, replace=False))


def block_profiles(
    profiles: Mapping[str, Any] | None,
    block: str,
    channels: int,
    *,
    photo: np.ndarray | None = None,
    subset: np.ndarray | None = None,
) -> BlockProfiles:
    """The class averages (mean, std, count) and the all-photo mean of one block, restricted to ``subset``.

    Classes whose stored profile does not fit the block (another channel count) are left out.
    """
    index = np.arange(channels) if subset is None else np.asarray(subset, dtype=int)
    means: dict[str, np.ndarray] = {}
    stds: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    blocks = list((profiles or {}).get("blocks") or [])
    if block in blocks:
        position = blocks.index(block)
        for label, entry in ((profiles or {}).get("classes") or {}).items():
            try:
                mean = np.asarray(entry["mean"][position], dtype=np.float64)
                std = np.asarray(entry["std"][position], dtype=np.float64)
                count = int(entry["count"])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if mean.shape == std.shape == (channels,) and count > 0:
                means[label], stds[label], counts[label] = mean[index], std[index], count
    overall = None
    if means:
        weights = np.array([counts[label] for label in means], dtype=np.float64)
        overall = np.average(np.stack(list(means.values())), axis=0, weights=weights)
    values = None if photo is None else np.asarray(photo, dtype=np.float64).reshape(-1)[index]
    return BlockProfiles(block, index, values, means, stds, overall, counts)


def paper_view(
    excitations: Mapping[str, np.ndarray],
    profiles: Mapping[str, Any] | None,
    *,
    blocks: Sequence[str] | None = None,
    channels: int | None = PAPER_CHANNELS,
    seed: int = PAPER_SEED,
) -> list[BlockProfiles]:
    """The paper's Fig. 6/7 data for one photo: one ``BlockProfiles`` per block.

    Args:
        excitations: SE block name -> (C,) gate values of the photo (``Analysis.excitations``), network order.
        profiles: the card's ``class_profiles`` (may be empty: then only the photo is there).
        blocks: which blocks; default ``paper_blocks`` of the excitations.
        channels: how many channels per block (a fixed seeded subset); None for all.
        seed: the subset's seed.
    """
    chosen = paper_blocks(list(excitations)) if blocks is None else [b for b in blocks if b in excitations]
    panels = []
    for block in chosen:
        gates = np.asarray(excitations[block]).reshape(-1)
        subset = channel_subset(gates.size, channels, seed=seed)
        panels.append(block_profiles(profiles, block, gates.size, photo=gates, subset=subset))
    return panels


def class_specificity(profiles: Mapping[str, Any] | None) -> list[BlockSpecificity]:
    """One number per SE block: how much the class-average excitation profiles differ there.

    The statistic is the between-class standard deviation of the class means, per channel, averaged over the
    block's channels (classes weighted equally), in gate units (0 to 1). Why this one: it measures exactly the
    spread between the class lines of the paper's Fig. 6, in the units of that chart, so a reader can check it
    against the picture. It is near 0 both where every class excites channels alike (the paper's early blocks)
    and where gates saturate near 1 for every class (its last stage), and largest where classes differ (its
    late, pre-saturation blocks), so the paper's three findings read off one bar chart. A ratio to the
    within-class spread (an F statistic or eta squared) was rejected: it turns tiny but consistent differences
    in saturated blocks, which barely change the block's output, into large numbers. ``mean_gate`` and
    ``saturated`` are given alongside so saturation is visible as such.

    Returns:
        Network order; empty without profiles or with fewer than two profiled classes.
    """
    if profiles is None or not has_profiles(profiles):
        return []
    blocks = list(profiles["blocks"])
    sizes = list(profiles.get("channels") or [])
    result = []
    for position, block in enumerate(blocks):
        channels = sizes[position] if position < len(sizes) else None
        panel = block_profiles(profiles, block, int(channels) if channels else _width(profiles, position))
        if len(panel.means) < 2 or panel.overall is None:
            continue
        means = np.stack(list(panel.means.values()))  # (classes, C)
        match = SE_BLOCK_NAME.match(block)
        result.append(BlockSpecificity(
            block=block,
            stage=int(match.group(1)) if match else 0,
            specificity=float(means.std(axis=0).mean()),
            mean_gate=float(panel.overall.mean()),
            saturated=float((panel.overall > SATURATED).mean()),
        ))
    return result


def nearest_class(
    excitation: np.ndarray, profiles: Mapping[str, Any] | None, block: str, *, labels: Sequence[str] | None = None
) -> Takeaway | None:
    """The class whose average profile in ``block`` correlates best with this photo's gate values.

    The method is the Pearson correlation over the block's channels: it compares the *shape* of the profile
    (which channels are up, which down), not its overall level. None without profiles for the block, or when
    the photo's or every class's weights are constant (no correlation is defined).
    """
    gates = np.asarray(excitation, dtype=np.float64).reshape(-1)
    panel = block_profiles(profiles, block, gates.size)
    order = [label for label in (labels or panel.means) if label in panel.means]
    correlations = {}
    for label in order:
        r = _pearson(gates, panel.means[label])
        if r is not None:
            correlations[label] = r
    if not correlations:
        return None
    best = max(correlations, key=correlations.__getitem__)
    return Takeaway(block, best, correlations[best], correlations)


def distinctive_channels(excitation: np.ndarray, reference: np.ndarray | None, k: int | None = None) -> list[int]:
    """Channel indices ordered by how far this photo's weight is from ``reference`` (a class average), farthest
    first (ties: lower index first). Without a reference, the strongest weights first."""
    gates = np.asarray(excitation, dtype=np.float64).reshape(-1)
    if reference is None:
        key = -gates
    else:
        key = -np.abs(gates - np.asarray(reference, dtype=np.float64).reshape(-1))
    order = np.argsort(key, kind="stable")
    return [int(i) for i in (order if k is None else order[: max(0, k)])]


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = a - a.mean(), b - b.mean()
    scale = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return None if scale < 1e-12 else float((a * b).sum() / scale)


def _width(profiles: Mapping[str, Any], position: int) -> int:
    for entry in (profiles.get("classes") or {}).values():
        try:
            return len(entry["mean"][position])
        except (KeyError, IndexError, TypeError):
            continue
    return 0
