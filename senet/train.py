"""Train an SE model on an image folder or an official-folds dataset and write a self-describing checkpoint.

    python -m senet.train --data ../shared/data/msld_v2 --arch se_resnet18 --fold 1 --out checkpoints/NAME
    python -m senet.train --data ../shared/data/msld_v2 --arch se_resnet18 --cv --out runs/NAME   # 5 folds
    python -m senet.train ... --folds 3,4 --out runs/NAME   # some folds now; merge: python -m senet.crossval
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .augment import AugmentConfig
from .card import ModelCard
from .checkpoint import load_checkpoint
from .crossval import cv_summary, fold_path, merge_folds
from .data import (
    Splits,
    binarize,
    decode_resized,
    eval_tensor,
    label_indices,
    load_splits,
    official_folds,
)
from .devices import DeviceError, device_name
from .distributed import (
    SINGLE,
    Distributed,
    main_only,
    per_process_batch,
    requested_world_size,
    run_command,
    start,
    stop,
)
from .family import as_family
from .metrics import evaluation_metrics
from .provenance import describe_dataset
from .registry import create_model, list_models
from .run_outputs import write_outputs
from .trainer import (
    FitResult,
    TrainConfig,
    bare_throughput,
    fit,
    predict,
    seed_everything,
)
from .trust import add_trust

LIMITATIONS = ("A research demo trained on a few hundred web-scraped photos; not a medical device and not a "
               "diagnosis. Skin tones, cameras and lesion stages absent from the data are not covered; accuracy "
               "on new photos can be far lower than on the Test folds.")


def load_backbone(model: nn.Module, path: Path) -> dict[str, Any]:
    """Copy every weight but the classification head from a checkpoint of the same architecture."""
    backbone, card = load_checkpoint(path)
    head = f"{as_family(model).classifier_name}."
    source = {k: v for k, v in backbone.state_dict().items() if not k.startswith(head)}
    target = model.state_dict()
    mismatched = [k for k in source if k not in target or target[k].shape != source[k].shape]
    if mismatched or len(source) != len([k for k in target if not k.startswith(head)]):
        raise ValueError(f"backbone {path} ({card.arch}) does not fit this model: {mismatched[:5]}")
    model.load_state_dict(source, strict=False)
    return {"checkpoint": str(path.name), "arch": card.arch, "data": dict(card.data), "license": card.license,
            "training": dict(card.training), "description": card.description,
            "metrics": dict(card.metrics)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m senet.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="image folder (one sub-folder per class), "
                   "or a folder with folds.csv")
    p.add_argument("--arch", default="se_resnet18", choices=list_models())
    split = p.add_mutually_exclusive_group()
    split.add_argument("--fold", type=int, help="official fold of folds.csv (default 1)")
    split.add_argument("--cv", action="store_true", help="train and test on every official fold; report mean +- std")
    split.add_argument("--folds", type=_fold_list, help="train only these official folds (e.g. 3,4,5), each written "
                       "as OUT_foldK; merge them later with python -m senet.crossval --out OUT")
    p.add_argument("--positive", help="turn the data into POSITIVE vs. everything else (e.g. Monkeypox)")
    p.add_argument("--positive-class", help="the class whose one-vs-rest metrics the card reports and the app "
                   "names (default: the dataset's own, e.g. Monkeypox for MSLD; --positive's class)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=32, help="the global batch: under torchrun with N processes "
                   "each trains on batch / N images (must divide)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-epochs", type=int, default=5)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--ema", type=float, default=0.998, help="EMA decay of the weights; 0 turns it off")
    p.add_argument("--mix-prob", type=float, default=0.5, help="probability of mixup/cutmix per batch")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (under torchrun: each process "
                   "takes the GPU of its LOCAL_RANK)")
    p.add_argument("--sync-bn", action="store_true", help="under torchrun: BatchNorm statistics over the global "
                   "batch (SyncBatchNorm) instead of each process's share")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True, help="bf16 autocast on CUDA")
    p.add_argument("--compile", action="store_true", help="torch.compile the training step")
    p.add_argument("--compile-mode", choices=["default", "reduce-overhead", "max-autotune-no-cudagraphs"],
                   help="torch.compile mode with --compile (reduce-overhead: CUDA graphs, against launch-bound models)")
    p.add_argument("--workers", type=int, default=8, help="threads decoding images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-budget", type=float, default=0.0,
                   help="seconds per training run: after epoch 2, train only as many epochs as fit (0: off)")
    p.add_argument("--init", type=Path, help="start from this backbone checkpoint (senet.pretrain); new head")
    p.add_argument("--backbone-lr-scale", type=float, default=1.0, help="lr multiplier for the backbone")
    p.add_argument("--resume", type=Path, help="continue training from one of our checkpoints (same labels; "
                   "weights only, the schedule starts again)")
    p.add_argument("--out", type=Path, required=True, help="output path stem: writes STEM.safetensors, "
                   "STEM.json, STEM.md, STEM_confusion.png")
    p.add_argument("--half", action="store_true", help="store weights in float16 (half the size)")
    p.add_argument("--title", default="", help="human name shown in the app")
    p.add_argument("--outliers", type=Path, nargs="+", default=[], metavar="DIR",
                   help="folders of photos that are not skin photos: the familiarity statistics then include an "
                        "outlier-exposure head (see python -m senet.trust); default Train-only statistics")
    p.add_argument("--measure-throughput", action="store_true",
                   help="also measure bare forward+backward images/s at the same batch size")
    return p


def _fold_list(text: str) -> list[int]:
    try:
        folds = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected fold numbers like 3,4,5, got {text!r}") from None
    if not folds or folds[0] < 1:
        raise argparse.ArgumentTypeError(f"expected fold numbers >= 1, got {text!r}")
    return folds


@dataclass(frozen=True)
class FoldConfig:
    """What :func:`train_fold` needs besides the split: architecture, recipe, sources and outputs' words."""

    data: Path  # the dataset folder, described in the card
    arch: str
    recipe: TrainConfig
    positive: str | None = None  # the data was binarised: this class vs. everything else
    positive_class: str | None = None  # the class of interest (one-vs-rest metrics); default: the dataset's
    workers: int = 8
    init: Path | None = None  # backbone checkpoint (senet.pretrain)
    resume: Path | None = None  # continue from these weights (same labels)
    title: str = ""
    measure_throughput: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> FoldConfig:
        """The typed view of ``senet.train``'s command line."""
        recipe = TrainConfig(
            epochs=args.epochs, img_size=args.img_size, batch_size=args.batch_size, lr=args.lr,
            weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs, label_smoothing=args.label_smoothing,
            ema_decay=args.ema, backbone_lr_scale=args.backbone_lr_scale, amp=args.amp, compile=args.compile,
            compile_mode=None if args.compile_mode in (None, "default") else args.compile_mode,
            time_budget=args.time_budget, seed=args.seed, augment=replace(AugmentConfig(), mix_prob=args.mix_prob))
        return cls(data=args.data, arch=args.arch, recipe=recipe, positive=args.positive,
                   positive_class=args.positive_class, workers=args.workers, init=args.init, resume=args.resume,
                   title=args.title, measure_throughput=args.measure_throughput)


