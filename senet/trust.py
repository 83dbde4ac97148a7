"""Add familiarity statistics and a calibrated temperature to a checkpoint, without retraining.

    python -m senet.trust --checkpoint checkpoints/se_resnet18_msld_v2.safetensors --data ../shared/data/msld_v2

Reads the fold from the card (``metrics.fold`` or ``data.split``), runs the model once over that fold's Train,
Valid and Test photos (preprocessed from the card, as at inference), then:

- familiarity: fits the statistics on Train, scales them and sets the threshold on Valid (see
  ``senet.familiarity``), and stores them as ``familiarity.*`` tensors in the safetensors file; with
  ``--outliers DIR...`` (folders of photos that are not skin photos) it also fits an outlier-exposure head
  (``senet.outlier_head``) on Train, the Train photos' 112-px copies and two augmented copies of each against
  those photos, and lets 95 % of Valid pass (90 % without);
- calibration: fits one temperature on Valid by NLL and records ECE / NLL on Test before and after, the
  reliability diagram and the per-confidence accuracy in ``metrics["calibration"]`` (see ``senet.calibration``).

The card's markdown and confusion PNG are regenerated. Training calls ``add_trust`` after each fold.
"""

from __future__ import annotations

import argparse
import io
import re
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from .augment import AugmentConfig, colour, draw_batch, geometric
from .calibration import calibration_metrics
from .card import ModelCard
from .checkpoint import CheckpointError, load_checkpoint, write_statistics
from .data import IMAGE_SUFFIXES, Sample, Splits, binarize, binarized_positive, label_indices, open_rgb, read_folds
from .familiarity import (
    DEFAULT_COMPONENTS,
    DEFAULT_VALID_PASS,
    FamiliarityStatistics,
    FeatureRecorder,
    fit_statistics,
    stage_sites,
)
from .hooks import model_lock, preserved_state
from .outlier_head import AUGMENTED_COPIES, DEFAULT_L2, OUTLIER_VALID_PASS

BATCH = 16


def card_fold(card: ModelCard) -> int:
    """The official fold a checkpoint was trained on, from its card."""
    for text in (card.metrics.get("fold"), card.data.get("split")):
        match = re.search(r"fold(\d+)", str(text or ""))
        if match:
            return int(match.group(1))
    raise ValueError("the card does not say which official fold it was trained on (metrics.fold or data.split)")


def familiarity_sites(model: nn.Module) -> list[str]:
    """The sites of the familiarity signature: the stem's and every stage's pooled output (chosen on dev sets,
    README); none for a model outside the registered families (calibration only)."""
    return stage_sites(model)


def shrunk_copy(image: Image.Image, size: int = 112) -> Image.Image:
    """``image`` as the natural-image corpora store photos: short side ``size`` px, centre crop, JPEG quality 80.

    Outlier exposure sees these copies of the Train photos as in-distribution, so that low resolution alone
    cannot tell skin photos from the outlier photos.
    """
    w, h = image.size
    scale = size / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BILINEAR)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    buffer = io.BytesIO()
    image.crop((left, top, left + size, top + size)).save(buffer, format="JPEG", quality=80)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def augmented_copy(image: Image.Image, seed: int, size: int = 256) -> Image.Image:
    """``image`` augmented as training augments it (``senet.augment``: crop, rotation, flips, colour; no mixing),
    drawn from ``seed``, at ``size`` px: in-distribution variety for the outlier-exposure head."""
    generator = torch.Generator().manual_seed(seed)
    draw = draw_batch(1, (size, size), AugmentConfig(mix_prob=0.0), generator, torch.device("cpu"))
    x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)[None].float() / 255
    x = colour(geometric(x, (size, size), draw.theta), draw.colour, draw.brightness, draw.contrast)
    return Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def augmented_samples(samples: Sequence[Sample], copies: int) -> tuple[list[Sample], list[int]]:
    """``copies`` entries per sample and the seed of each (``1000 * index + copy``, fixed so a rerun gives the same
    photos)."""
    return ([s for s in samples for _ in range(copies)],
            [1000 * i + k for i in range(len(samples)) for k in range(copies)])


def folder_photos(folders: Sequence[Path]) -> list[Sample]:
    """Every image file under ``folders`` (recursively, sorted), as unlabelled samples."""
    samples = []
    for folder in folders:
        if not Path(folder).is_dir():
            raise ValueError(f"the outlier folder {folder} does not exist")
        found = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise ValueError(f"the outlier folder {folder} has no photos")
        samples += [Sample(path, "") for path in found]
    return samples


