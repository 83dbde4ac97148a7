"""Batched data augmentation that runs on the training device (GPU or CPU), for uint8 image tensors.

One ``grid_sample`` per batch does random-resized crop, rotation and flips; colour jitter (brightness,
contrast, saturation, hue: skin-tone variety) is a per-image 3x3 colour matrix; mixup / cutmix mix the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    scale: tuple[float, float] = (0.35, 1.0)  # crop area as a fraction of the image
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # crop aspect ratio
    rotation: float = 30.0  # degrees, uniform in [-rotation, rotation]
    hflip: float = 0.5
    vflip: float = 0.5  # lesion photos have no canonical up
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25
    hue: float = 0.04  # fraction of a full turn
    mix_prob: float = 0.5  # probability that a batch is mixed (mixup or cutmix, equally likely)
    mixup_alpha: float = 0.2
    cutmix_alpha: float = 1.0


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=device) * (high - low) + low


@dataclass(frozen=True)
class BatchDraw:
    """The random choices that augment one (global) batch of B images, drawn before any image is touched.

    Drawing first and applying later lets each process of a distributed run augment only its own rows (and their
    mix partners) exactly as one process augments the whole batch: same numbers, same images.
    """

    theta: torch.Tensor  # (B, 2, 3) affine map output -> input: crop, rotation, flips
    colour: torch.Tensor  # (B, 3, 3) hue / saturation matrix
    brightness: torch.Tensor  # (B,)
    contrast: torch.Tensor  # (B,)
    partner: torch.Tensor | None = None  # (B,) mix partner of each row, None when the batch is not mixed
    lam: float = 1.0  # weight of the row itself (cutmix: before the box is clipped to the image)
    box: tuple[int, int, int, int] | None = None  # cutmix (y0, y1, x0, x1) at the output size; None: mixup


def _draw_geometry(b: int, cfg: AugmentConfig, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(B, 2, 3) random-resized crop + rotation + flips, in the normalised coordinates of ``affine_grid``."""
    area = _uniform(b, *cfg.scale, generator, device)
    log_ratio = _uniform(b, math.log(cfg.ratio[0]), math.log(cfg.ratio[1]), generator, device)
    aspect = torch.exp(log_ratio)
    half_w = torch.sqrt(area * aspect).clamp(max=1.0)  # crop half-size in normalised [-1, 1] units
    half_h = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = _uniform(b, -1.0, 1.0, generator, device) * (1 - half_w)
    cy = _uniform(b, -1.0, 1.0, generator, device) * (1 - half_h)
    angle = _uniform(b, -cfg.rotation, cfg.rotation, generator, device) * math.pi / 180
    flip_x = torch.where(torch.rand(b, generator=generator, device=device) < cfg.hflip, -1.0, 1.0)
    flip_y = torch.where(torch.rand(b, generator=generator, device=device) < cfg.vflip, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    return torch.stack([  # input = R(angle) @ diag(half_w * flip_x, half_h * flip_y) @ output + centre
        torch.stack([cos * half_w * flip_x, -sin * half_h * flip_y, cx], 1),
        torch.stack([sin * half_w * flip_x, cos * half_h * flip_y, cy], 1),
    ], 1)


def _draw_colour(b: int, cfg: AugmentConfig, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(B, 3, 3) hue rotation and saturation, acting on the chroma plane of YIQ."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=device)
    from_yiq = torch.linalg.inv(to_yiq)
    hue = _uniform(b, -cfg.hue, cfg.hue, generator, device) * 2 * math.pi
    sat = _uniform(b, 1 - cfg.saturation, 1 + cfg.saturation, generator, device)
    chroma = torch.zeros(b, 3, 3, device=device)
    chroma[:, 0, 0] = 1
    chroma[:, 1, 1] = sat * torch.cos(hue)
    chroma[:, 1, 2] = -sat * torch.sin(hue)
    chroma[:, 2, 1] = sat * torch.sin(hue)
    chroma[:, 2, 2] = sat * torch.cos(hue)
    return from_yiq @ chroma @ to_yiq


def draw_batch(b: int, size: tuple[int, int], cfg: AugmentConfig, generator: torch.Generator,
               device: torch.device) -> BatchDraw:
    """Every random choice for a batch of ``b`` images augmented to ``size``, in one fixed order on ``generator``."""
    theta = _draw_geometry(b, cfg, generator, device)
    colour = _draw_colour(b, cfg, generator, device)
    brightness = _uniform(b, 1 - cfg.brightness, 1 + cfg.brightness, generator, device)
    contrast = _uniform(b, 1 - cfg.contrast, 1 + cfg.contrast, generator, device)
    draw = BatchDraw(theta, colour, brightness, contrast)
    if cfg.mix_prob <= 0 or torch.rand(1, generator=generator, device=device).item() >= cfg.mix_prob:
        return draw
    partner = torch.randperm(b, generator=generator, device=device)
    use_cutmix = torch.rand(1, generator=generator, device=device).item() < 0.5
    alpha = cfg.cutmix_alpha if use_cutmix else cfg.mixup_alpha
    # Beta(alpha, alpha) from two Gammas, drawn on the seeded generator for determinism.
    gammas = torch._standard_gamma(torch.full((2,), alpha, device=device), generator=generator)
    lam = float(gammas[0] / gammas.sum())
    box = None
    if use_cutmix:
        h, w = size
        cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy = int(torch.randint(h, (1,), generator=generator, device=device))
        cx = int(torch.randint(w, (1,), generator=generator, device=device))
        box = (max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h), max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w))
    return BatchDraw(theta, colour, brightness, contrast, partner, lam, box)


