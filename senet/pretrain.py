"""Supervised pretraining of an SE backbone on natural-image folders, for fine-tuning with ``train --init``.

    python -m senet.pretrain --data .data/imagenette .data/imagewoof --arch se_resnet18 --out runs/se_resnet18_pre

Classes are the union of every folder's classes (prefixed by the folder name). 5 % of each class is held out
to report accuracy. The output is an ordinary checkpoint of ours whose card records data, recipe and license.

A long pretraining can be spread over several runs (the lent GPU takes 10-minute commands): ``--stop-after
SECONDS`` writes the checkpoint after the epoch that passes SECONDS, and the same command with ``--resume
OUT.safetensors`` goes on from that epoch with the same learning-rate schedule (optimizer moments restart).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from .augment import AugmentConfig, normalize
from .card import ModelCard
from .checkpoint import load_checkpoint
from .data import Sample, decode_resized, label_indices, list_image_folder, random_splits
from .provenance import command_line, describe_dataset
from .registry import create_model, list_models
from .run_outputs import write_outputs
from .trainer import TrainConfig, device_name, fit, predict, resolve_device, seed_everything


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m senet.pretrain", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, nargs="+", required=True, help="one or more image folders")
    p.add_argument("--arch", default="se_resnet18", choices=list_models())
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--img-size", type=int, default=112)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-epochs", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-budget", type=float, default=0.0,
                   help="seconds per training run: after epoch 2, train only as many epochs as fit (0: off)")
    p.add_argument("--stop-after", type=float, default=0.0,
                   help="seconds: stop after the epoch that passes it and write the checkpoint (resume later)")
    p.add_argument("--resume", type=Path, help="a checkpoint written after --stop-after: go on from its last epoch "
                   "(same data, architecture and --epochs; store it without --half for an exact continuation)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--half", action="store_true")
    return p


def _resume_state(path: Path, arch: str, labels: list[str], epochs: int) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The stopped run's model and card training record, checked against this run."""
    model, card = load_checkpoint(path)
    done = int(card.training.get("epochs_trained", 0))
    if card.arch != arch or list(card.labels) != labels:
        raise SystemExit(f"--resume {path}: {card.arch} with {len(card.labels)} classes does not match {arch} with "
                         f"{len(labels)} classes from --data")
    if card.training.get("finished", True) or card.training.get("recipe", {}).get("epochs") != epochs:
        raise SystemExit(f"--resume {path}: not a run stopped before the last of {epochs} epochs "
                         f"(it trained {done} of {card.training.get('recipe', {}).get('epochs')})")
    return model, dict(card.training)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    samples: list[Sample] = []
    for root in args.data:
        samples += [Sample(s.path, f"{root.name}/{s.label}") for s in list_image_folder(root)]
    splits = random_splits(samples, valid=0.05, test=0.0, seed=args.seed)
    labels = splits.labels
    device = resolve_device(args.device)
    store = round(args.img_size * 8 / 7)
    t0 = time.perf_counter()
    train_x = decode_resized([s.path for s in splits.train], (store, store), workers=args.workers)
    hold_x = decode_resized([s.path for s in splits.valid], (args.img_size, args.img_size), workers=args.workers)
    print(f"decoded {len(train_x)} + {len(hold_x)} images ({len(labels)} classes) in {time.perf_counter() - t0:.1f}s")
    card = ModelCard(arch=args.arch, labels=labels, input_size=(args.img_size, args.img_size))
    hold = normalize(hold_x.float() / 255, card.mean, card.std)
    hold_y = label_indices(splits.valid, labels)
    seed_everything(args.seed)
    model = create_model(args.arch, num_classes=len(labels))
    previous: dict[str, Any] = {}
    if args.resume:
        model, previous = _resume_state(args.resume, args.arch, labels, args.epochs)
    config = TrainConfig(
        epochs=args.epochs, img_size=args.img_size, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs, label_smoothing=0.1, ema_decay=0.0,
        balance=False, amp=args.amp, compile=args.compile, time_budget=args.time_budget, seed=args.seed,
        stop_after=args.stop_after, start_epoch=int(previous.get("epochs_trained", 0)),
        augment=replace(AugmentConfig(), scale=(0.25, 1.0), rotation=10.0, vflip=0.0, mix_prob=0.3))
    result = fit(model, train_x, label_indices(splits.train, labels), len(labels), config, mean=card.mean,
                 std=card.std, device=device, log_every=max(1, args.epochs // 20))
    accuracy = float((predict(result.model, hold, amp=args.amp).argmax(1) == hold_y).float().mean())
    print(f"held-out accuracy {accuracy:.4f} ({len(hold_y)} images); {result.images_per_s:.0f} img/s; "
          f"{result.seconds:.0f}s")
    sources = [describe_dataset(root) for root in args.data]
    command = command_line("senet.pretrain", argv)
    earlier = [*previous.get("earlier_commands", []), previous["command"]] if previous else []
    card = card.replace(
        title=f"{args.arch} backbone pretrained on {' + '.join(r.name for r in args.data)}",
        description=f"Supervised pretraining of {args.arch} on {', '.join(s['name'] for s in sources)} "
                    f"({len(train_x)} images, {len(labels)} classes, {args.img_size} px) for fine-tuning.",
        metrics={"heldout_accuracy": accuracy, "heldout_images": len(hold_y)},
        training={"command": command, **({"earlier_commands": earlier} if earlier else {}),
                  "recipe": replace(config, start_epoch=0, stop_after=0.0).to_dict(),
                  "epochs_trained": result.epochs, "finished": result.finished,
                  "seconds": round(result.seconds + float(previous.get("seconds", 0.0)), 1),
                  "speed": {"train_images_per_s": round(result.images_per_s, 1)},
                  "device": device_name(device)},
        data={"sources": sources, "split": splits.source, "images": len(samples)},
        license="; ".join(sorted({s["license"] for s in sources})))
    path = write_outputs(result.model, card, args.out, half=args.half)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
