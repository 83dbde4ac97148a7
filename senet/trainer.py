"""The training loop shared by ``senet.train`` (fine-tuning / from scratch) and ``senet.pretrain``.

Whole datasets live on the training device as uint8 tensors and are augmented there in batches (see
``augment.py``), so the GPU is never waiting for a loader; mixed precision (bf16) and channels_last on CUDA.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .augment import AugmentConfig, augment_batch
from .family import as_family


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100
    img_size: int = 224
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 5
    label_smoothing: float = 0.1
    ema_decay: float = 0.998  # 0 disables the exponential moving average of the weights
    balance: bool = True  # class-weighted loss (weights ~ 1/sqrt(class frequency)) against imbalance
    backbone_lr_scale: float = 1.0  # lr multiplier for everything but the head (fine-tuning from --init)
    amp: bool = True  # bf16 autocast on CUDA (ignored on the CPU)
    channels_last: bool = True
    compile: bool = False
    compile_mode: str | None = None  # torch.compile's mode when compile is set, e.g. "reduce-overhead" (CUDA graphs)
    time_budget: float = 0.0  # seconds; >0: after epoch 2, cut the epoch count so training ends in time
    stop_after: float = 0.0  # seconds; >0: stop after the epoch that passes it, to be resumed with start_epoch
    start_epoch: int = 0  # resume a stopped run: epochs already trained; the schedule goes on from there
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FitResult:
    model: nn.Module  # the selected weights (best Valid epoch, EMA when enabled), eval mode
    best_epoch: int
    epochs: int  # the last epoch trained, resumed ones included (< asked after a time budget or stop_after)
    history: list[dict[str, float]]
    images_per_s: float  # training throughput, augmentation included, median over epochs
    seconds: float
    finished: bool = True  # False when stop_after ended the run before its last epoch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but no CUDA GPU is available")
    return device


def device_name(device: torch.device) -> str:
    """The GPU's name, or "CPU": what cards and benchmarks record as the hardware."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def _autocast(device: torch.device, enabled: bool) -> Any:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


