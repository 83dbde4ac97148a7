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
from senet.image_io import IMAGE_SUFFIXES, ImageRejected

from . import limits
from .refusals import refuse
from .request_checks import photo_payload

try:  # ZeroGPU Spaces attach a GPU only inside functions decorated with spaces.GPU; elsewhere it is a no-op.
    import spaces
except ImportError:
    spaces = None

GPU_SECONDS = 20  # ZeroGPU: a short reservation gets visitors through its queue sooner (its default is 60 s)


def gpu(fn: Any = None, *, duration: int = GPU_SECONDS) -> Any:
    """``@gpu`` or ``@gpu(duration=120)``: ``spaces.GPU`` with a short duration on ZeroGPU, else nothing."""
    def wrap(function: Any) -> Any:
        return function if spaces is None else spaces.GPU(duration=duration)(function)
    return wrap(fn) if fn is not None else wrap

LOG = logging.getLogger("senet.app")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
DISPLAY_SIDE = 640  # photos are kept and drawn on at most this many pixels per side
STATE_TTL = limits.STATE_TTL  # seconds a session's last analysis is kept for the follow-up views
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
.status details summary { cursor: pointer; display: inline; margin-left: 0.5rem; text-decoration: underline dotted; }
.status details[open] { display: block; margin-top: 0.3rem; }
.examples-title p, .image-title p { margin: 0.4rem 0 0 0; font-weight: 600; font-size: 0.9rem; }
.cam-caption { margin: 0.2rem 0 0.3rem 0; }
.cam-note { margin: 0.3rem 0; color: #9a3412; }
.dark .cam-note { color: #fdba74; }
.cam-legend { display: flex; align-items: center; gap: 0.5rem; font-size: 0.85rem; max-width: 22rem; }
.cam-legend-bar { flex: 1; height: 0.8rem; border-radius: 3px; border: 1px solid rgba(128, 128, 128, 0.4); }
/* Examples: no fixed-height scroll box (all twelve show at once), captions that fit a small thumbnail. */
#examples .grid-wrap.fixed-height { min-height: 0; max-height: none; height: auto; }
#examples .grid-wrap { overflow-x: hidden; }
#examples .grid-container { grid-template-columns: repeat(4, minmax(0, 1fr)) !important; }
#examples .caption-label { max-width: 94%; right: 3%; font-size: 0.72rem; padding: 1px 4px; }
/* The model picker's name (with its accuracy) is long: a smaller font so that it is not cut off. */
#model input { font-size: 0.8rem; }
/* Dropdown lists: long options (layer descriptions) wrap instead of being cut off. */
ul.options li { white-space: normal; }
@media (max-width: 640px) {
  /* phones: the picker's arrow gives its room to the name (a tap still opens the list) */
  #model .wrap-inner { padding-left: 4px; padding-right: 4px; }
  #model .icon-wrap { display: none; }
  #model input { font-size: 0.62rem; text-overflow: ellipsis; }
  .status details summary { margin-left: 0; }
}
"""
# Tells the server the page's colour scheme, so charts get text colours that are readable on it.
THEME_JS = "() => (document.body.classList.contains('dark') || document.querySelector('.dark')) ? 'dark' : 'light'"


def _example_files() -> list[tuple[Path, str]]:
    """``examples/<Class>_<n>.jpg`` files with their true class, read from the file name."""
    files = sorted(p for p in EXAMPLES_DIR.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
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
    # A path in the upload cache, or a data URL's bytes once its size and header pass (ui/request_checks.py);
    # Gradio's own preprocessing would decode a data URL before any check.
    component.preprocess = photo_payload  # type: ignore[method-assign,assignment]  # on purpose: see the docstring
    return component


@dataclass(frozen=True)
class Result:
    """One browser session's latest analysis, kept in ``gr.State`` for the cheap follow-up views.

    Kept small, since every session holds one for STATE_TTL: the photo as a JPEG (at most DISPLAY_SIDE a side)
    and the network's input in float16 (its pixels are multiples of 1/255, which float16 keeps exactly enough
    for ``model_view`` to give back the same bytes).
    """

    model: str
    analysis: senet.Analysis
    photo_in: InitVar[Image.Image]  # what overlays are drawn on
    photo_jpeg: bytes = field(init=False, repr=False)

    def __post_init__(self, photo_in: Image.Image) -> None:
        buffer = io.BytesIO()
        photo_in.convert("RGB").save(buffer, "JPEG", quality=92)
        object.__setattr__(self, "photo_jpeg", buffer.getvalue())
        slim = dataclasses.replace(self.analysis, input_rgb=self.analysis.input_rgb.astype(np.float16))
        object.__setattr__(self, "analysis", slim)

    @property
    def photo(self) -> Image.Image:
        """The photo overlays are drawn on (decoded on each use)."""
        with Image.open(io.BytesIO(self.photo_jpeg)) as image:
            return image.convert("RGB")


def fail(error: Exception) -> gr.Error:
    """A human message for the page, in its language; anything unexpected is logged, never shown."""
    if isinstance(error, ModelUnavailable):  # the reason (a file error) is for the operator's log, not visitors
        LOG.warning("%s", error)
        name = str(error).split(" is unavailable", 1)[0]
        return refuse(f"The model {name} is unavailable; choose another one.")
    if isinstance(error, ImageRejected):
        return refuse(str(error))
    if isinstance(error, UnknownModel | senet.OptionError):
        return refuse(str(error))
    LOG.exception("analysis failed")
    return refuse("The analysis failed unexpectedly. Please try another photo or model.")
