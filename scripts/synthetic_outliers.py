"""Synthetic outlier pictures for outlier exposure: procedurally drawn, seeded, no downloads.

Outlier exposure generalises with the variety of its outliers (Hendrycks et al., ICLR 2019), and the dev outlier
sets are 400 dogs and 17 base pictures. Procedural pictures add variety no real corpus here has, in the spirit
of "Learning to see by looking at noise" (Baradad et al., NeurIPS 2021). Six kinds, one per picture, every
parameter drawn from the picture's own seed:

- ``dead_leaves``: tens to hundreds of overlapping discs, ellipses and rectangles (power-law sizes);
- ``spectral_noise``: colour noise with a 1/f^a spectrum (a from 0.5 to 3: from grain to clouds);
- ``gradient``: linear or radial blends of two to four colours, sometimes banded;
- ``stripes``: gratings, checks and grids at a random frequency, angle and pair of colours;
- ``text``: lines of random letters in DejaVu Sans / Serif / Mono at random sizes and colours;
- ``line_art``: strokes, curves and outlines on a light background.

Each is drawn at 56, 112 or 224 px and resized to 224 px, so resolution does not tell them apart.

    python scripts/synthetic_outliers.py --out .cache/outliers/synthetic --count 420
"""

from __future__ import annotations

import argparse
import string
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIDE = 224
COUNT = 420  # the set familiarity_features.py caches for round 3 (70 of each kind)
KINDS = ("dead_leaves", "spectral_noise", "gradient", "stripes", "text", "line_art")


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[return-value]


def _dead_leaves(rng: np.random.Generator, side: int) -> Image.Image:
    image = Image.new("RGB", (side, side), _colour(rng))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(30, 300))):
        radius = side * 0.02 * (1 - rng.random()) ** -0.9  # power law: a few large shapes, many small ones
        radius = min(radius, side * 0.6)
        x, y = rng.random(2) * side
        box = (x - radius, y - radius * rng.uniform(0.4, 1.6), x + radius, y + radius * rng.uniform(0.4, 1.6))
        shape = draw.ellipse if rng.random() < 0.6 else draw.rectangle
        shape(box, fill=_colour(rng))
    return image


def _spectral_noise(rng: np.random.Generator, side: int) -> Image.Image:
    exponent = rng.uniform(0.5, 3.0)
    fy, fx = np.meshgrid(np.fft.fftfreq(side), np.fft.fftfreq(side), indexing="ij")
    amplitude = 1 / np.maximum(np.hypot(fx, fy), 1 / side) ** exponent
    channels = []
    for _ in range(3):
        phase = np.exp(2j * np.pi * rng.random((side, side)))
        field = np.real(np.fft.ifft2(amplitude * phase))
        channels.append((field - field.min()) / (np.ptp(field) + 1e-12))
    mix = rng.random((3, 3)) if rng.random() < 0.5 else np.eye(3)  # correlated or independent channels
    pixels = np.einsum("ij,jhw->hwi", mix / mix.sum(1, keepdims=True), np.stack(channels))
    return Image.fromarray((pixels * 255).astype(np.uint8))


def _gradient(rng: np.random.Generator, side: int) -> Image.Image:
    y, x = np.mgrid[0:side, 0:side] / side
    if rng.random() < 0.5:
        angle = rng.uniform(0, np.pi)
        t = np.cos(angle) * x + np.sin(angle) * y
    else:
        cx, cy = rng.random(2)
        t = np.hypot(x - cx, y - cy)
    t = (t - t.min()) / (np.ptp(t) + 1e-12)
    if rng.random() < 0.4:
        t = np.floor(t * rng.integers(3, 12)) / 11  # banded
    stops = np.array([_colour(rng) for _ in range(int(rng.integers(2, 5)))], dtype=float)
    position = np.clip(t, 0, 1) * (len(stops) - 1)
    low = np.floor(position).astype(int).clip(0, len(stops) - 2)
    frac = (position - low)[..., None]
    return Image.fromarray((stops[low] * (1 - frac) + stops[low + 1] * frac).astype(np.uint8))