def head_parameters(model: nn.Module) -> set[int]:
    return {id(p) for p in as_family(model).get_classifier().parameters()}


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on norms and biases; the backbone may get a scaled learning rate."""
    head = head_parameters(model)
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for param in model.parameters():
        if param.requires_grad:
            groups.setdefault((id(param) in head, param.ndim <= 1), []).append(param)
    return torch.optim.AdamW([
        {"params": params, "weight_decay": 0.0 if no_decay else config.weight_decay,
         "lr_scale": 1.0 if is_head else config.backbone_lr_scale}
        for (is_head, no_decay), params in groups.items()
    ], lr=config.lr)


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * progress))


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    counts = torch.bincount(labels, minlength=num_classes).float().clamp(min=1)
    weights = (counts.sum() / (num_classes * counts)).sqrt()
    return weights / weights.mean()


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, *, batch_size: int = 64, amp: bool = True) -> torch.Tensor:
    """(N, K) probabilities for normalised float images (N, 3, H, W), computed on the model's device."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device, non_blocking=True)
        if device.type == "cuda":
            batch = batch.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp):
            out.append(model(batch).float().softmax(1).cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


class _Progress:
    """One progress line per epoch: a live bar on a terminal, a plain line per epoch in logs."""

    def __init__(self, epochs: int, log: Callable[[str], None]) -> None:
        self.epochs, self.log, self.start = epochs, log, time.perf_counter()
        self.live = sys.stderr.isatty()

    def step(self, epoch: int, step: int, steps: int, loss: float, acc: float, ips: float) -> None:
        if self.live:
            done = int(20 * (step + 1) / steps)
            sys.stderr.write(f"\repoch {epoch + 1}/{self.epochs} [{'#' * done}{'.' * (20 - done)}] "
                             f"loss {loss:.3f} acc {acc:.3f} {ips:,.0f} img/s")
            sys.stderr.flush()

    def epoch_done(self, epoch: int, stats: dict[str, float]) -> None:
        elapsed = time.perf_counter() - self.start
        eta = elapsed / (epoch + 1) * (self.epochs - epoch - 1)
        if self.live:
            sys.stderr.write("\r\033[K")
        parts = " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in stats.items())
        self.log(f"epoch {epoch + 1}/{self.epochs} {parts} eta {eta:.0f}s")


def fit(
    model: nn.Module, train_images: torch.Tensor, train_labels: torch.Tensor, num_classes: int,
    config: TrainConfig, *, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device,
    valid_images: torch.Tensor | None = None, valid_labels: torch.Tensor | None = None,
    log: Callable[[str], None] = print, log_every: int = 1,
) -> FitResult:
    """Train ``model`` on uint8 images; pick the epoch with the best Valid accuracy (lowest loss on ties).

    Args:
        train_images: (N, 3, S, S) uint8, S >= img_size (random-resized crops are taken from it).
        valid_images: (M, 3, img_size, img_size) normalised float, preprocessed exactly like inference.
    """
    seed_everything(config.seed)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    if config.start_epoch:
        if config.time_budget > 0:
            raise ValueError("a time budget cannot shorten a resumed schedule; use stop_after to stop again")
        generator.manual_seed(config.seed + config.start_epoch)  # a seeded stream of its own for the rest
    model = model.to(device)
    if config.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    train_images, train_labels = train_images.to(device), train_labels.to(device)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True) \
        if config.ema_decay > 0 else None
    step_model = cast(nn.Module, torch.compile(model, mode=config.compile_mode)) if config.compile else model
    optimizer = make_optimizer(model, config)
    weights = class_weights(train_labels, num_classes).to(device) if config.balance else None
    batch = min(config.batch_size, len(train_images))
    steps_per_epoch = max(1, len(train_images) // batch)  # drop the last partial batch: BN needs > 1 image
    total_steps = steps_per_epoch * config.epochs
    warmup = steps_per_epoch * config.warmup_epochs
    progress = _Progress(config.epochs, log)
    history: list[dict[str, float]] = []
    best: tuple[float, float] = (-1.0, math.inf)
    best_state, best_epoch, speeds = None, 0, []
    started = time.perf_counter()
    size = (config.img_size, config.img_size)
    epochs = config.epochs
    epoch = config.start_epoch
    finished = True
    while epoch < epochs:
        model.train()
        order = torch.randperm(len(train_images), generator=generator, device=device)
        epoch_start, seen, loss_sum, correct = time.perf_counter(), 0, torch.zeros((), device=device), \
            torch.zeros((), device=device)
        for step in range(steps_per_epoch):
            global_step = epoch * steps_per_epoch + step
            for group in optimizer.param_groups:
                group["lr"] = lr_at(global_step, total_steps, warmup, config.lr) * group["lr_scale"]
            index = order[step * batch:(step + 1) * batch]
            inputs, targets = augment_batch(
                train_images[index], train_labels[index], num_classes, size, config.augment, mean, std, generator,
                label_smoothing=config.label_smoothing)
            if config.channels_last and device.type == "cuda":
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            with _autocast(device, config.amp):
                logits = step_model(inputs).float()
            log_probs = F.log_softmax(logits, 1)
            per_class = -(targets * log_probs)
            if weights is not None:
                per_class = per_class * weights
            loss = per_class.sum(1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if ema is not None:
                ema.update_parameters(model)
            loss_sum += loss.detach() * len(index)
            correct += (logits.argmax(1) == targets.argmax(1)).sum()
            seen += len(index)
            if progress.live and (step % 5 == 0 or step == steps_per_epoch - 1):
                elapsed = time.perf_counter() - epoch_start
                progress.step(epoch, step, steps_per_epoch, loss_sum.item() / seen, correct.item() / seen,
                              seen / max(elapsed, 1e-9))
        if device.type == "cuda":
            torch.cuda.synchronize()
        speed = seen / (time.perf_counter() - epoch_start)
        if epoch > config.start_epoch:  # the first epoch pays for warm-up / compilation
            speeds.append(speed)
        stats: dict[str, float] = {"loss": loss_sum.item() / seen, "acc": correct.item() / seen, "img_s": speed}
        selected = ema.module if ema is not None else model
        if valid_images is not None and valid_labels is not None and len(valid_images):
            probs = predict(selected, valid_images, amp=config.amp)
            stats["valid_acc"] = float((probs.argmax(1) == valid_labels).float().mean())
            stats["valid_loss"] = float(F.nll_loss(probs.clamp_min(1e-8).log(), valid_labels))
            score = (stats["valid_acc"], -stats["valid_loss"])
            if epoch >= config.warmup_epochs and score > (best[0], -best[1]):
                best, best_epoch = (score[0], -score[1]), epoch + 1
                best_state = copy.deepcopy(selected.state_dict())
        history.append({"epoch": epoch + 1, **stats})
        if config.time_budget > 0 and epoch == 1:  # epoch 1 paid for warm-up/compilation: time epoch 2
            per_epoch = time.perf_counter() - epoch_start
            fitting = 2 + int((config.time_budget - (time.perf_counter() - started)) / per_epoch)
            if fitting < epochs:
                epochs = max(fitting, config.warmup_epochs + 1, 3)
                total_steps = steps_per_epoch * epochs  # the cosine schedule ends with the shortened run
                progress.epochs = epochs
                log(f"time budget {config.time_budget:.0f}s: training {epochs} epochs instead of {config.epochs}")
        if (epoch + 1) % log_every == 0 or epoch + 1 == epochs:
            progress.epoch_done(epoch, stats)
        epoch += 1
        if 0 < config.stop_after <= time.perf_counter() - started and epoch < epochs:
            log(f"stopped after epoch {epoch} of {epochs} (stop_after {config.stop_after:.0f}s): resume to finish")
            finished = False
            break
    final = ema.module if ema is not None else model
    if best_state is not None:
        final.load_state_dict(best_state)
    else:
        best_epoch = epoch
    final = final.to(memory_format=torch.contiguous_format).eval()
    if not speeds:  # a one-epoch run: its only epoch, warm-up included, is all there is to report
        speeds = [row["img_s"] for row in history]
    return FitResult(final, best_epoch, epoch, history, float(np.median(speeds)) if speeds else 0.0,
                     time.perf_counter() - started, finished)


def bare_throughput(model: nn.Module, batch_size: int, img_size: int, device: torch.device, *, amp: bool = True,
                    channels_last: bool = True, compile: bool = False, compile_mode: str | None = None,
                    steps: int = 20) -> float:
    """Images/s of forward + backward + optimizer step on random tensors: the ceiling for training speed.

    ``compile_mode`` is ``torch.compile``'s mode (e.g. "reduce-overhead": CUDA graphs) when ``compile`` is set.
    """
    model = copy.deepcopy(model).to(device).train()
    if channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model, mode=compile_mode) if compile else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch_size, 3, img_size, img_size, device=device)
    if channels_last and device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch_size,), device=device)

    def one() -> None:
        with _autocast(device, amp):
            loss = F.cross_entropy(step_model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch_size * steps / (time.perf_counter() - start)
