"""Images for people: heatmaps in a perceptually uniform colormap (inferno), heatmaps laid over photos, and a
check for maps that say little (numpy and PIL only).

Everything here is RGB (grad-cam's ``show_cam_on_image`` returns BGR unless told otherwise; we avoid it).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .preprocess import to_rgb

# Matplotlib's "inferno" sampled at 17 evenly spaced points (RGB in [0, 1]); linear interpolation between them stays
# within 0.026 of the full table. Why inferno: it is perceptually uniform (equal steps in value look like equal
# steps in colour, unlike jet or turbo, whose bright cyan / yellow bands invent edges), its lightness rises
# monotonically (it reads in greyscale and for colour-blind viewers), and the brightest colour is the most
# important place, which is what a viewer looks for on a photo.
_INFERNO = (
    (0.001, 0.0, 0.014), (0.042, 0.028, 0.141), (0.129, 0.047, 0.291), (0.238, 0.037, 0.396),
    (0.342, 0.062, 0.429), (0.441, 0.099, 0.432), (0.541, 0.135, 0.415), (0.64, 0.171, 0.381),
    (0.736, 0.216, 0.33), (0.822, 0.275, 0.266), (0.894, 0.353, 0.194), (0.947, 0.449, 0.115),
    (0.978, 0.558, 0.035), (0.988, 0.675, 0.065), (0.975, 0.798, 0.206), (0.948, 0.917, 0.411),
    (0.988, 0.998, 0.645),
)
_KNOTS = np.linspace(0.0, 1.0, len(_INFERNO))
_LEVELS = np.linspace(0.0, 1.0, 256)
COLORMAP_LUT = np.stack([np.interp(_LEVELS, _KNOTS, channel) for channel in np.array(_INFERNO).T], axis=1)  # (256, 3)
COLORMAP_NAME = "inferno"
_BORDER = 0.08  # the outer 8 % of each side counts as the border
_EMPTY = 0.05  # a map whose maximum is below this shows nothing


def colormap_stops(count: int = 9) -> list[str]:
    """``count`` evenly spaced colours of the colormap as ``#rrggbb``, low to high (for a legend)."""
    rows = COLORMAP_LUT[np.rint(np.linspace(0, 255, count)).astype(int)]
    return ["#" + "".join(f"{round(float(v) * 255):02x}" for v in row) for row in rows]


def uninformative(heat: np.ndarray) -> str | None:
    """Why a CAM map says little, or None when it looks usable.

    ``"empty"``: nothing above 5 % anywhere. ``"border"``: the strongest values sit on the image border while the
    inside stays low (the 95th percentile inside is under 0.5 and under half the border's maximum), which early
    layers of the shipped models give: padding effects, not the lesion.
    """
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float32))
    if heat.ndim != 2:
        raise ValueError(f"a heatmap is 2-D (H, W), got shape {heat.shape}")
    if heat.size == 0 or float(heat.max()) < _EMPTY:
        return "empty"
    width = max(1, round(min(heat.shape) * _BORDER))
    if min(heat.shape) <= 2 * width:
        return None
    inner = heat[width:-width, width:-width]
    border_max = max(float(heat[:width].max()), float(heat[-width:].max()), float(heat[:, :width].max()),
                     float(heat[:, -width:].max()))
    inner_high = float(np.percentile(inner, 95))
    return "border" if inner_high < 0.5 and border_max >= 2 * inner_high else None


def colorize(heat: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) float32 RGB in [0, 1] (NaN counts as 0, values are clipped)."""
    heat = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)), 0.0, 1.0)
    if heat.ndim != 2:
        raise ValueError(f"a heatmap is 2-D (H, W), got shape {heat.shape}")
    return COLORMAP_LUT[np.rint(heat * 255).astype(np.int64)].astype(np.float32)


def resize_heat(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a (H, W) float map to ``size`` = (width, height), as PIL counts sizes."""
    heat = np.asarray(heat, dtype=np.float32)
    width, height = size
    if heat.shape == (height, width):
        return heat
    source = Image.fromarray(np.ascontiguousarray(np.nan_to_num(heat)))  # mode "F": no 8-bit banding
    resized = source.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def heatmap_image(heat: np.ndarray, size: tuple[int, int] | None = None) -> Image.Image:
    """The heatmap alone as an RGB image, optionally resized to ``size`` = (width, height)."""
    if size is not None:
        heat = resize_heat(heat, size)
    return Image.fromarray(np.rint(colorize(heat) * 255).astype(np.uint8))


def overlay(photo: Image.Image | np.ndarray, heat: np.ndarray, *, opacity: float = 0.5) -> Image.Image:
    """Lay ``heat`` (resized to the photo) over ``photo`` in the colormap.

    Args:
        photo: a PIL image in any mode, or an (H, W, 3) / (H, W) array, uint8 or float in [0, 1].
        heat: (h, w) values in [0, 1].
        opacity: weight of the heatmap, 0 (photo only) to 1 (heatmap only).

    Returns:
        An RGB image the size of the photo.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    rgb = _photo_array(photo)
    colored = colorize(resize_heat(heat, (rgb.shape[1], rgb.shape[0])))
    blended = (1.0 - opacity) * rgb + opacity * colored
    return Image.fromarray(np.rint(np.clip(blended, 0.0, 1.0) * 255).astype(np.uint8))


def _photo_array(photo: Image.Image | np.ndarray) -> np.ndarray:
    """Any photo -> (H, W, 3) float32 RGB in [0, 1]."""
    if isinstance(photo, Image.Image):
        return np.asarray(to_rgb(photo), dtype=np.float32) / 255.0
    array = np.asarray(photo)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"a photo array is (H, W), (H, W, 3) or (H, W, 4), got shape {array.shape}")
    array = array[:, :, :3]
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    return np.clip(array.astype(np.float32), 0.0, 1.0)
