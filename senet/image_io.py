"""Untrusted image files -> upright RGB PIL images, or a short human refusal.

Everything a public demo receives goes through :func:`load_image`: the size is checked from the header before
any pixel is decoded, the format is recognised from the content (never the file name), only common photo formats
are parsed, and every failure becomes an :class:`ImageRejected` whose message can be shown to a person as is.

Use from Gradio: ``gr.Image(type="filepath", image_mode=None)`` and ``load_image(path)`` in the handler, turning
``ImageRejected`` into ``gr.Error(str(error))``. With the default ``image_mode="RGB"`` Gradio itself decodes and
converts every non-RGB upload (a 1-bit 10000 x 10000 PNG included) before the handler runs. Gradio's
``Image.preprocess`` also calls ``PIL.Image.open`` on the upload, so a non-image sent through the API fails there
with Pillow's own message (which names the server's temp path) unless the component catches it.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
import stat
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .preprocess import to_rgb

# Formats a photo arrives in. A whitelist keeps rarely used parsers (EPS runs Ghostscript, PSD, ICNS, ...) away
# from uploads. MPO is how Pillow opens many camera / phone JPEGs.
ALLOWED_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "BMP", "TIFF", "WEBP", "AVIF")
FORMAT_NAMES = "JPEG, PNG, WebP, GIF, BMP or TIFF"
_JPEG_SCALES = (1, 2, 4, 8)  # libjpeg decodes at these reductions for free (Image.draft)
MAX_BYTES = 20 * 2**20
MAX_PIXELS = 40_000_000
# A JPEG whose file ends before its declared frame is full decodes the rest as flat grey (128 in each channel,
# the DC-only value); so does a header patched to claim a bigger frame. More than this share of grey filler at
# the end of the frame means the file does not hold the picture it declares.
MAX_FILLER_SHARE = 0.5
_DATA_URL = re.compile(r"^data:([\w.+/-]*)((?:;[\w.+=-]+)*?)(;base64)?,", re.IGNORECASE)


class ImageRejected(ValueError):
    """An upload that is refused; ``str(error)`` is a short message for the person who sent it."""


def load_image(
    source: str | Path | bytes | Image.Image | None,
    *,
    max_pixels: int = MAX_PIXELS,
    max_bytes: int = MAX_BYTES,
    min_side: int = 8,
    max_aspect: float = 10.0,
) -> Image.Image:
    """Decode an untrusted image into a new upright RGB image.

    Args:
        source: a file path, the file's bytes, or an already opened PIL image (checked and converted).
        max_pixels: larger images are refused before decoding (decompression bombs). JPEGs up to 64 times
            larger are decoded at 1/2, 1/4 or 1/8 scale instead, so big phone photos still work.
        max_bytes: larger files are refused before they are read.
        min_side: images with a shorter side are refused (nothing to see in a 1 x 1 image).
        max_aspect: images whose long side exceeds this many short sides are refused; the model squashes its
            input to a square, so a 4000 x 40 strip would be meaningless to it.
    Returns:
        An RGB image, rotated upright per its EXIF orientation, first frame of an animation, transparency
        composited on white, not tied to any open file.
    Raises:
        ImageRejected: with a message suitable for the user (no Python internals).
    """
    if source is None:
        raise ImageRejected("Please upload an image first.")
    if isinstance(source, Image.Image):
        _check_geometry(source.size, max_pixels=max_pixels, min_side=min_side, max_aspect=max_aspect)
        return _finish(source)
    data = _read_bytes(source, max_bytes)
    try:
        opened = Image.open(io.BytesIO(data), formats=_parsers())
    except Image.DecompressionBombError:
        # Pillow's own, process-wide limit fired first; report ours.
        raise ImageRejected(_too_many_pixels_message(max_pixels)) from None
    except Exception as error:  # parsers raise many types on garbage; all mean "not an image"
        raise ImageRejected(f"This file is not an image that can be read. Please upload a {FORMAT_NAMES} photo.") \
            from error
    with opened as image:
        declared = image.size
        if image.format in ("JPEG", "MPO"):
            _draft_jpeg(image, max_pixels)
        _check_geometry(image.size, max_pixels=max_pixels, min_side=min_side, max_aspect=max_aspect)
        try:
            image.seek(0)  # first frame of an animation or multi-page TIFF
            image.load()
        except Exception as error:  # truncated / corrupt data: OSError, SyntaxError, ...
            raise ImageRejected("The image file is damaged or incomplete and could not be decoded. "
                                "Please upload the original photo.") from error
        # The decoded size can differ from the header's (e.g. odd TIFF pages); check again before converting.
        _check_geometry(image.size, max_pixels=max_pixels, min_side=min_side, max_aspect=max_aspect)
        if image.format in ("JPEG", "MPO"):
            _check_jpeg_filler(image, declared)
        if image.mode == "F":
            _check_float_values(image)
        return _finish(image)


def check_header(
    data: bytes,
    *,
    max_pixels: int = MAX_PIXELS,
    max_bytes: int = MAX_BYTES,
    min_side: int = 8,
    max_aspect: float = 10.0,
) -> tuple[str, tuple[int, int]]:
    """The checks :func:`load_image` makes before decoding, on bytes alone: size, format and declared geometry.

    For front ends that receive an image some other way than a file (e.g. inline in a JSON body) and want to
    refuse it before anything decodes it. Only the header is parsed; no pixel is decoded.

    Returns:
        The format name (e.g. ``"PNG"``) and the size the image will have once decoded (JPEGs over
        ``max_pixels`` decode at a reduced scale).
    Raises:
        ImageRejected: the same refusals, in the same words, as :func:`load_image`.
    """
    data = _read_bytes(data, max_bytes)
    try:
        opened = Image.open(io.BytesIO(data), formats=_parsers())
    except Image.DecompressionBombError:
        raise ImageRejected(_too_many_pixels_message(max_pixels)) from None
    except Exception as error:
        raise ImageRejected(f"This file is not an image that can be read. Please upload a {FORMAT_NAMES} photo.") \
            from error
    with opened as image:
        if image.format in ("JPEG", "MPO"):
            _draft_jpeg(image, max_pixels)
        _check_geometry(image.size, max_pixels=max_pixels, min_side=min_side, max_aspect=max_aspect)
        return str(image.format), image.size


def read_data_url(url: str, *, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a ``data:[<type>][;base64],<data>`` URL, refusing an over-large one before decoding it.

    Raises:
        ImageRejected: not a data URL, broken base64, or over ``max_bytes`` once decoded (judged from the
            encoded length first, so a huge payload is never decoded).
    """
    match = _DATA_URL.match(url[:512]) if isinstance(url, str) else None
    if match is None:
        raise ImageRejected("The image data is not a valid data URL. Please upload the image as a file.")
    payload = url[match.end():]
    limit = _megabytes(max_bytes)
    # base64 holds 3 bytes per 4 characters; URL-encoded data is at least one character per byte.
    decoded_size = len(payload) * 3 // 4 if match.group(3) else len(payload) // 3
    if decoded_size > max_bytes:
        raise ImageRejected(f"The file is too large ({_megabytes(decoded_size)}); the limit is {limit}.")
    try:
        if match.group(3):
            data = base64.b64decode(payload.strip(), validate=True)
        else:
            from urllib.parse import unquote_to_bytes

            data = unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        raise ImageRejected("The image data in the request is damaged (invalid base64). "
                            "Please upload the image as a file.") from None
    if len(data) > max_bytes:
        raise ImageRejected(f"The file is too large ({_megabytes(len(data))}); the limit is {limit}.")
    return data


