"""What every tab shares: the theme and CSS, the photo input, example files, the session's last analysis and
the one way an error reaches the page."""

from __future__ import annotations

import dataclasses
import io
import logging
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

import senet
from senet.catalog import ModelUnavailable, UnknownModel
from senet.image_io import ImageRejected

from . import guards

try:  # ZeroGPU Spaces attach a GPU only inside functions decorated with spaces.GPU; elsewhere it is a no-op.
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn: Any) -> Any:
        return fn

LOG = logging.getLogger("senet.app")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
DISPLAY_SIDE = 640  # photos are kept and drawn on at most this many pixels per side
STATE_TTL = guards.STATE_TTL  # seconds a session's last analysis is kept for the follow-up views
PROGRESS = gr.Progress()  # Gradio injects a live tracker into handlers whose parameter defaults to one
THEME = gr.themes.Soft(primary_hue="orange", secondary_hue="sky", neutral_hue="slate")
CSS = """
.app-header h1 { margin-bottom: 0.2rem; }
.disclaimer { border-left: 4px solid #f59e0b; background: #fffbeb; color: #78350f; padding: 0.6rem 0.9rem;
  border-radius: 6px; }
.dark .disclaimer { background: #3a2a0a; color: #fde68a; }
.disclaimer p { margin: 0; }
.sentence { font-size: 1.08rem; }
.status { font-size: 0.9rem; opacity: 0.85; }
"""
# Tells the server the page's colour scheme, so charts get text colours that are readable on it.
THEME_JS = "() => (document.body.classList.contains('dark') || document.querySelector('.dark')) ? 'dark' : 'light'"


def _example_files() -> list[tuple[Path, str]]:
    """``examples/<Class>_<n>.jpg`` files with their true class, read from the file name."""
    files = sorted(p for p in EXAMPLES_DIR.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    return [(path, path.stem.rsplit("_", 1)[0]) for path in files]


EXAMPLES = _example_files()


def photo_input(**kwargs: Any) -> gr.Image:
    """An image input whose handler receives the uploaded file's path without Pillow having opened it.

    Gradio's own preprocessing calls ``PIL.Image.open`` on the file, so a hostile or non-image upload would fail
    there with Pillow's text; ``senet.image_io.load_image`` in the handler checks it and answers in words.
    (An instance override rather than a subclass: Gradio writes a ``.pyi`` stub next to any module that
    subclasses a component.)
    """
    component = gr.Image(type="filepath", image_mode=None, **kwargs)
    # A path in the upload cache, or a data URL's bytes once its size and header pass (ui/guards.py); Gradio's
    # own preprocessing would decode a data URL before any check.
    component.preprocess = guards.photo_payload
    return component


@dataclass(frozen=True)
class Result:
    """One browser session's latest analysis, kept in ``gr.State`` for the cheap follow-up views.

    Kept small (about 0.3 MB, it lives for STATE_TTL in every session): the photo as a JPEG, the CAM in float16,
    and no copy of the network's input.
    """

    model: str
    analysis: senet.Analysis
    photo_in: InitVar[Image.Image]  # what overlays are drawn on (at most DISPLAY_SIDE pixels a side)
    photo_jpeg: bytes = field(init=False, repr=False)

    def __post_init__(self, photo_in: Image.Image) -> None:
        buffer = io.BytesIO()
        photo_in.convert("RGB").save(buffer, "JPEG", quality=92)
        object.__setattr__(self, "photo_jpeg", buffer.getvalue())
        slim = dataclasses.replace(self.analysis, cam=self.analysis.cam.astype(np.float16),
                                   input_rgb=np.zeros((0, 0, 3), np.float32))
        object.__setattr__(self, "analysis", slim)

    @property
    def photo(self) -> Image.Image:
        return Image.open(io.BytesIO(self.photo_jpeg)).convert("RGB")


def fail(error: Exception) -> gr.Error:
    """A human message for the page; anything unexpected is logged, never shown."""
    if isinstance(error, ImageRejected | UnknownModel | ModelUnavailable):
        return gr.Error(str(error), print_exception=False)
    LOG.exception("analysis failed")
    return gr.Error("The analysis failed unexpectedly. Please try another photo or model.", print_exception=False)
