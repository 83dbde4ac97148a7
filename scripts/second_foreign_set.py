"""A second held-out set of photos that are not skin photos, built from other sources than ``foreign_images.py``.

Built on 2026-11-30 after the round-2 familiarity head had been chosen and shipped, to measure it once more on
pictures no choice ever saw (no downloads: images that ship inside scikit-learn, matplotlib and scikit-image
but are not in the first set, and pictures drawn here with PIL and numpy instead of matplotlib charts):

- faces and portraits (a selfie is what an audience tries first): matplotlib's Grace Hopper portrait and four
  of scikit-image's small grayscale LFW faces;
- everyday photos outside Imagenette / Imagewoof: scikit-learn's temple and flower, scikit-image's motorcycle,
  matplotlib's present box, a frame of scikit-image's GIF;
- a brain MRI slice and two elevation maps (matplotlib's sample data), matplotlib's logo;
- drawn here: an app window, a code editor, a spreadsheet, a QR-like code, a Mandelbrot set, a Voronoi mosaic,
  pen scribbles on paper and smooth colour noise.

Every base gives the same four variants as the first set (whole, centre crop, corner crop, 48-px copy). Nothing
here may be used to choose or fit a detector.

    python scripts/second_foreign_set.py --out .cache/second_foreign      # writes the PNGs (to look at them)
"""

from __future__ import annotations

import argparse
import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
from foreign_images import _to_rgb, named_variants, write_pictures
from PIL import Image, ImageDraw, ImageFont


def _sample(name: str) -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / name


def _font(size: int, mono: bool = False) -> ImageFont.FreeTypeFont:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return ImageFont.truetype(str(folder / ("DejaVuSansMono.ttf" if mono else "DejaVuSans.ttf")), size)


def _lfw(index: int) -> Image.Image:
    import skimage.data

    face = skimage.data.lfw_subset()[index]
    return _to_rgb(face).resize((224, 224), Image.Resampling.BICUBIC)


def _sklearn(name: str) -> Image.Image:
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image(name)).convert("RGB")


def _mri() -> Image.Image:
    with gzip.open(_sample("s1045.ima.gz")) as handle:
        slice_ = np.frombuffer(handle.read(), np.uint16).reshape(256, 256)
    return _to_rgb(slice_.astype(np.float32))


def _elevation(name: str, key: str) -> Image.Image:
    from matplotlib import colormaps
    from matplotlib.colors import LightSource

    with np.load(_sample(name)) as data:
        z = np.asarray(data[key], dtype=np.float64)
    shaded = LightSource(azdeg=315, altdeg=45).shade(z, cmap=colormaps["gist_earth"], blend_mode="overlay")
    return _to_rgb((shaded[..., :3] * 255).astype(np.uint8))


def _gif_frame() -> Image.Image:
    import skimage

    with Image.open(Path(skimage.__file__).parent / "data" / "no_time_for_that_tiny.gif") as gif:
        gif.seek(min(5, gif.n_frames - 1))
        return gif.convert("RGB").resize((224, 224), Image.Resampling.BICUBIC)


def _app_window(rng: np.random.Generator) -> Image.Image:
    image = Image.new("RGB", (400, 300), (236, 236, 236))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 400, 28), fill=(60, 90, 160))
    draw.text((10, 6), "Settings", fill="white", font=_font(14))
    for row in range(5):
        y = 45 + row * 45
        draw.text((20, y), f"Option {row + 1}", fill="black", font=_font(13))
        draw.rectangle((150, y - 4, 370, y + 20), fill="white", outline=(150, 150, 150))
    draw.rounded_rectangle((270, 262, 380, 290), 6, fill=(40, 120, 220))
    draw.text((305, 268), "Save", fill="white", font=_font(13))
    return image


def _code_editor(rng: np.random.Generator) -> Image.Image:
    image = Image.new("RGB", (420, 300), (30, 30, 36))
    draw = ImageDraw.Draw(image)
    words = ["def", "return", "for", "in", "if", "model", "image", "x", "range", "import", "torch", "self"]
    colours = [(86, 156, 214), (206, 145, 120), (181, 206, 168), (220, 220, 170), (212, 212, 212)]
    for row in range(17):
        draw.text((6, 6 + row * 17), f"{row + 1:>3}", fill=(110, 110, 110), font=_font(12, mono=True))
        x = 40 + 16 * int(rng.integers(0, 3))
        for _ in range(int(rng.integers(2, 6))):
            word = str(rng.choice(words))
            draw.text((x, 6 + row * 17), word, fill=colours[int(rng.integers(len(colours)))], font=_font(12, True))
            x += 8 * (len(word) + 1)
    return image


