"""Generated hostile and unusual uploads (never committed binaries): what a public demo receives.

Each :class:`Upload` is a file name, its bytes, and what :func:`senet.image_io.load_image` must do with it:
refuse with a message containing ``reason``, or accept and return an RGB image of ``size`` (after EXIF
rotation) whose centre pixel is close to ``centre``. Everything is deterministic and small: the whole set is a
few hundred KB and builds in about a second.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

RED, BLUE, WHITE, BLACK = (220, 30, 30), (30, 30, 220), (255, 255, 255), (0, 0, 0)
PYTHON_INTERNALS = ("Traceback", "Error", "Exception", "PIL", "errno", "line ", 'File "', "0x", "<", ">", "/tmp")


def assert_human(message: str | None, *forbidden: str) -> None:
    """A short sentence for a person: no exception names, tracebacks, markup or server paths."""
    assert message and len(message) < 240, message
    assert message[0].isupper() and message.rstrip().endswith("."), message
    for fragment in PYTHON_INTERNALS + forbidden:
        assert fragment not in message, (fragment, message)


@dataclass(frozen=True)
class Upload:
    """One generated file and the expected outcome.

    Attributes:
        name: the file name sent with the upload (its extension may lie about the content).
        data: the file's bytes.
        reason: for a refused file, a lower-case phrase the refusal message must contain; ``None`` if accepted.
        size: for an accepted file, the (width, height) of the upright RGB image.
        centre: for an accepted file, the expected RGB colour of the centre pixel (within a lossy tolerance).
    """

    name: str
    data: bytes
    reason: str | None = None
    size: tuple[int, int] | None = None
    centre: tuple[int, int, int] | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None

    def write(self, directory: Path) -> Path:
        path = Path(directory) / self.name
        path.write_bytes(self.data)
        return path


def _save(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG: 40000 x 40000 (1.6 gigapixels) takes under 200 KB on disk."""
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    rows = b"".join(compressor.compress(row * 1000) for _ in range(height // 1000))
    rows += compressor.compress(row * (height % 1000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", rows)
            + _png_chunk(b"IEND", b""))


def png_rgb16(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A 48-bit (16 bits per channel) RGB PNG, which Pillow cannot write itself."""
    pixel = b"".join(struct.pack(">H", value * 257) for value in rgb)
    rows = b"".join(b"\0" + pixel * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)  # bit depth 16, truecolour
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows))
            + _png_chunk(b"IEND", b""))


def gif_header_bomb(width: int, height: int) -> bytes:
    """A GIF whose header claims ``width x height`` but holds almost no data."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return screen + frame + b";"


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) is patched to claim ``width x height``."""
    data = bytearray(_save(Image.new("RGB", (16, 16), RED), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def jpeg_over_frame(width: int, height: int, *, side: int = 224, progressive: bool = False) -> bytes:
    """A real ``side`` x ``side`` noise JPEG whose frame header claims ``width x height``: libjpeg decodes the
    224 x 224 of data and fills the rest of the frame with flat grey."""
    data = bytearray(_save(Image.effect_noise((side, side), 60).convert("RGB"), "JPEG", progressive=progressive))
    sof = data.index(b"\xff\xc2" if progressive else b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def float_tiff(values: list[float], size: tuple[int, int] = (40, 30)) -> bytes:
    """A 32-bit floating-point ("F" mode) TIFF holding ``values`` repeated over the frame."""
    image = Image.new("F", size)
    image.putdata([values[index % len(values)] for index in range(size[0] * size[1])])
    return _save(image, "TIFF")


def _upright_pattern(size: tuple[int, int] = (64, 40)) -> Image.Image:
    """Blue with a red top-left quadrant: any wrong rotation or flip moves the red."""
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, (0, 0, size[0] // 2, size[1] // 2))
    return image


# How a camera stores an upright scene for each EXIF orientation: the inverse of what exif_transpose applies.
_STORE_FOR_ORIENTATION: dict[int, Callable[[Image.Image], Image.Image]] = {
    1: lambda im: im,
    2: lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    3: lambda im: im.transpose(Image.Transpose.ROTATE_180),
    4: lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    5: lambda im: im.transpose(Image.Transpose.TRANSPOSE),
    6: lambda im: im.transpose(Image.Transpose.ROTATE_90),
    7: lambda im: im.transpose(Image.Transpose.TRANSVERSE),
    8: lambda im: im.transpose(Image.Transpose.ROTATE_270),
}


def exif_photo(orientation: int) -> bytes:
    """A JPEG as a phone writes it: pixels stored sideways / flipped, EXIF Orientation says how to show them."""
    stored = _STORE_FOR_ORIENTATION[orientation](_upright_pattern())
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(stored, "JPEG", quality=95, exif=exif.tobytes())


def upright_reference() -> Image.Image:
    """What every :func:`exif_photo` must look like once loaded."""
    return _upright_pattern()


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (32, 32), colour) for colour in (RED, BLUE, WHITE)]
    params = {"lossless": True} if fmt == "WEBP" else {}
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **params)


def _mode(mode: str, colour) -> Image.Image:
    return Image.new(mode, (40, 30), colour)


def rejected_uploads(*, large: bool = False) -> list[Upload]:
    """Files that must be refused. ``large`` adds a 21 MB file (over the 20 MB limit)."""
    rng = random.Random(6)
    jpeg = _save(Image.effect_noise((256, 256), 60).convert("RGB"), "JPEG", quality=90)
    png = _save(Image.effect_noise((256, 256), 60).convert("RGB"), "PNG")
    uploads = [
        Upload("empty.png", b"", reason="empty"),
        Upload("truncated.jpg", jpeg[: len(jpeg) // 2], reason="damaged"),
        Upload("truncated.png", png[: len(png) // 2], reason="damaged"),
        Upload("jpeg_magic_then_noise.jpg", b"\xff\xd8\xff\xe0" + rng.randbytes(2048), reason="not an image"),
        Upload("text.png", b"This is not a photo.\n" * 20, reason="not an image"),
        Upload("page.jpg", b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
               reason="not an image"),
        Upload("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
               b'<rect width="64" height="64" fill="red"/></svg>', reason="not an image"),
        Upload("drawing_svg.png", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" '
               b'height="64"><script>alert(1)</script></svg>', reason="not an image"),
        Upload("archive.png", _zip(), reason="not an image"),
        Upload("random.jpg", rng.randbytes(4096), reason="not an image"),
        Upload("random.webp", rng.randbytes(4096), reason="not an image"),
        # EPS is a format Pillow knows, but it runs Ghostscript to decode it: never parsed for an upload.
        Upload("vector.png", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nshowpage\n", reason="not an image"),
        Upload("document.jpg", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n",
               reason="not an image"),
        Upload("bomb_40000.png", png_bomb(40000, 40000), reason="too large"),
        Upload("bomb_10000.png", png_bomb(10000, 10000), reason="too large"),  # below Pillow's own limit
        Upload("bomb.gif", gif_header_bomb(10000, 10000), reason="too large"),
        Upload("bomb.jpg", jpeg_claiming(60000, 60000), reason="too large"),
        Upload("one_pixel.png", _save(Image.new("RGB", (1, 1), RED), "PNG"), reason="too small"),
        Upload("strip.png", _save(Image.new("RGB", (4000, 40), RED), "PNG"), reason="long and thin"),
        Upload("column.jpg", _save(Image.new("RGB", (30, 2000), RED), "JPEG"), reason="long and thin"),
        # Frame headers that claim far more than the file holds: decoded, they are almost all grey filler.
        Upload("lying_header_13000.jpg", jpeg_claiming(13000, 13000), reason="incomplete"),
        Upload("lying_header_2000.jpg", jpeg_over_frame(2000, 2000), reason="incomplete"),
        Upload("lying_progressive.jpg", jpeg_over_frame(4000, 4000, progressive=True), reason="incomplete"),
        Upload("nan.tif", float_tiff([1.0, float("nan")]), reason="invalid values"),
        Upload("inf.tif", float_tiff([1.0, float("inf")]), reason="invalid values"),
        Upload("constant.tif", float_tiff([0.25]), reason="same value"),
    ]
    if large:
        uploads.append(Upload("huge.jpg", b"\xff\xd8\xff\xe0" + rng.randbytes(21 * 2**20), reason="too large"))
    return uploads


def accepted_uploads() -> list[Upload]:
    """Unusual but legitimate images that must be analysed."""
    palette = _mode("P", 1)
    palette.putpalette([*WHITE, *RED, *BLUE] + [0] * 759)
    transparent_palette = palette.copy()
    transparent_palette.info["transparency"] = 0
    uploads = [
        Upload("grey_L.png", _save(_mode("L", 128), "PNG"), size=(40, 30), centre=(128, 128, 128)),
        Upload("grey_alpha_LA.png", _save(_mode("LA", (0, 0)), "PNG"), size=(40, 30), centre=WHITE),
        Upload("palette_P.png", _save(palette, "PNG"), size=(40, 30), centre=RED),
        Upload("palette_transparent.png", _save(Image.new("P", (40, 30), 0), "PNG", transparency=0),
               size=(40, 30), centre=WHITE),
        Upload("palette_transparent.gif", _save(transparent_palette, "GIF"), size=(40, 30), centre=RED),
        Upload("rgba.png", _save(_mode("RGBA", (*RED, 255)), "PNG"), size=(40, 30), centre=RED),
        Upload("rgba_clear.png", _save(_mode("RGBA", (*RED, 0)), "PNG"), size=(40, 30), centre=WHITE),
        Upload("cmyk.jpg", _save(_mode("CMYK", (0, 0, 0, 0)), "JPEG", quality=95), size=(40, 30), centre=WHITE),
        Upload("cmyk.tif", _save(_mode("CMYK", (0, 255, 255, 0)), "TIFF"), size=(40, 30), centre=(255, 0, 0)),
        Upload("grey16_I16.png", _save(_gradient("I;16", 50), "PNG"), size=(40, 30), centre=None),
        Upload("rgb48.png", png_rgb16(40, 30, RED), size=(40, 30), centre=RED),
        Upload("bilevel_1.png", _save(_mode("1", 1), "PNG"), size=(40, 30), centre=WHITE),
        Upload("bilevel_1.bmp", _save(_mode("1", 0), "BMP"), size=(40, 30), centre=BLACK),
        Upload("int32_I.tif", _save(_gradient("I", 70000), "TIFF"), size=(40, 30), centre=None),
        Upload("float_F.tif", _save(_gradient("F", 0.001), "TIFF"), size=(40, 30), centre=None),
        Upload("ycbcr.jpg", _save(_mode("RGB", RED).convert("YCbCr"), "JPEG", quality=95), size=(40, 30),
               centre=RED),
        Upload("animated.gif", _animated("GIF"), size=(32, 32), centre=RED),
        Upload("animated.webp", _animated("WEBP"), size=(32, 32), centre=RED),
        Upload("animated.png", _animated("PNG"), size=(32, 32), centre=RED),
        Upload("photo.bmp", _save(_mode("RGB", BLUE), "BMP"), size=(40, 30), centre=BLUE),
        Upload("photo.tif", _save(_mode("RGB", BLUE), "TIFF", compression="tiff_lzw"), size=(40, 30), centre=BLUE),
        Upload("photo_lossy.webp", _save(_mode("RGB", BLUE), "WEBP", quality=90), size=(40, 30), centre=BLUE),
        Upload("photo_lossless.webp", _save(_mode("RGB", BLUE), "WEBP", lossless=True), size=(40, 30), centre=BLUE),
        Upload("progressive.jpg", _save(_mode("RGB", RED), "JPEG", progressive=True, quality=95), size=(40, 30),
               centre=RED),
        Upload("jpeg_named.png", _save(_mode("RGB", RED), "JPEG", quality=95), size=(40, 30), centre=RED),
        Upload("png_named.jpg", _save(_mode("RGB", BLUE), "PNG"), size=(40, 30), centre=BLUE),
        Upload("no_extension", _save(_mode("RGB", BLUE), "PNG"), size=(40, 30), centre=BLUE),
        Upload("smallest_8x8.png", _save(Image.new("RGB", (8, 8), RED), "PNG"), size=(8, 8), centre=RED),
        Upload("wide_10_to_1.png", _save(Image.new("RGB", (400, 40), RED), "PNG"), size=(400, 40), centre=RED),
        Upload("broken_exif.jpg", _save(_mode("RGB", RED), "JPEG", quality=95, exif=b"Exif\0\0MM\0*garbage"),
               size=(40, 30), centre=RED),
    ]
    for orientation in range(1, 9):
        uploads.append(Upload(f"phone_exif_{orientation}.jpg", exif_photo(orientation), size=(64, 40)))
    return uploads


def big_phone_photo() -> Upload:
    """A 48-megapixel JPEG (over the 40 MP limit): decoded at half scale instead of refused."""
    return Upload("phone_48mp.jpg", _save(Image.new("RGB", (8000, 6000), RED), "JPEG", quality=80),
                  size=(4000, 3000), centre=RED)


def _gradient(mode: str, step: float) -> Image.Image:
    """A left-to-right ramp in a high-bit-depth mode (a flat image would say nothing about the scaling)."""
    image = Image.new(mode, (40, 30))
    image.putdata([x * step for _ in range(30) for x in range(40)])
    return image


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.jpg", _save(Image.new("RGB", (16, 16), RED), "JPEG"))
    return buffer.getvalue()
