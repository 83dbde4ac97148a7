"""The training loop shared by ``senet.train`` (fine-tuning / from scratch) and ``senet.pretrain``.

Whole datasets live on the training device as uint8 tensors and are augmented there in batches (see
``augment.py``), so the GPU is never waiting for a loader; mixed precision (bf16) and channels_last on CUDA.
Under torchrun the same loop runs in every process with DistributedDataParallel (see ``distributed.py``).
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
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .augment import AugmentConfig, augment_rows, draw_batch
from .distributed import (
    SINGLE,
    Distributed,
    all_reduce_sum,
    broadcast_buffers,
    broadcast_value,
    eval_chunk,
    gather_rows,
    main_only,
    per_process_batch,
    shard_rows,
)
from .family import as_family
from .sync_batchnorm import convert_sync_batchnorm, revert_sync_batchnorm


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
def predict(model: nn.Module, images: torch.Tensor, *, batch_size: int = 64, amp: bool = True,
            dist: Distributed = SINGLE) -> torch.Tensor:
    """(N, K) probabilities for normalised float images (N, 3, H, W), computed on the model's device.

    In a multi-process run every process predicts its own contiguous share and every process gets all N rows.
    """
    device = next(model.parameters()).device
    share = eval_chunk(len(images), dist) if dist.active else slice(0, len(images))
    was_training = model.training
    model.eval()
    out = []
    for start in range(share.start, share.stop, batch_size):
        batch = images[start:min(start + batch_size, share.stop)].to(device, non_blocking=True)
        if device.type == "cuda":
            batch = batch.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp):
            out.append(model(batch).float().softmax(1))
    if dist.active and not out and len(images):  # fewer rows than processes: an empty share of the right width
        out.append(model(images[:1].to(device)).float()[:0])
    model.train(was_training)
    probs = torch.cat(out) if out else torch.empty(0, device=device)
    return gather_rows(probs, len(images), dist, device).cpu() if dist.active else probs.cpu()


class _Progress:
    """One progress line per epoch: a live bar on a terminal, a plain line per epoch in logs."""

    def __init__(self, epochs: int, log: Callable[[str], None], *, live: bool = True) -> None:
        self.epochs, self.log, self.start = epochs, log, time.perf_counter()
        self.live = live and sys.stderr.isatty()

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


@dataclass
class _Schedule:
    """How many steps and epochs the run takes; a time budget may shorten it after epoch 2."""

    batch: int  # the global batch
    steps_per_epoch: int
    epochs: int
    warmup_steps: int

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs


class _Fit:
    """One call of :func:`fit`, as named steps: set up, train an epoch, validate, adjust the schedule, finish."""

    def __init__(self, model: nn.Module, train_images: torch.Tensor, train_labels: torch.Tensor, num_classes: int,
                 config: TrainConfig, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device,
                 dist: Distributed, log: Callable[[str], None]) -> None:
        self.config, self.num_classes, self.mean, self.std, self.device, self.dist = \
            config, num_classes, mean, std, device, dist
        self.log = main_only(log, dist)
        self.generator = self._seeded_generator()
        self.model, self.step_model, self.ema = self._prepare_model(model)
        self.optimizer = make_optimizer(self.model, config)
        self.train_images, self.train_labels = train_images.to(device), train_labels.to(device)
        self.weights = class_weights(self.train_labels, num_classes).to(device) if config.balance else None
        self.schedule = self._schedule(len(train_images))
        self.rows = shard_rows(self.schedule.batch, dist, device)
        self.history: list[dict[str, float]] = []
        self.best: tuple[float, float] = (-1.0, math.inf)
        self.best_state: dict[str, Any] | None = None
        self.best_epoch = 0
        self.speeds: list[float] = []
        self.started = time.perf_counter()

    def _seeded_generator(self) -> torch.Generator:
        config = self.config
        seed_everything(config.seed)
        generator = torch.Generator(device=self.device).manual_seed(config.seed)
        if config.start_epoch:
            if config.time_budget > 0:
                raise ValueError("a time budget cannot shorten a resumed schedule; use stop_after to stop again")
            generator.manual_seed(config.seed + config.start_epoch)  # a seeded stream of its own for the rest
        return generator

    def _prepare_model(self, model: nn.Module) -> tuple[nn.Module, nn.Module, AveragedModel | None]:
        """The model on its device; the EMA copy; the module that runs the steps (DDP-wrapped, compiled)."""
        config, device = self.config, self.device
        model = model.to(device)
        if config.channels_last and device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        if self.dist.active and self.dist.sync_bn:
            model = convert_sync_batchnorm(model, device)
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True) \
            if config.ema_decay > 0 else None
        step_model: nn.Module = model
        if self.dist.active:
            step_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if config.compile:
            step_model = cast(nn.Module, torch.compile(step_model, mode=config.compile_mode))
        return model, step_model, ema

    def _schedule(self, images: int) -> _Schedule:
        world = self.dist.world_size
        per_process_batch(self.config.batch_size, world)  # the global batch must split evenly
        # At most the dataset (less what does not split among the processes); the last partial batch is dropped
        # (BatchNorm needs more than one image).
        batch = min(self.config.batch_size, images - images % world)
        if batch < 1:
            raise ValueError(f"{images} training images cannot be shared among {world} processes.")
        steps = max(1, images // batch)
        return _Schedule(batch, steps, self.config.epochs, steps * self.config.warmup_epochs)

    def _step(self, epoch: int, step: int, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """One optimizer step on this process's rows of global batch ``step``: (loss, correct, images)."""
        config, schedule = self.config, self.schedule
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(epoch * schedule.steps_per_epoch + step, schedule.total_steps,
                                schedule.warmup_steps, config.lr) * group["lr_scale"]
        index = order[step * schedule.batch:(step + 1) * schedule.batch]
        size = (config.img_size, config.img_size)
        # The whole global batch's random choices are drawn on every process (same seeded stream), each process
        # augments its own rows: together they train on exactly the batch one process would.
        draw = draw_batch(len(index), size, config.augment, self.generator, self.device)
        inputs, targets = augment_rows(self.train_images[index], self.train_labels[index], self.rows,
                                       self.num_classes, size, draw, self.mean, self.std,
                                       label_smoothing=config.label_smoothing)
        if config.channels_last and self.device.type == "cuda":
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with _autocast(self.device, config.amp):
            logits = self.step_model(inputs).float()
        per_class = -(targets * F.log_softmax(logits, 1))
        if self.weights is not None:
            per_class = per_class * self.weights
        loss = per_class.sum(1).mean()  # DDP averages the processes' gradients: the global batch's mean
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return loss.detach() * len(inputs), (logits.argmax(1) == targets.argmax(1)).sum(), len(inputs)

    def train_epoch(self, epoch: int, progress: _Progress) -> dict[str, float]:
        """One pass over the epoch's seeded permutation: loss, accuracy and images/s of the whole run."""
        self.model.train()
        steps = self.schedule.steps_per_epoch
        order = torch.randperm(len(self.train_images), generator=self.generator, device=self.device)
        start = time.perf_counter()
        totals = torch.zeros(3, device=self.device)  # loss sum, correct, images (this process's)
        for step in range(steps):
            loss, correct, seen = self._step(epoch, step, order)
            totals[0] += loss
            totals[1] += correct
            totals[2] += seen
            if progress.live and (step % 5 == 0 or step == steps - 1):
                elapsed = time.perf_counter() - start
                n = totals[2].item()
                progress.step(epoch, step, steps, totals[0].item() / n, totals[1].item() / n,
                              n * self.dist.world_size / max(elapsed, 1e-9))
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        speed = steps * self.schedule.batch / (time.perf_counter() - start)
        loss_sum, correct, seen = all_reduce_sum(totals, self.dist).tolist()
        return {"loss": loss_sum / seen, "acc": correct / seen, "img_s": speed}

    @property
    def selected(self) -> nn.Module:
        """The weights that are validated and returned: the EMA when enabled."""
        return self.ema.module if self.ema is not None else self.model

    def validate(self, epoch: int, images: torch.Tensor, labels: torch.Tensor, stats: dict[str, float]) -> None:
        """Add Valid accuracy and loss to ``stats``; keep the weights of the best epoch after the warm-up."""
        broadcast_buffers(self.selected, self.dist)  # every process evaluates the same model
        probs = predict(self.selected, images, amp=self.config.amp, dist=self.dist)
        stats["valid_acc"] = float((probs.argmax(1) == labels).float().mean())
        stats["valid_loss"] = float(F.nll_loss(probs.clamp_min(1e-8).log(), labels))
        score = (stats["valid_acc"], -stats["valid_loss"])
        if epoch >= self.config.warmup_epochs and score > (self.best[0], -self.best[1]):
            self.best, self.best_epoch = (score[0], -score[1]), epoch + 1
            self.best_state = copy.deepcopy(self.selected.state_dict())

    def fit_time_budget(self, epoch_seconds: float, progress: _Progress) -> None:
        """After epoch 2 (epoch 1 paid for warm-up and compilation), cut the epochs to what fits the budget."""
        config, schedule = self.config, self.schedule
        fitting = 2 + int((config.time_budget - (time.perf_counter() - self.started)) / epoch_seconds)
        epochs = broadcast_value(max(fitting, config.warmup_epochs + 1, 3) if fitting < schedule.epochs
                                 else schedule.epochs, self.dist)  # rank 0's clock decides for all
        if epochs < schedule.epochs:
            schedule.epochs = epochs  # the cosine schedule ends with the shortened run
            progress.epochs = epochs
            self.log(f"time budget {config.time_budget:.0f}s: training {epochs} epochs instead of {config.epochs}")

    def should_stop(self, epoch: int) -> bool:
        """stop_after has passed (on rank 0's clock) and epochs remain."""
        passed = 0 < self.config.stop_after <= time.perf_counter() - self.started
        stop = bool(broadcast_value(passed, self.dist)) and epoch < self.schedule.epochs
        if stop:
            self.log(f"stopped after epoch {epoch} of {self.schedule.epochs} (stop_after "
                     f"{self.config.stop_after:.0f}s): resume to finish")
        return stop

    def finish(self, epoch: int, finished: bool) -> FitResult:
        """The best epoch's weights (or the last), plain BatchNorm, contiguous and in eval mode."""
        final = self.selected
        if self.best_state is not None:
            final.load_state_dict(self.best_state)
        best_epoch = self.best_epoch if self.best_state is not None else epoch
        final = revert_sync_batchnorm(final).to(memory_format=torch.contiguous_format).eval()
        speeds = self.speeds or [row["img_s"] for row in self.history]  # a one-epoch run: its only epoch
        return FitResult(final, best_epoch, epoch, self.history, float(np.median(speeds)) if speeds else 0.0,
                         time.perf_counter() - self.started, finished)