def geometric(images: torch.Tensor, size: tuple[int, int], theta: torch.Tensor) -> torch.Tensor:
    """Crop + rotation + flips of a float (B, 3, H, W) batch to ``size`` in one resampling."""
    grid = F.affine_grid(theta, [images.shape[0], 3, *size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def colour(images: torch.Tensor, matrix: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor
           ) -> torch.Tensor:
    """Per-image colour matrix, contrast and brightness of a (B, 3, H, W) batch in [0, 1]."""
    out = torch.einsum("bij,bjhw->bihw", matrix, images)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * contrast[:, None, None, None] + mean
    return (out * brightness[:, None, None, None]).clamp(0, 1)


def mix(images: torch.Tensor, targets: torch.Tensor, partners: torch.Tensor, partner_targets: torch.Tensor,
        draw: BatchDraw) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or cutmix of rows with their partners (already augmented); ``targets`` are (B, K) probabilities."""
    lam = draw.lam
    if draw.box is not None:
        y0, y1, x0, x1 = draw.box
        h, w = images.shape[2:]
        images = images.clone()
        images[:, :, y0:y1, x0:x1] = partners[:, :, y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    else:
        images = lam * images + (1 - lam) * partners
    return images, lam * targets + (1 - lam) * partner_targets


def normalize(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    m = torch.tensor(mean, device=images.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=images.device).view(1, 3, 1, 1)
    return (images - m) / s


def augment_rows(
    images: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor, num_classes: int, size: tuple[int, int],
    draw: BatchDraw, mean: tuple[float, ...], std: tuple[float, ...], *, label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``rows`` of a drawn batch: uint8 (B, 3, H, W) + int labels -> normalised float rows and soft targets.

    Only the asked rows and their mix partners are resampled, so a process that owns B / N rows of a global batch
    does about B / N images' work (twice that when the batch is mixed) and gets exactly what one process gets.
    """
    needed = rows if draw.partner is None else torch.unique(torch.cat([rows, draw.partner[rows]]))
    x = images[needed].float().div_(255)
    x = colour(geometric(x, size, draw.theta[needed]), draw.colour[needed], draw.brightness[needed],
               draw.contrast[needed])
    targets = F.one_hot(labels[needed], num_classes).float()
    if label_smoothing:
        targets = targets * (1 - label_smoothing) + label_smoothing / num_classes
    if draw.partner is not None:
        position = torch.full((len(labels),), -1, dtype=torch.long, device=needed.device)
        position[needed] = torch.arange(len(needed), device=needed.device)
        own, other = position[rows], position[draw.partner[rows]]
        x, targets = mix(x[own], targets[own], x[other], targets[other], draw)
    return normalize(x, mean, std), targets


def augment_batch(
    images: torch.Tensor, labels: torch.Tensor, num_classes: int, size: tuple[int, int], cfg: AugmentConfig,
    mean: tuple[float, ...], std: tuple[float, ...], generator: torch.Generator, *, label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (B, 3, H, W) + int labels -> normalised float batch at ``size`` and (B, K) soft targets."""
    draw = draw_batch(images.shape[0], size, cfg, generator, images.device)
    rows = torch.arange(images.shape[0], device=images.device)
    return augment_rows(images, labels, rows, num_classes, size, draw, mean, std, label_smoothing=label_smoothing)