def _parsers() -> tuple[str, ...]:
    """The allowed formats this Pillow build can open (Image.open raises KeyError on a name not yet loaded)."""
    Image.init()  # loads every plugin once; later calls return at once
    return tuple(name for name in ALLOWED_FORMATS if name in Image.OPEN)


def _read_bytes(source: str | Path | bytes, max_bytes: int) -> bytes:
    limit = _megabytes(max_bytes)
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        path = Path(source)
        try:
            info = path.stat()
        except (OSError, ValueError):
            raise ImageRejected("The uploaded file could not be found. Please upload it again.") from None
        # Only regular files: a FIFO or device would block or never end.
        if not stat.S_ISREG(info.st_mode):
            raise ImageRejected("The upload is not a regular file. Please upload an image file.")
        if info.st_size > max_bytes:
            raise ImageRejected(f"The file is too large ({_megabytes(info.st_size)}); the limit is {limit}.")
        try:
            with open(path, "rb") as handle:
                data = handle.read(max_bytes + 1)
        except OSError:
            raise ImageRejected("The uploaded file could not be read. Please upload it again.") from None
    if not data:
        raise ImageRejected("The uploaded file is empty. Please upload an image.")
    if len(data) > max_bytes:
        raise ImageRejected(f"The file is too large ({_megabytes(len(data))}); the limit is {limit}.")
    return data