@dataclass(frozen=True)
class _Tensors:
    """One split decoded: Train as stored uint8 (room for crops), Valid and Test preprocessed as at inference."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    valid_x: torch.Tensor
    valid_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def _decode(splits: Splits, base: ModelCard, workers: int) -> _Tensors:
    store = round(base.input_size[0] * 8 / 7)  # room for random-resized crops around the inference size
    labels = splits.labels
    return _Tensors(
        decode_resized([s.path for s in splits.train], (store, store), workers=workers),
        label_indices(splits.train, labels),
        eval_tensor([s.path for s in splits.valid], base), label_indices(splits.valid, labels),
        eval_tensor([s.path for s in splits.test], base), label_indices(splits.test, labels))


def _initial_model(config: FoldConfig, labels: list[str]) -> tuple[nn.Module, dict[str, Any]]:
    """The seeded new model, with the backbone of ``config.init`` or the weights of ``config.resume``."""
    seed_everything(config.recipe.seed)  # the head's (and a scratch model's) initial weights come from the seed too
    model = create_model(config.arch, num_classes=len(labels))
    backbone: dict[str, Any] = {}
    if config.init:
        backbone = load_backbone(model, config.init)
    if config.resume:
        previous, previous_card = load_checkpoint(config.resume)
        if list(previous_card.labels) != labels or previous_card.arch != config.arch:
            raise SystemExit(f"--resume {config.resume}: arch/labels {previous_card.arch} {previous_card.labels} "
                             f"differ from {config.arch} {labels}")
        model.load_state_dict(previous.state_dict())
    return model, backbone


def positive_class(config: FoldConfig, dataset: dict[str, Any], labels: list[str]) -> str | None:
    """The class of interest: --positive-class, else --positive's class, else the dataset's (MSLD: Monkeypox)."""
    chosen = config.positive_class or config.positive or dataset.get("positive")
    if config.positive and config.positive_class and config.positive != config.positive_class:
        raise SystemExit(f"--positive {config.positive} and --positive-class {config.positive_class} disagree")
    if config.positive_class and config.positive_class not in labels:
        raise SystemExit(f"--positive-class {config.positive_class!r} is not a class; classes: {labels}")
    return chosen if chosen in labels else None


def train_fold(config: FoldConfig, splits: Splits, fold_name: str, log: Callable[[str], None] = print, *,
               device: torch.device, dist: Distributed = SINGLE, official_folds: int = 0,
               command: str = "") -> tuple[ModelCard, nn.Module]:
    """Train on one split, test on its Test part, and return the card (metrics filled in) and the model.

    Every process of a torchrun run calls this and trains together; only rank 0's card carries the class
    profiles (the other processes' cards are not meant to be written).
    """
    log = main_only(log, dist)
    labels, recipe = splits.labels, config.recipe
    base = ModelCard(arch=config.arch, labels=tuple(labels), input_size=(recipe.img_size, recipe.img_size))
    t0 = time.perf_counter()
    data = _decode(splits, base, config.workers)
    log(f"[{fold_name}] decoded {len(data.train_x)}/{len(data.valid_x)}/{len(data.test_x)} train/valid/test images "
        f"in {time.perf_counter() - t0:.1f}s; classes {labels}")
    model, backbone = _initial_model(config, labels)
    bare = bare_throughput(model, recipe.batch_size // dist.world_size, recipe.img_size, device, amp=recipe.amp,
                           compile=recipe.compile, compile_mode=recipe.compile_mode) \
        if config.measure_throughput else None
    result: FitResult = fit(model, data.train_x, data.train_y, len(labels), recipe, mean=base.mean, std=base.std,
                            device=device, valid_images=data.valid_x, valid_labels=data.valid_y,
                            log=lambda m: log(f"[{fold_name}] {m}"), log_every=max(1, recipe.epochs // 10), dist=dist)
    dataset = describe_dataset(config.data)
    positive = positive_class(config, dataset, labels)
    probs = predict(result.model, data.test_x, amp=recipe.amp, dist=dist).numpy()
    test = evaluation_metrics(probs, data.test_y.numpy(), labels, positive=positive)
    speed = {"train_images_per_s": round(result.images_per_s, 1)}
    if bare:  # per process: the whole run's ceiling is N times this
        speed |= {"bare_fwd_bwd_images_per_s": round(bare * dist.world_size, 1),
                  "ratio": round(result.images_per_s / (bare * dist.world_size), 3)}
    log(f"[{fold_name}] best epoch {result.best_epoch}: test acc {test['accuracy']:.4f} macro-F1 "
        f"{test['macro_f1']:.4f} in {result.seconds:.0f}s; {speed}")
    profiles = _class_profiles(result.model, splits, base, labels, data.valid_x, data.valid_y) if dist.is_main else {}
    card = base.replace(
        title=config.title,
        metrics={"test": test, "fold": fold_name, "best_epoch": result.best_epoch, "epochs": result.epochs},
        training={"command": command or run_command("senet.train", None, dist),
                  "recipe": recipe.to_dict(), "device": device_name(device), "seconds": round(result.seconds, 1),
                  "speed": speed, "history_tail": result.history[-3:],
                  **({"distributed": dist.describe()} if dist.active else {})},
        data={**dataset, "split": splits.source, "counts": splits.counts(),
              **({"official_folds": official_folds} if official_folds else {}),
              **({"positive": positive} if positive else {})},
        backbone=backbone, license=dataset.get("license", "unspecified"), citation=dataset.get("citation", ""),
        limitations=LIMITATIONS, class_profiles=profiles,
        description=f"{config.arch} trained on {dataset.get('name', config.data.name)} ({len(labels)} classes)"
                    + (" from our own pretrained backbone" if backbone else " from scratch") + ".")
    return card, result.model


def _class_profiles(model: nn.Module, splits: Splits, card: ModelCard, labels: list[str], valid_x: torch.Tensor,
                    valid_y: torch.Tensor) -> dict[str, Any]:
    """Per-class mean excitation of every SE block over the Train and Valid images (none for plain models)."""
    from .layers import se_blocks
    from .profiles import class_profiles

    if not se_blocks(model):
        return {}
    # Valid is already preprocessed as at inference; only Train needs decoding that way (it is stored larger).
    images = torch.cat([eval_tensor([s.path for s in splits.train], card), valid_x])
    targets = torch.cat([label_indices(splits.train, labels), valid_y])
    batches = [(images[i:i + 64], targets[i:i + 64]) for i in range(0, len(images), 64)]
    device = next(model.parameters()).device
    return class_profiles(model, batches, labels, device=device)


def _folds(args: argparse.Namespace) -> tuple[list[int], list[int]]:
    """(folds to train, the dataset's official folds); fold 0 is a plain folder's seeded random split."""
    if not args.data.is_dir():
        raise SystemExit(f"--data {args.data} is not a folder")
    has_folds = (args.data / "folds.csv").is_file()
    official = official_folds(args.data) if has_folds else []
    if (args.cv or args.folds) and not has_folds:
        raise SystemExit("--cv and --folds need the official folds: DATA/folds.csv")
    if args.folds and not set(args.folds) <= set(official):
        raise SystemExit(f"--folds {args.folds}: folds.csv has folds {official}")
    return official if args.cv else args.folds or ([args.fold or 1] if has_folds else [0]), official


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    folds, official = _folds(args)
    try:
        per_process_batch(args.batch_size, requested_world_size())  # before waiting for the other processes
        dist, device = start(args.device, sync_bn=args.sync_bn)
    except (DeviceError, ValueError) as error:
        raise SystemExit(f"senet.train: {error}") from None
    config = FoldConfig.from_args(args)
    command = run_command("senet.train", argv, dist)
    say = main_only(print, dist)
    for fold in folds:
        splits = load_splits(args.data, fold=fold or None, seed=args.seed)
        if args.positive:
            splits = binarize(splits, args.positive)
        card, model = train_fold(config, splits, f"fold{fold}" if fold else "random split", device=device,
                                 dist=dist, official_folds=len(official), command=command)
        if dist.is_main:  # one checkpoint per run; written as soon as the fold ends, so a run that is stopped
            # later keeps every finished fold
            path = write_outputs(model, card, fold_path(args.out, fold) if args.cv or args.folds else args.out,
                                 half=args.half)
            # familiarity statistics (with outlier exposure when given outlier folders) + temperature
            add_trust(path, splits, outliers=args.outliers, device=str(device), log=say)
            say(f"wrote {path}")
    if args.cv and dist.is_main:
        path = merge_folds(args.out, ship_fold=folds[0])
        say(cv_summary(path))
        say(f"wrote {path} (fold {folds[0]}'s weights, the {len(folds)}-fold metrics)")
    elif args.folds:
        say(f"merge the folds trained so far with: python -m senet.crossval --out {args.out}")
    stop(dist)  # not after an error: torchrun ends the other processes when one fails
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
