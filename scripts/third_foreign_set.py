"""A third held-out set of pictures that are not skin photos, built before round 3 of the familiarity choice.

Built on 2026-11-30, after round 2 had shipped and before any number of round 3 (``outlier_exposure_study.py``,
synthetic outliers) was computed, to judge round 3 on pictures no choice ever saw and of kinds the synthetic
outlier pictures (``synthetic_outliers.py``: shapes, noise, gradients, stripes, text, line art) do not draw.
No downloads: pictures that ship inside the pinned Gradio and scikit-image and are in neither earlier set:

- faces (a selfie is what an audience tries first): eight of scikit-image's small grayscale LFW faces that the
  second set does not use;
- photos: Gradio's two cheetahs, lion, tower and toy figure;
- pictures: a frame of Gradio's app screenshot GIF, the Hugging Face logo, Gradio's logo and its small bus icon.

Every base gives the same four variants as the first set (whole, centre crop, corner crop, 48-px copy): 17 bases,
68 pictures. Nothing here may be used to choose or fit a detector.

    python scripts/third_foreign_set.py --out .cache/third_foreign      # writes the PNGs (to look at them)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from foreign_images import named_variants, write_pictures
from PIL import Image
from second_foreign_set import _lfw

FACES = (5, 15, 30, 40, 60, 70, 90, 99)  # the second set uses 0, 25, 50, 75; 100 and above are not faces


def _gradio_file(name: str) -> Path:
    import gradio

    return Path(gradio.__file__).parent / "media_assets" / "images" / name


def _gradio(name: str) -> Image.Image:
    with Image.open(_gradio_file(name)) as image:
        if image.mode in ("RGBA", "LA", "P"):  # transparent logos and icons on white, as a person would see them
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return image.convert("RGB")


def _upscaled(image: Image.Image, side: int = 224) -> Image.Image:
    """Tiny icons at a size a person would upload (nearest neighbour keeps their hard edges)."""
    return image.resize((side, side), Image.Resampling.NEAREST) if max(image.size) < side else image


def _screenshot_frame() -> Image.Image:
    with Image.open(_gradio_file("screenshot.gif")) as gif:
        gif.seek(10)
        return gif.convert("RGB")


_BASES: dict[str, Callable[[], Image.Image]] = {
    **{f"lfw_face_{index}": (lambda index=index: _lfw(index)) for index in FACES},
    "cheetah": lambda: _gradio("cheetah.jpg"),
    "cheetah_close": lambda: _gradio("cheetah1.jpg"),
    "lion": lambda: _gradio("lion.jpg"),
    "tower": lambda: _gradio("tower.jpg"),
    "toy_figure": lambda: _gradio("groot.jpeg"),
    "gradio_logo": lambda: _upscaled(_gradio("logo.png")),
    "app_screenshot": _screenshot_frame,
    "hf_logo": lambda: _upscaled(_gradio("hf-logo_transpng.png")),
    "bus_icon": lambda: _upscaled(_gradio("bus.png")),
}
BASES = tuple(sorted(_BASES))


def third_foreign_images() -> list[tuple[str, Image.Image]]:
    """``(name, RGB image)`` for every variant of every base."""
    out = []
    for base in BASES:
        out += named_variants(base, _BASES[base]())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    write_pictures(third_foreign_images(), args.out)
    print(f"{len(BASES)} bases, {len(BASES) * 4} pictures in {args.out}")


if __name__ == "__main__":
    main()