def image_features(model: nn.Module, card: ModelCard, images: Sequence[Callable[[], Image.Image]],
                   blocks: Sequence[str], *, batch: int = BATCH) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Familiarity features (site -> (N, d)) and logits (N, K) of the photos ``images`` return (one function per
    photo, called when its batch is due), preprocessed from the card."""
    if not images:
        return {}, torch.empty((0, card.num_classes), dtype=torch.float64)
    transform = card.transforms()
    parameter = next(model.parameters())
    features: dict[str, list[torch.Tensor]] = {}
    logits = []
    with model_lock(model), preserved_state(model), FeatureRecorder(model, blocks) as recorder, torch.no_grad():
        for start in range(0, len(images), batch):
            pictures = torch.stack([transform(image()) for image in images[start:start + batch]])
            recorder.values.clear()
            logits.append(model(pictures.to(parameter.device, parameter.dtype)).double().cpu())
            for name, value in recorder.values.items():
                features.setdefault(name, []).append(value)
    return {name: torch.cat(parts) for name, parts in features.items()}, torch.cat(logits)


def features_and_logits(model: nn.Module, card: ModelCard, samples: Sequence[Sample], blocks: Sequence[str],
                        *, batch: int = BATCH, load: Callable[[Path], Image.Image] = open_rgb
                        ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``image_features`` of ``samples``, each read by ``load``."""
    reads: list[Callable[[], Image.Image]] = [partial(load, sample.path) for sample in samples]
    return image_features(model, card, reads, blocks, batch=batch)


def trust_statistics(model: nn.Module, card: ModelCard, splits: Splits, *, components: int = DEFAULT_COMPONENTS,
                     valid_pass: float | None = None, outliers: Sequence[Path] = (), l2: float = DEFAULT_L2,
                     augmented: int = AUGMENTED_COPIES, log: Any = print
                     ) -> tuple[FamiliarityStatistics | None, dict[str, Any], dict[str, Any]]:
    """Fit familiarity (Train, and with ``outliers`` folders an outlier-exposure head; threshold on Valid) and the
    temperature (Valid); evaluate on Test.

    ``valid_pass``: the share of Valid photos that pass (default 90 %, with ``outliers`` 95 %); ``augmented``:
    augmented copies of each Train photo on the head's in-distribution side (with ``outliers`` only).

    Returns:
        The statistics, ``metrics["calibration"]`` and ``metrics["familiarity"]`` for the card (a model outside
        the registered families gets calibration only: None and an empty summary).
    """
    if list(splits.labels) != list(card.labels):
        raise ValueError(f"the data's classes {splits.labels} differ from the card's labels {list(card.labels)}")
    blocks = familiarity_sites(model)  # none for a model outside the families: calibration only
    parts = {}
    for name in ("train", "valid", "test"):
        samples = getattr(splits, name)
        parts[name] = (*features_and_logits(model, card, samples, blocks), label_indices(samples, card.labels))
        log(f"{name}: {len(samples)} photos")
    (train_f, _, train_y), (valid_f, valid_l, valid_y), (test_f, test_l, test_y) = (parts[n] for n in
                                                                                    ("train", "valid", "test"))
    fold = card.metrics.get("fold", "fold")
    calibration = calibration_metrics(valid_l, valid_y, test_l, test_y,
                                      fitted_on=f"{fold} Valid ({len(valid_y)} photos)",
                                      evaluated_on=f"{fold} Test ({len(test_y)} photos)")
    if not blocks:
        return None, calibration, {}
    outlier_f = train_copies = None
    outlier_samples = folder_photos(outliers) if outliers else []
    if valid_pass is None:
        valid_pass = OUTLIER_VALID_PASS if outlier_samples else DEFAULT_VALID_PASS
    if outlier_samples:
        outlier_f = features_and_logits(model, card, outlier_samples, blocks)[0]
        train_copies = features_and_logits(model, card, splits.train, blocks,
                                           load=lambda path: shrunk_copy(open_rgb(path)))[0]
        if augmented > 0:
            copied, seeds = augmented_samples(splits.train, augmented)
            loads = [lambda s=s, seed=seed: augmented_copy(open_rgb(s.path), seed) for s, seed in zip(copied, seeds)]
            extra = image_features(model, card, loads, blocks)[0]
            train_copies = {name: torch.cat([train_copies[name], extra[name]]) for name in train_copies}
        log(f"outliers: {len(outlier_samples)} photos; Train's 112-px copies: {len(splits.train)}; augmented "
            f"copies: {augmented * len(splits.train)}")
    statistics = fit_statistics(train_f, train_y, valid_f, card.num_classes, components=components,
                                valid_pass=valid_pass, outliers=outlier_f, train_extra=train_copies, l2=l2)
    threshold = float(statistics.threshold)

    def flagged(features: dict[str, torch.Tensor]) -> float:
        return float((statistics.familiarity(statistics.score(features)) < threshold).double().mean())

    summary = {
        "method": "class-conditional Mahalanobis distance (probabilistic PCA, tied covariance) on the channel "
                  "means of the stem and of every stage, each standardised on out-of-fold Train distances, "
                  "averaged; fitted on Train, thresholded on Valid"
                  + ("; combined (the larger, each standardised on Valid) with an outlier-exposure logistic "
                     "regression on the same features, Train with its 112-px and augmented copies vs the outlier "
                     "photos" if outlier_samples else ""),
        "sites": blocks, "components": components, "valid_pass": valid_pass, "threshold": round(threshold, 4),
        "fitted_on": f"{fold} Train ({len(train_y)} photos)",
        "flagged": {"valid": round(flagged(valid_f), 4), "test": round(flagged(test_f), 4)},
    }
    if outlier_samples:
        summary["outliers"] = {"folders": [Path(folder).name for folder in outliers],
                               "photos": len(outlier_samples), "l2": l2, "augmented_copies": augmented}
    return statistics, calibration, summary