def _spreadsheet(rng: np.random.Generator) -> Image.Image:
    image = Image.new("RGB", (420, 300), "white")
    draw = ImageDraw.Draw(image)
    for column in range(6):
        for row in range(14):
            box = (column * 70, row * 21, column * 70 + 70, row * 21 + 21)
            fill = (220, 230, 241) if row == 0 or column == 0 else "white"
            draw.rectangle(box, fill=fill, outline=(190, 190, 190))
            text = "ABCDEF"[column] if row == 0 else (str(row) if column == 0 else f"{rng.random() * 100:.1f}")
            draw.text((box[0] + 6, box[1] + 4), text, fill="black", font=_font(11))
    return image


def _qr_like(rng: np.random.Generator) -> Image.Image:
    cells = rng.random((29, 29)) < 0.5
    for r, c in ((0, 0), (0, 22), (22, 0)):  # the three finder squares
        cells[r:r + 7, c:c + 7] = False
        cells[r:r + 7, c] = cells[r:r + 7, c + 6] = cells[r, c:c + 7] = cells[r + 6, c:c + 7] = True
        cells[r + 2:r + 5, c + 2:c + 5] = True
    array = np.pad(~cells, 2, constant_values=True).astype(np.uint8) * 255
    return Image.fromarray(array).resize((264, 264), Image.Resampling.NEAREST).convert("RGB")


def _mandelbrot(rng: np.random.Generator) -> Image.Image:
    y, x = np.mgrid[-1.2:1.2:300j, -2.1:0.9:400j]
    c, z = x + 1j * y, np.zeros_like(x, dtype=complex)
    steps = np.zeros(x.shape)
    for step in range(60):
        inside = np.abs(z) <= 2
        z[inside] = z[inside] ** 2 + c[inside]
        steps[inside] = step
    from matplotlib import colormaps

    return _to_rgb((colormaps["twilight"](steps / steps.max())[..., :3] * 255).astype(np.uint8))


def _voronoi(rng: np.random.Generator) -> Image.Image:
    seeds = rng.random((40, 2)) * (400, 300)
    colours = rng.integers(0, 256, (40, 3), dtype=np.uint8)
    y, x = np.mgrid[0:300, 0:400]
    nearest = np.argmin((x[..., None] - seeds[:, 0]) ** 2 + (y[..., None] - seeds[:, 1]) ** 2, axis=-1)
    return Image.fromarray(colours[nearest])


def _scribbles(rng: np.random.Generator) -> Image.Image:
    image = Image.new("RGB", (400, 300), (250, 246, 232))
    draw = ImageDraw.Draw(image)
    for row in range(8):
        points = [(20.0, 30.0 + row * 34)]
        for _ in range(60):
            x, y = points[-1]
            points.append((x + float(rng.uniform(2, 8)), 30 + row * 34 + float(rng.normal(0, 5))))
        draw.line(points, fill=(20, 40, 120), width=2)
    return image


def _colour_noise(rng: np.random.Generator) -> Image.Image:
    low = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    return Image.fromarray(low).resize((400, 300), Image.Resampling.BICUBIC)


_DRAWN: dict[str, Callable[[np.random.Generator], Image.Image]] = {
    "app_window": _app_window, "code_editor": _code_editor, "spreadsheet": _spreadsheet, "qr_like": _qr_like,
    "mandelbrot": _mandelbrot, "voronoi": _voronoi, "scribbles": _scribbles, "colour_noise": _colour_noise,
}
_SHIPPED: dict[str, Callable[[], Image.Image]] = {
    "grace_hopper": lambda: Image.open(_sample("grace_hopper.jpg")).convert("RGB"),
    **{f"lfw_face_{index}": (lambda index=index: _lfw(index)) for index in (0, 25, 50, 75)},  # 100+: not faces
    "temple": lambda: _sklearn("china.jpg"), "flower": lambda: _sklearn("flower.jpg"),
    "motorcycle": lambda: _to_rgb(__import__("skimage.data").data.stereo_motorcycle()[0]),
    "present_box": lambda: Image.open(_sample("Minduka_Present_Blue_Pack.png")).convert("RGB"),
    "gif_frame": _gif_frame, "brain_mri": _mri,
    "terrain_map": lambda: _elevation("jacksboro_fault_dem.npz", "elevation"),
    "topography": lambda: _elevation("topobathy.npz", "topo"),
    "matplotlib_logo": lambda: Image.open(_sample("logo2.png")).convert("RGB"),
}
BASES = tuple(sorted(_SHIPPED) + sorted(_DRAWN))


def second_foreign_images() -> list[tuple[str, Image.Image]]:
    """``(name, RGB image)`` for every variant of every base."""
    out = []
    for base in BASES:
        image = _SHIPPED[base]() if base in _SHIPPED else _DRAWN[base](np.random.default_rng(sum(map(ord, base))))
        out += named_variants(base, image)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    write_pictures(second_foreign_images(), args.out)
    print(f"{len(BASES)} bases, {len(BASES) * 4} pictures in {args.out}")


if __name__ == "__main__":
    main()
