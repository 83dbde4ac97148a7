"""Train an SE model on an image folder or an official-folds dataset and write a self-describing checkpoint.

    python -m senet.train --data ../shared/data/msld_v2 --arch se_resnet18 --fold 1 --out checkpoints/NAME
    python -m senet.train --data ../shared/data/msld_v2 --arch se_resnet18 --cv --out runs/NAME   # 5 folds
    python -m senet.train ... --folds 3,4 --out runs/NAME   # some folds now; merge: python -m senet.crossval
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .augment import AugmentConfig
from .card import ModelCard
from .checkpoint import load_checkpoint
from .crossval import cv_summary, fold_path, merge_folds
from .data import Splits, binarize, decode_resized, label_indices, load_splits, official_folds, open_rgb
from .metrics import evaluation_metrics
from .provenance import command_line, describe_dataset
from .registry import create_model, list_models
from .run_outputs import write_outputs
from .trainer import (
    FitResult,
    TrainConfig,
    bare_throughput,
    device_name,
    fit,
    predict,
    resolve_device,
    seed_everything,
)

LIMITATIONS = ("A research demo trained on a few hundred web-scraped photos; not a medical device and not a "
               "diagnosis. Skin tones, cameras and lesion stages absent from the data are not covered; accuracy "
               "on new photos can be far lower than on the Test folds.")


def eval_tensor(paths: list[Path], card: ModelCard) -> torch.Tensor:
    """Images preprocessed exactly as at inference (``card.transforms()``): (N, 3, H, W) float."""
    transform = card.transforms()
    if not paths:
        return torch.empty((0, 3, *card.input_size))
    return torch.stack([transform(open_rgb(p)) for p in paths])


def load_backbone(model: nn.Module, path: Path) -> dict[str, Any]:
    """Copy every weight but the classification head from a checkpoint of the same architecture."""
    backbone, card = load_checkpoint(path)
    source = {k: v for k, v in backbone.state_dict().items() if not k.startswith(("fc.", "classifier."))}
    target = model.state_dict()
    mismatched = [k for k in source if k not in target or target[k].shape != source[k].shape]
    if mismatched or len(source) != len([k for k in target if not k.startswith(("fc.", "classifier."))]):
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
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-epochs", type=int, default=5)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--ema", type=float, default=0.998, help="EMA decay of the weights; 0 turns it off")
    p.add_argument("--mix-prob", type=float, default=0.5, help="probability of mixup/cutmix per batch")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
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


def train_fold(args: argparse.Namespace, splits: Splits, fold_name: str, log: Any = print, *,
               official_folds: int = 0, command: str = "") -> tuple[ModelCard, nn.Module]:
    """Train on one split, test on its Test part, and return the card (metrics filled in) and the model."""
    device = resolve_device(args.device)
    labels = splits.labels
    model_args: dict[str, Any] = {}
    base = ModelCard(arch=args.arch, labels=labels, model_args=model_args, input_size=(args.img_size, args.img_size))
    store = round(args.img_size * 8 / 7)  # room for random-resized crops around the inference size
    t0 = time.perf_counter()
    train_x = decode_resized([s.path for s in splits.train], (store, store), workers=args.workers)
    train_y = label_indices(splits.train, labels)
    valid_x, valid_y = eval_tensor([s.path for s in splits.valid], base), label_indices(splits.valid, labels)
    test_x, test_y = eval_tensor([s.path for s in splits.test], base), label_indices(splits.test, labels)
    log(f"[{fold_name}] decoded {len(train_x)}/{len(valid_x)}/{len(test_x)} train/valid/test images in "
        f"{time.perf_counter() - t0:.1f}s; classes {labels}")
    seed_everything(args.seed)  # the head's (and a scratch model's) initial weights come from the seed too
    model = create_model(args.arch, num_classes=len(labels), **model_args)
    backbone: dict[str, Any] = {}
    if args.init:
        backbone = load_backbone(model, args.init)
    if args.resume:
        previous, previous_card = load_checkpoint(args.resume)
        if list(previous_card.labels) != labels or previous_card.arch != args.arch:
            raise SystemExit(f"--resume {args.resume}: arch/labels {previous_card.arch} {previous_card.labels} "
                             f"differ from {args.arch} {labels}")
        model.load_state_dict(previous.state_dict())
    config = TrainConfig(
        epochs=args.epochs, img_size=args.img_size, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs, label_smoothing=args.label_smoothing,
        ema_decay=args.ema, backbone_lr_scale=args.backbone_lr_scale, amp=args.amp, compile=args.compile,
        compile_mode=None if args.compile_mode in (None, "default") else args.compile_mode,
        time_budget=args.time_budget,
        seed=args.seed, augment=replace(AugmentConfig(), mix_prob=args.mix_prob))
    bare = bare_throughput(model, args.batch_size, args.img_size, device, amp=args.amp, compile=args.compile,
                           compile_mode=config.compile_mode) if args.measure_throughput else None
    result: FitResult = fit(model, train_x, train_y, len(labels), config, mean=base.mean, std=base.std,
                            device=device, valid_images=valid_x, valid_labels=valid_y,
                            log=lambda m: log(f"[{fold_name}] {m}"), log_every=max(1, args.epochs // 10))
    probs = predict(result.model, test_x, amp=args.amp).numpy()
    test = evaluation_metrics(probs, test_y.numpy(), labels)
    speed = {"train_images_per_s": round(result.images_per_s, 1)}
    if bare:
        speed |= {"bare_fwd_bwd_images_per_s": round(bare, 1), "ratio": round(result.images_per_s / bare, 3)}
    log(f"[{fold_name}] best epoch {result.best_epoch}: test acc {test['accuracy']:.4f} macro-F1 "
        f"{test['macro_f1']:.4f} in {result.seconds:.0f}s; {speed}")
    profiles = _class_profiles(result.model, splits, base, labels, valid_x, valid_y)
    dataset = describe_dataset(args.data)
    card = base.replace(
        title=args.title,
        metrics={"test": test, "fold": fold_name, "best_epoch": result.best_epoch, "epochs": result.epochs},
        training={"command": command or command_line("senet.train"),
                  "recipe": config.to_dict(), "device": device_name(device), "seconds": round(result.seconds, 1),
                  "speed": speed, "history_tail": result.history[-3:]},
        data={**dataset, "split": splits.source, "counts": splits.counts(),
              **({"official_folds": official_folds} if official_folds else {}),
              **({"positive": args.positive} if args.positive else {})},
        backbone=backbone, license=dataset.get("license", "unspecified"), citation=dataset.get("citation", ""),
        limitations=LIMITATIONS, class_profiles=profiles,
        description=f"{args.arch} trained on {dataset.get('name', args.data.name)} ({len(labels)} classes)"
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.data.is_dir():
        raise SystemExit(f"--data {args.data} is not a folder")
    has_folds = (args.data / "folds.csv").is_file()
    official = official_folds(args.data) if has_folds else []
    if (args.cv or args.folds) and not has_folds:
        raise SystemExit("--cv and --folds need the official folds: DATA/folds.csv")
    if args.folds and not set(args.folds) <= set(official):
        raise SystemExit(f"--folds {args.folds}: folds.csv has folds {official}")
    folds = official if args.cv else args.folds or ([args.fold or 1] if has_folds else [0])
    per_fold_files = bool(args.cv or args.folds)
    for fold in folds:
        splits = load_splits(args.data, fold=fold or None, seed=args.seed)
        if args.positive:
            splits = binarize(splits, args.positive)
        card, model = train_fold(args, splits, f"fold{fold}" if fold else "random split",
                                 official_folds=len(official), command=command_line("senet.train", argv))
        # Written as soon as the fold ends, so a run that is stopped later keeps every finished fold.
        path = write_outputs(model, card, fold_path(args.out, fold) if per_fold_files else args.out, half=args.half)
        print(f"wrote {path}")
    if args.cv:
        path = merge_folds(args.out, ship_fold=folds[0])
        print(cv_summary(path))
        print(f"wrote {path} (fold {folds[0]}'s weights, the {len(folds)}-fold metrics)")
    elif args.folds:
        print(f"merge the folds trained so far with: python -m senet.crossval --out {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