def _draft_jpeg(image: Image.Image, max_pixels: int) -> None:
    """Ask libjpeg to decode an over-large JPEG at a reduced scale, which costs no extra time or memory."""
    width, height = image.size
    if width * height <= max_pixels:
        return
    for scale in _JPEG_SCALES[1:]:
        # libjpeg's output at 1/scale is ceil(side / scale); Pillow's draft picks the scale from
        # side // requested (floor), so ask for floor(side / scale) or a 7999-pixel side would stay at 1/1.
        if math.ceil(width / scale) * math.ceil(height / scale) <= max_pixels:
            image.draft(None, (max(1, width // scale), max(1, height // scale)))
            return


def _check_jpeg_filler(image: Image.Image, declared: tuple[int, int]) -> None:
    """Refuse a JPEG whose frame is mostly the flat grey libjpeg fills in for data the file does not hold."""
    if image.mode not in ("RGB", "L"):
        return  # CMYK / YCbCr-as-stored JPEGs fill with other values; they are rare and decoded as stored
    pixels = np.asarray(image)  # (H, W) or (H, W, 3) uint8
    height = pixels.shape[0]
    grey_rows, chunk = 0, 64  # count whole grey rows from the bottom, a few rows at a time (no frame-sized mask)
    while grey_rows < height:
        block = pixels[max(0, height - grey_rows - chunk):height - grey_rows]
        flat = np.all(block.reshape(len(block), -1) == 128, axis=1)
        if not flat.all():
            grey_rows += len(flat) - 1 - int(np.flatnonzero(~flat)[-1])
            break
        grey_rows += len(flat)
    if MAX_FILLER_SHARE * height < grey_rows < height:  # a uniformly mid-grey picture is odd but whole
        share = 100 * (1 - grey_rows / height)
        part = f"about {share:.0f} %" if share >= 1 else "less than 1 %"
        raise ImageRejected(f"The image file is incomplete: it declares {declared[0]} × {declared[1]} pixels but "
                            f"holds data for only {part} of them. Please upload the original photo.")


def _check_float_values(image: Image.Image) -> None:
    """A floating-point image (32-bit TIFF) with NaN / infinite values or one flat value has no picture in it."""
    values = np.asarray(image, dtype=np.float32)
    if not np.isfinite(values).all():
        raise ImageRejected("This floating-point image contains invalid values (NaN or infinity), so it has no "
                            "picture that can be shown. Please upload an ordinary RGB JPEG or PNG.")
    if float(values.max()) == float(values.min()):
        raise ImageRejected("This floating-point image has the same value in every pixel, so there is nothing to "
                            "analyse. Please upload an ordinary RGB JPEG or PNG.")


def _check_geometry(size: tuple[int, int], *, max_pixels: int, min_side: int, max_aspect: float) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageRejected(_too_many_pixels_message(max_pixels, f" ({width} × {height} pixels)"))
    if min(width, height) < min_side:
        raise ImageRejected(f"The image is too small ({width} × {height} pixels); "
                            f"each side must be at least {min_side} pixels.")
    if max(width, height) > max_aspect * min(width, height):
        raise ImageRejected(f"The image is too long and thin ({width} × {height} pixels). Please crop it so that "
                            f"its long side is at most {max_aspect:g} times its short side.")


def _too_many_pixels_message(max_pixels: int, detail: str = "") -> str:
    return (f"The image is too large{detail}. The limit is {max_pixels / 1e6:g} megapixels; "
            "please resize it (a few megapixels is plenty).")


def _finish(image: Image.Image) -> Image.Image:
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block is only metadata: keep the photo as stored
        upright = image.copy()
    try:
        rgb = to_rgb(upright)
    except (ValueError, OSError) as error:
        raise ImageRejected(f"This image uses a colour format ({image.mode}) that cannot be converted. "
                            "Please save it as an ordinary RGB JPEG or PNG.") from error
    rgb.info.clear()  # drop EXIF / ICC / XMP so nothing about the upload travels further
    return rgb


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size % 2**20 else f"{size // 2**20} MB"


__all__ = ["ALLOWED_FORMATS", "MAX_BYTES", "MAX_PIXELS", "ImageRejected", "check_header", "load_image", "read_data_url"]
