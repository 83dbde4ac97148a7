"""Images for people: heatmaps in a jet-like colormap and heatmaps laid over photos (numpy and PIL only).

Everything here is RGB (grad-cam's ``show_cam_on_image`` returns BGR unless told otherwise; we avoid it).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .preprocess import to_rgb

# Matplotlib's "jet" as piecewise-linear (position, value) knots per channel: dark blue -> cyan -> yellow -> red.
_JET_KNOTS = (
    ((0.0, 0.35, 0.66, 0.89, 1.0), (0.0, 0.0, 1.0, 1.0, 0.5)),
    ((0.0, 0.125, 0.375, 0.64, 0.91, 1.0), (0.0, 0.0, 1.0, 1.0, 0.0, 0.0)),
    ((0.0, 0.11, 0.34, 0.65, 1.0), (0.5, 1.0, 1.0, 0.0, 0.0)),
)
_LEVELS = np.linspace(0.0, 1.0, 256)
JET_LUT = np.stack([np.interp(_LEVELS, xs, ys) for xs, ys in _JET_KNOTS], axis=1)  # (256, 3) in [0, 1]


def colorize(heat: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) float32 RGB in [0, 1] (NaN counts as 0, values are clipped)."""
    heat = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)), 0.0, 1.0)
    if heat.ndim != 2:
        raise ValueError(f"a heatmap is 2-D (H, W), got shape {heat.shape}")
    return JET_LUT[np.rint(heat * 255).astype(np.int64)].astype(np.float32)


def resize_heat(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a (H, W) float map to ``size`` = (width, height), as PIL counts sizes."""
    heat = np.asarray(heat, dtype=np.float32)
    if heat.shape[::-1] == tuple(size):
        return heat
    source = Image.fromarray(np.ascontiguousarray(np.nan_to_num(heat)))  # mode "F": no 8-bit banding
    resized = source.resize(tuple(size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def heatmap_image(heat: np.ndarray, size: tuple[int, int] | None = None) -> Image.Image:
    """The heatmap alone as an RGB image, optionally resized to ``size`` = (width, height)."""
    if size is not None:
        heat = resize_heat(heat, size)
    return Image.fromarray(np.rint(colorize(heat) * 255).astype(np.uint8))


def overlay(photo: Image.Image | np.ndarray, heat: np.ndarray, *, opacity: float = 0.5) -> Image.Image:
    """Lay ``heat`` (resized to the photo) over ``photo`` in the jet colormap.

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
