"""Image preprocessing for inference, derived from a model card (never re-typed in the app)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode (L, LA, P, RGBA, CMYK, I;16, 1, ...) -> RGB; transparency is composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("La", "RGBa"):  # premultiplied alpha: Pillow cannot convert "La" to RGB directly
        image = image.convert(image.mode.upper())
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16/32-bit greyscale: scale to 8 bits by the image's own range instead of clipping at 255.
        array = np.asarray(image, dtype=np.float32)
        low, high = float(array.min()), float(array.max())
        scaled = np.round((array - low) / max(high - low, 1e-6) * 255).astype(np.uint8)
        return Image.fromarray(scaled).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


class InferenceTransform:
    """Resize to ``input_size / resize_ratio``, centre-crop ``input_size``, scale to [0, 1] and normalise.

    The resize squashes the aspect ratio rather than cropping it away, so a lesion at the photo's edge stays
    in view; training sees the same geometry.
    """

    def __init__(
        self, input_size: tuple[int, int], resize_ratio: float, mean: tuple[float, ...], std: tuple[float, ...]
    ) -> None:
        self.input_size = input_size
        resize = [round(side / resize_ratio) for side in input_size]
        self.pipeline = v2.Compose([
            v2.Resize(resize, interpolation=v2.InterpolationMode.BILINEAR, antialias=True),
            v2.CenterCrop(input_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ])

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.pipeline(TF.pil_to_tensor(to_rgb(image)))

    def __repr__(self) -> str:
        return f"InferenceTransform({self.pipeline})"