def add_trust(path: str | Path, splits: Splits, *, components: int = DEFAULT_COMPONENTS,
              valid_pass: float | None = None, outliers: Sequence[Path] = (), l2: float = DEFAULT_L2,
              augmented: int = AUGMENTED_COPIES, device: str = "cpu", log: Any = print) -> ModelCard | None:
    """Fit and store familiarity statistics and calibration in the checkpoint at ``path`` (weights unchanged);
    ``outliers``: folders of non-skin photos for the outlier-exposure head (none: Train-only statistics).

    Returns the updated card, or None (and changes nothing) when the split has no Valid or no Test photos.
    """
    from .devices import resolve_device
    from .run_outputs import write_card_outputs

    if not splits.valid or not splits.test or not splits.train:
        log("no familiarity statistics or calibration: the split needs Train, Valid and Test photos")
        return None
    model, card = load_checkpoint(path, device=resolve_device(device))
    statistics, calibration, summary = trust_statistics(model, card, splits, components=components,
                                                        valid_pass=valid_pass, outliers=outliers, l2=l2,
                                                        augmented=augmented, log=log)
    write_statistics(path, statistics)
    metrics = {key: value for key, value in card.metrics.items() if key != "familiarity"}
    metrics["calibration"] = calibration
    if summary:
        metrics["familiarity"] = summary
    card = card.replace(metrics=metrics)
    write_card_outputs(card, Path(path).with_suffix(""))
    log(f"temperature {calibration['temperature']:.3f}: Test ECE {calibration['raw']['ece']:.3f} -> "
        f"{calibration['calibrated']['ece']:.3f}, NLL {calibration['raw']['nll']:.3f} -> "
        f"{calibration['calibrated']['nll']:.3f}"
        + (f"; flagged as unfamiliar: Valid {summary['flagged']['valid']:.1%}, Test {summary['flagged']['test']:.1%}"
           if summary else ""))
    return card


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m senet.trust", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="the .safetensors file (its .json card beside it)")
    p.add_argument("--data", type=Path, required=True,
                   help="the dataset folder with folds.csv the model was trained on")
    p.add_argument("--components", type=int, default=DEFAULT_COMPONENTS, help="principal directions per site")
    p.add_argument("--valid-pass", type=float, default=None,
                   help=f"share of Valid photos that must pass as familiar (sets the threshold; default "
                        f"{DEFAULT_VALID_PASS:.0%}, with --outliers {OUTLIER_VALID_PASS:.0%})")
    p.add_argument("--outliers", type=Path, nargs="+", default=[], metavar="DIR",
                   help="folders of photos that are not skin photos, for outlier exposure (README: the dev sets "
                        "written by scripts/outlier_sets.py); none: statistics from Train only")
    p.add_argument("--l2", type=float, default=DEFAULT_L2, help="L2 penalty of the outlier-exposure head")
    p.add_argument("--augmented-copies", type=int, default=AUGMENTED_COPIES,
                   help="augmented copies of each Train photo on the outlier-exposure head's in-distribution side")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not (args.data / "folds.csv").is_file():
        raise SystemExit(f"--data {args.data} has no folds.csv: the statistics need the checkpoint's official fold")
    if args.valid_pass is not None and not 0.5 <= args.valid_pass < 1:
        raise SystemExit(f"--valid-pass must be in [0.5, 1), got {args.valid_pass}")
    try:
        from .checkpoint import read_card

        card = read_card(args.checkpoint)
        splits = read_folds(args.data, card_fold(card))
        positive = binarized_positive(card.labels, card.data.get("positive"))
        if positive:  # a Monkeypox-vs-rest card; a 6-class card also names its positive class
            splits = binarize(splits, positive)
        add_trust(args.checkpoint, splits, components=args.components, valid_pass=args.valid_pass,
                  outliers=args.outliers, l2=args.l2, augmented=args.augmented_copies)
    except (CheckpointError, ValueError, FileNotFoundError) as error:
        raise SystemExit(str(error)) from None
    print(f"updated {args.checkpoint} and its card")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
