"""The UI's Gradio fix: image outputs reach Gradio's cache by an atomic rename, never a rewrite in place."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gradio import processing_utils
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ui import gradio_fixes  # noqa: E402


def test_images_are_written_atomically(tmp_path: Path) -> None:
    assert processing_utils.save_pil_to_cache is gradio_fixes.save_pil_to_cache
    image = Image.new("RGB", (300, 200), (10, 200, 30))
    expected = processing_utils.encode_pil_to_bytes(image, "png")
    with ThreadPoolExecutor(max_workers=8) as pool:  # the same image from many requests at once
        paths = list(pool.map(lambda _: gradio_fixes.save_pil_to_cache(image, str(tmp_path), format="png"),
                              range(32)))
        reads = list(pool.map(lambda path: Path(path).read_bytes(), paths))
    assert len(set(paths)) == 1 and paths[0].endswith("image.png")
    assert all(read == expected for read in reads)
    assert [p.name for p in Path(paths[0]).parent.iterdir()] == ["image.png"]  # no staging file left behind
