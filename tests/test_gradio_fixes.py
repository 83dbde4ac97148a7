"""The UI's Gradio fixes: image outputs reach Gradio's cache by an atomic rename, never a rewrite in place, and
PNGs are encoded at zlib's fastest level without losing a pixel."""

from __future__ import annotations

import io
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from gradio import processing_utils
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ui import gradio_fixes  # noqa: E402


def test_images_are_written_atomically(tmp_path: Path) -> None:
    assert processing_utils.save_pil_to_cache is gradio_fixes.save_pil_to_cache
    image = Image.new("RGB", (300, 200), (10, 200, 30))
    expected = gradio_fixes.encode_image(image, "png")
    with ThreadPoolExecutor(max_workers=8) as pool:  # the same image from many requests at once
        paths = list(pool.map(lambda _: gradio_fixes.save_pil_to_cache(image, str(tmp_path), format="png"),
                              range(32)))
        reads = list(pool.map(lambda path: Path(path).read_bytes(), paths))
    assert len(set(paths)) == 1 and paths[0].endswith("image.png")
    assert all(read == expected for read in reads)
    assert [p.name for p in Path(paths[0]).parent.iterdir()] == ["image.png"]  # no staging file left behind


def test_png_is_fast_level_and_lossless() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    pixels[:60] = 40  # a flat half, so the compression level changes the size
    image = Image.fromarray(pixels)
    fast = gradio_fixes.encode_image(image, "png")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(fast))), pixels)
    with io.BytesIO() as level1:
        image.save(level1, "png", compress_level=1)
        assert len(fast) == len(level1.getvalue())  # zlib level 1, not Pillow's default 6
    assert gradio_fixes.encode_image(image, "jpeg") == processing_utils.encode_pil_to_bytes(image, "jpeg")
