"""The "Download report" button: the current photo's analysis as a PDF in the page's language (``/report``).

Wiring (in the Explore tab's input column, below the Analyze button)::

    report_ui = report.layout()                                   # inside the column, after inputs_column(...)
    report.wire(report.Reporter(catalog), report_ui, ui.image, ui.model, ui.method, heavy)
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr

from senet.catalog import Catalog
from senet.image_io import load_image
from senet.pdf_report import build_report
from ui.components import DISPLAY_SIDE, fail, gpu
from ui.i18n import I18N, add, lang
from ui.lanes import LANES

add({
    "en": {"report_button": "Download report (PDF)", "report_file": "Report"},
    "zh": {"report_button": "下载报告（PDF）", "report_file": "报告"},
})


class Reporter:
    """The report handler."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    @gpu
    def report(self, image: str | bytes | None, model: str | None, method: str = "gradcam",
               request: gr.Request | None = None) -> str:
        """A two-page PDF report of one photo's analysis: the photo, the prediction in words and numbers, the
        heatmap with its caption and colour scale, the SE channel-weight chart, the model and its accuracy, the
        date and the research-demo disclaimer (English, or Chinese when the browser asks for it).

        Args:
            image: the photo (JPEG, PNG, WebP, GIF, BMP or TIFF).
            model: a model name from the picker; empty for the default model.
            method: CAM method (gradcam, gradcam++, xgradcam, hirescam, layercam, eigencam, scorecam, ablationcam).
        Returns:
            The PDF file.
        """
        method = method or "gradcam"
        try:
            photo = load_image(image)
            net, card, entry = self.catalog.load(model or None)
            analysis = LANES.analyze(net, card, photo, method=method)  # slow methods in their own lane
            shown = photo.copy()
            shown.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE))
            pdf = build_report(shown, analysis, card, model_name=entry.display_name, lang=lang(request))
        except gr.Error:
            raise
        except Exception as error:
            raise fail(error) from None
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", entry.name)
        path = Path(tempfile.mkdtemp(prefix="senet_report_")) / f"senet_report_{stem}.pdf"
        path.write_bytes(pdf)
        return str(path)


def layout() -> SimpleNamespace:
    ui = SimpleNamespace()
    ui.button = gr.Button(I18N("report_button"), variant="secondary", elem_id="report-button")
    ui.file = gr.File(label=I18N("report_file"), interactive=False, visible=False, elem_id="report-file")
    return ui


def wire(handler: Reporter, ui: SimpleNamespace, image: gr.Image, model: gr.Dropdown, method: gr.Dropdown,
         heavy: dict[str, Any]) -> None:
    ui.button.click(handler.report, [image, model, method], ui.file, api_name="report", **heavy).success(
        lambda: gr.update(visible=True), None, ui.file, api_visibility="private", queue=False)  # shown once made