def _stripes(rng: np.random.Generator, side: int) -> Image.Image:
    y, x = np.mgrid[0:side, 0:side].astype(float)
    angle, frequency = rng.uniform(0, np.pi), rng.uniform(2, 40) / side
    u = np.cos(angle) * x + np.sin(angle) * y
    v = -np.sin(angle) * x + np.cos(angle) * y
    style = rng.integers(0, 3)
    if style == 0:
        t = 0.5 + 0.5 * np.sin(2 * np.pi * frequency * u)  # grating
    elif style == 1:
        t = ((np.floor(u * frequency) + np.floor(v * frequency)) % 2).astype(float)  # checks
    else:
        t = ((np.abs((u * frequency) % 1 - 0.5) < 0.08) | (np.abs((v * frequency) % 1 - 0.5) < 0.08)).astype(float)
    a, b = np.array(_colour(rng), float), np.array(_colour(rng), float)
    return Image.fromarray((a * (1 - t[..., None]) + b * t[..., None]).astype(np.uint8))


def _font(rng: np.random.Generator, size: int) -> ImageFont.FreeTypeFont:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    name = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf")[rng.integers(0, 4)]
    return ImageFont.truetype(str(folder / name), size)


def _text(rng: np.random.Generator, side: int) -> Image.Image:
    background = (255, 255, 255) if rng.random() < 0.5 else _colour(rng)
    image = Image.new("RGB", (side, side), background)
    draw = ImageDraw.Draw(image)
    size = max(6, int(side * rng.uniform(0.04, 0.2)))
    font, ink = _font(rng, size), (0, 0, 0) if rng.random() < 0.5 else _colour(rng)
    letters = string.ascii_letters + string.digits + " " * 12 + ".,;:"
    y = rng.uniform(-0.5, 0.5) * size
    while y < side:
        line = "".join(rng.choice(list(letters), int(rng.integers(5, 40))))
        draw.text((rng.uniform(-0.1, 0.2) * side, y), line, fill=ink, font=font)
        y += size * rng.uniform(1.1, 1.8)
    return image


def _line_art(rng: np.random.Generator, side: int) -> Image.Image:
    image = Image.new("RGB", (side, side), tuple(int(v) for v in rng.integers(200, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 40))):
        ink, width = _colour(rng) if rng.random() < 0.5 else (0, 0, 0), int(rng.integers(1, max(2, side // 30)))
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.line([tuple(p) for p in rng.random((int(rng.integers(2, 8)), 2)) * side], fill=ink, width=width)
        elif kind == 1:
            x, y, r = *(rng.random(2) * side), rng.uniform(0.02, 0.4) * side
            draw.ellipse((x - r, y - r, x + r, y + r), outline=ink, width=width)
        else:
            t = np.linspace(0, 1, 40)[:, None]
            p = rng.random((4, 2)) * side  # a cubic Bezier curve
            curve = (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t ** 2 * p[2] + t ** 3 * p[3]
            draw.line([tuple(q) for q in curve], fill=ink, width=width)
    return image


_DRAW: dict[str, Callable[[np.random.Generator, int], Image.Image]] = {
    "dead_leaves": _dead_leaves, "spectral_noise": _spectral_noise, "gradient": _gradient,
    "stripes": _stripes, "text": _text, "line_art": _line_art,
}


def synthetic_picture(index: int) -> tuple[str, Image.Image]:
    """The ``index``-th picture: its kind (cycling through KINDS) and a 224-px RGB image (seeded by ``index``)."""
    rng = np.random.default_rng(10_000 + index)
    kind = KINDS[index % len(KINDS)]
    side = int(rng.choice([56, 112, 224]))
    return kind, _DRAW[kind](rng, side).resize((SIDE, SIDE), Image.Resampling.BILINEAR)


def synthetic_pictures(count: int) -> list[tuple[str, Image.Image]]:
    """``(name, image)`` of the first ``count`` pictures."""
    out = []
    for index in range(count):
        kind, image = synthetic_picture(index)
        out.append((f"{index:04d}_{kind}", image))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--count", type=int, default=COUNT)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, image in synthetic_pictures(args.count):
        image.save(args.out / f"{name}.png")
    print(f"wrote {args.count} pictures to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