def fit(
    model: nn.Module, train_images: torch.Tensor, train_labels: torch.Tensor, num_classes: int,
    config: TrainConfig, *, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device,
    valid_images: torch.Tensor | None = None, valid_labels: torch.Tensor | None = None,
    log: Callable[[str], None] = print, log_every: int = 1, dist: Distributed = SINGLE,
) -> FitResult:
    """Train ``model`` on uint8 images; pick the epoch with the best Valid accuracy (lowest loss on ties).

    With ``dist`` from :func:`senet.distributed.start`, every process of a torchrun run calls this with the same
    data and gets the same result; ``config.batch_size`` stays the global batch.

    Args:
        train_images: (N, 3, S, S) uint8, S >= img_size (random-resized crops are taken from it).
        valid_images: (M, 3, img_size, img_size) normalised float, preprocessed exactly like inference.

    Raises:
        ValueError: a time budget with a resumed schedule, or a global batch that does not split among processes.
    """
    run = _Fit(model, train_images, train_labels, num_classes, config, mean, std, device, dist, log)
    progress = _Progress(config.epochs, run.log, live=dist.is_main)
    validating = valid_images is not None and valid_labels is not None and len(valid_images) > 0
    epoch, finished = config.start_epoch, True
    while epoch < run.schedule.epochs:
        epoch_start = time.perf_counter()
        stats = run.train_epoch(epoch, progress)
        if epoch > config.start_epoch:  # the first epoch pays for warm-up / compilation
            run.speeds.append(stats["img_s"])
        if validating:
            assert valid_images is not None and valid_labels is not None
            run.validate(epoch, valid_images, valid_labels, stats)
        run.history.append({"epoch": epoch + 1, **stats})
        if config.time_budget > 0 and epoch == 1:
            run.fit_time_budget(time.perf_counter() - epoch_start, progress)
        if (epoch + 1) % log_every == 0 or epoch + 1 == run.schedule.epochs:
            progress.epoch_done(epoch, stats)
        epoch += 1
        if run.should_stop(epoch):
            finished = False
            break
    return run.finish(epoch, finished)


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
