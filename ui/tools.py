"""Three plain endpoints for programs and AI assistants: ``/classify``, ``/explain``, ``/list_models``.

They have no widgets of their own (hidden components carry their inputs and outputs) and are what
``python app.py --mcp`` serves as MCP tools through Gradio's MCP server: the docstrings below are the tool
descriptions an assistant reads, so they explain the app's terms. Photos come as a base64 data URL or an uploaded
file; web addresses are refused before the request is queued (``ui/request_checks.py``): Gradio would download
them without a size limit, and every photo must pass the same 20 MB limit and header checks before decoding.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import gradio as gr

import senet
from senet import texts
from senet.batch import positive_class
from senet.catalog import Catalog, headline_accuracy
from senet.image_io import load_image
from ui.components import DISPLAY_SIDE, fail, gpu, photo_input
from ui.lanes import LANES


class Tools:
    """The endpoints' handlers; each method's name is its MCP tool name."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def _analyze(self, image: str | None, model: str | None, method: str = "gradcam") -> tuple[Any, ...]:
        method = method or "gradcam"
        try:
            photo = load_image(image)
            net, card, entry = self.catalog.load(model or None)
            analysis = LANES.analyze(net, card, photo, method=method)  # slow methods in their own lane
        except gr.Error:
            raise
        except Exception as error:
            raise fail(error) from None
        return photo, analysis, card, entry

    @gpu
    def classify(self, image: str | None, model: str | None = "") -> str:
        """Classify a photo of skin with a trained image classifier (for example: Monkeypox, Chickenpox, Measles,
        Cowpox, HFMD (hand, foot and mouth disease) or Healthy skin). This is a research demo, not a medical
        diagnosis: always tell the user to see a health professional about a rash.

        Args:
            image: the photo, as a base64 data URL ("data:image/jpeg;base64,...", at most 20 MB); web addresses
                are not fetched.
            model: which classifier to use, a name from the list_models tool; empty for the most accurate one.
        Returns:
            A JSON object (as text): "top_class" (the most likely class), "probability" (its probability, 0 to 1),
            "probabilities" (every class with its probability), "positive_class" and "positive_vs_rest" (the
            probability of Monkeypox against all other classes together, when the model has that class),
            "unfamiliar" (true when the photo looks unlike the training photos so the answer is unreliable, null
            where the model cannot tell), "sentence" (the answer in plain English), "model" and "disclaimer".
        """
        _, analysis, card, entry = self._analyze(image, model)
        positive = positive_class(card)
        unfamiliar = getattr(analysis, "unfamiliar", None)
        return json.dumps({
            "top_class": analysis.predicted,
            "probability": round(analysis.probabilities[analysis.predicted], 4),
            "probabilities": {label: round(p, 4) for label, p in analysis.top_k(len(card.labels))},
            "positive_class": positive,
            "positive_vs_rest": None if positive is None else round(analysis.probabilities[positive], 4),
            "unfamiliar": None if unfamiliar is None else bool(unfamiliar),
            "sentence": texts.prediction_sentence(analysis.probabilities, "en", card=card, unfamiliar=unfamiliar),
            "model": entry.name,
            "disclaimer": texts.disclaimer("en"),
        }, ensure_ascii=False)

    @gpu
    def explain(self, image: str | None, model: str | None = "", method: str | None = "gradcam") -> Any:
        """Show which parts of a skin photo made the classifier choose its answer: returns the photo with a
        heatmap laid over it (red and yellow: the regions that raised the score of the predicted class most;
        blue: regions that mattered little). The heatmap shows where the model looked, not where a disease is.

        Args:
            image: the photo, as a base64 data URL ("data:image/jpeg;base64,...", at most 20 MB); web addresses
                are not fetched.
            model: which classifier to use, a name from the list_models tool; empty for the most accurate one.
            method: how the heatmap is computed: "gradcam" (default, fast and standard), "gradcam++",
                "xgradcam", "hirescam", "layercam", "eigencam"; "scorecam" and "ablationcam" are slow.
        Returns:
            The heatmap on the photo (PNG image). Use the classify tool for the class and its probability.
        """
        photo, analysis, _, _ = self._analyze(image, model, method or "gradcam")
        shown = photo.copy()
        shown.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE))
        # One output only: Gradio 6.31's MCP server passes a queued tool's several outputs on as one Python repr.
        return senet.overlay(shown, analysis.cam, opacity=0.5)

    def list_models(self) -> str:
        """List the skin-photo classifiers this app can use, most accurate first (the first is the default).

        Returns:
            A JSON list (as text); each entry has "name" (pass it as the model argument of classify or explain), "title"
            (a readable name), "architecture", "classes" (what it can recognise), "accuracy" (the fraction of test
            photos it classified correctly, averaged over cross-validation folds where available, or null) and
            "available" (false, with a "reason", when the model cannot be used right now).
        """
        models = []
        for name in self.catalog.names():
            entry = self.catalog.entries[name]
            card = entry.card
            accuracy = headline_accuracy(card.metrics) if card else None
            models.append({
                "name": name, "title": entry.display_name, "architecture": card.arch if card else None,
                "classes": list(card.labels) if card else [], "accuracy": None if accuracy is None else
                round(accuracy, 4), "available": entry.available, "reason": entry.error})
        return json.dumps(models, ensure_ascii=False)


def build(tools: Tools, heavy: dict[str, Any]) -> SimpleNamespace:
    """Hidden components and the three named endpoints (call inside the Blocks)."""
    ui = SimpleNamespace()
    with gr.Column(visible=False):
        ui.image = photo_input(label="image")
        ui.model = gr.Textbox("", label="model")
        ui.method = gr.Textbox("gradcam", label="method")
        # JSON as text: MCP passes text outputs on as they are (a gr.JSON output would reach it as a Python repr)
        ui.json = gr.Textbox(label="result")
        ui.overlay = gr.Image(type="pil", format="png", label="heatmap")
        ui.models = gr.Textbox(label="models")
        ui.trigger = gr.Button(visible=False)
    ui.trigger.click(tools.classify, [ui.image, ui.model], ui.json, api_name="classify", **heavy)
    ui.trigger.click(tools.explain, [ui.image, ui.model, ui.method], ui.overlay, api_name="explain", **heavy)
    ui.trigger.click(tools.list_models, None, ui.models, api_name="list_models", queue=False)
    return ui
