"""A small, varied set of photos that are neither skin photos nor natural-image-corpus photos (no downloads).

Bases: the sample images that ship inside scikit-image (documents and text, grayscale photos, microscopy,
astronomy, a retina, textures, synthetic patterns, a logo, everyday colour photos) and charts, a slide and a
text page rendered with matplotlib. Each base gives four variants: the whole image, a centre crop (half the
side), a corner crop (60 %) and a low-resolution copy (downscaled to 48 px and blown up again), so the set also
covers crops and rescales. Bases are split in two halves with a fixed seed: ``dev`` (used to choose the
method) and ``report`` (held out: only measured).
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SKIMAGE_BASES = (
    "astronaut", "binary_blobs", "brick", "camera", "cell", "checkerboard", "chelsea", "clock", "coffee", "coins",
    "colorwheel", "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo",
    "microaneurysms", "moon", "page", "retina", "rocket", "shepp_logan_phantom", "text",
)
CHART_BASES = ("line_chart", "bar_chart", "scatter_plot", "pie_chart", "histogram", "heatmap_chart", "text_page",
               "slide", "table", "contour_plot")


def _to_rgb(array: np.ndarray) -> Image.Image:
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        low, high = float(array.min()), float(array.max())
        array = ((array - low) / (high - low or 1.0) * 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 4:
        return Image.fromarray(array, "RGBA").convert("RGB")
    return Image.fromarray(array).convert("RGB")


def _skimage_image(name: str) -> Image.Image:
    import skimage.data

    return _to_rgb(getattr(skimage.data, name)())


def _line_chart(ax: Any, rng: np.random.Generator) -> None:
    x = np.arange(30)
    for k in range(3):
        ax.plot(x, np.cumsum(rng.normal(size=30)) + 3 * k, label=f"series {k}")
    ax.legend()
    ax.set_title("Weekly cases")


def _contour_plot(ax: Any, rng: np.random.Generator) -> None:
    x, y = np.meshgrid(np.linspace(-3, 3, 80), np.linspace(-3, 3, 80))
    ax.contourf(x, y, np.sin(x) * np.cos(y), 12, cmap="coolwarm")


def _text_page(ax: Any, rng: np.random.Generator) -> None:
    ax.axis("off")
    words = "the model was trained on photos of skin lesions and reads every image as one of them".split()
    ax.text(0, 1, "\n".join(" ".join(rng.choice(words, 9)) for _ in range(14)), va="top", fontsize=7,
            family="serif")


def _slide(ax: Any, rng: np.random.Generator) -> None:
    ax.axis("off")
    ax.text(0.05, 0.85, "Results", fontsize=20, weight="bold")
    for i, item in enumerate(["Accuracy 77 %", "Five folds", "Pretrained backbone"]):
        ax.text(0.08, 0.6 - 0.17 * i, f"• {item}", fontsize=13)


def _table(ax: Any, rng: np.random.Generator) -> None:
    ax.axis("off")
    cells = [[f"{v:.2f}" for v in rng.random(4)] for _ in range(8)]
    ax.table(cellText=cells, colLabels=["w", "x", "y", "z"], loc="center")


_CHARTS: dict[str, Callable[[Any, np.random.Generator], None]] = {
    "line_chart": _line_chart,
    "bar_chart": lambda ax, rng: ax.bar(list("ABCDEF"), rng.integers(3, 20, 6), color="tab:orange"),
    "scatter_plot": lambda ax, rng: ax.scatter(rng.normal(size=200), rng.normal(size=200), s=8, c=rng.random(200)),
    "pie_chart": lambda ax, rng: ax.pie(rng.integers(1, 10, 5), labels=list("abcde"), autopct="%1.0f%%"),
    "histogram": lambda ax, rng: ax.hist(rng.normal(size=500), bins=25, color="tab:green"),
    "heatmap_chart": lambda ax, rng: ax.imshow(rng.random((12, 12)), cmap="magma"),
    "contour_plot": _contour_plot,
    "text_page": _text_page,
    "slide": _slide,
    "table": _table,
}


def _chart(name: str) -> Image.Image:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(sum(map(ord, name)))
    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    _CHARTS[name](ax, rng)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    buffer.seek(0)
    with Image.open(buffer) as image:
        return image.convert("RGB")


def _variants(image: Image.Image) -> list[tuple[str, Image.Image]]:
    width, height = image.size
    centre = image.crop((width // 4, height // 4, width // 4 + width // 2, height // 4 + height // 2))
    corner = image.crop((0, 0, int(width * 0.6), int(height * 0.6)))
    low = image.resize((48, 48), Image.Resampling.BILINEAR).resize((width, height), Image.Resampling.BILINEAR)
    return [("whole", image), ("centre_crop", centre), ("corner_crop", corner), ("low_res", low)]


def named_variants(base: str, image: Image.Image) -> list[tuple[str, Image.Image]]:
    """``(base/variant, picture)`` for the four variants of one base picture (every foreign set uses these)."""
    return [(f"{base}/{variant}", picture) for variant, picture in _variants(image)]


def write_pictures(pictures: list[tuple[str, Image.Image]], out: Path) -> None:
    """Save ``(base/variant, picture)`` pairs as ``out/base__variant.png`` (to look at a set)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, image in pictures:
        image.save(out / f"{name.replace('/', '__')}.png", format="PNG")


def foreign_bases(part: str = "all", *, seed: int = 0) -> list[str]:
    """Base names of the ``dev`` half, the ``report`` half or ``all`` (a fixed, seeded split)."""
    bases = sorted(SKIMAGE_BASES + CHART_BASES)
    random.Random(seed).shuffle(bases)
    half = len(bases) // 2
    return {"dev": sorted(bases[:half]), "report": sorted(bases[half:]), "all": sorted(bases)}[part]


def foreign_images(part: str = "all", *, seed: int = 0) -> list[tuple[str, Image.Image]]:
    """``(name, RGB image)`` for every variant of every base in ``part``."""
    out = []
    for base in foreign_bases(part, seed=seed):
        image = _chart(base) if base in CHART_BASES else _skimage_image(base)
        out += named_variants(base, image)
    return out
