"""Honest answers in the page: the unfamiliar-photo warning, the examples' truth next to the model's answer, and
the model card's reliability diagram.

The Explore tab calls ``warning_box()`` above its prediction and chains ``TrustViews.after_analysis`` on every
analysis; the Model card tab calls ``reliability_plot()`` and ``wire`` fills it when a model is chosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import gradio as gr
from PIL import Image

import senet
from senet import texts
from senet.catalog import Catalog, ModelUnavailable, UnknownModel

from .components import EXAMPLES, Result
from .i18n import add, lang, word

DIMMED = "unfamiliar-prediction"  # CSS class of the prediction when the photo looks unfamiliar
CSS = f"""
#unfamiliar {{ border-left: 4px solid #dc2626; background: #fef2f2; color: #7f1d1d; padding: 0.6rem 0.9rem;
  border-radius: 6px; font-size: 1.05rem; }}
.dark #unfamiliar {{ background: #3b0d0d; color: #fecaca; }}
#unfamiliar p {{ margin: 0; }}
.{DIMMED} {{ opacity: 0.4; filter: grayscale(1); }}
/* Example captions (class, then the model's answer after a run) go under each photo, not over it. */
#examples .grid-container {{ grid-template-rows: none; grid-auto-rows: auto; }}
#examples .thumbnail-item {{ aspect-ratio: auto; height: auto; display: flex; flex-direction: column; }}
#examples .thumbnail-item > img {{ aspect-ratio: 1 / 1; width: 100%; height: auto; flex: none; object-fit: cover; }}
#examples .caption-label {{ position: static; max-width: none; width: 100%; box-sizing: border-box; border: none;
  border-top: 1px solid var(--border-color-primary); border-radius: 0; white-space: normal; text-align: center;
  font-size: 0.7rem; line-height: 1.2; padding: 2px 3px; overflow-wrap: anywhere; }}
#examples .thumbnail-item:hover .caption-label {{ opacity: 1; }}
"""

add({
    "en": {"trust_model": "model", "reliability": "Reliability on the test photos",
           "rel_confidence": "confidence in the top class", "rel_accuracy": "share right",
           "rel_ideal": "perfectly calibrated", "rel_after": "after calibration", "rel_before": "before",
           "rel_none": "This model has no calibration data."},
    "zh": {"trust_model": "模型", "reliability": "测试照片上的可靠性",
           "rel_confidence": "对最可能类别的置信度", "rel_accuracy": "答对的比例",
           "rel_ideal": "完全校准", "rel_after": "校准后", "rel_before": "校准前",
           "rel_none": "该模型没有校准数据。"},
})


def warning_box() -> gr.Markdown:
    """The unfamiliar-photo warning, hidden until a photo needs it (place it above the prediction)."""
    return gr.Markdown(visible=False, elem_id="unfamiliar")


def reliability_plot() -> gr.Plot:
    """The reliability diagram of the chosen model (place it in the Model card tab)."""
    return gr.Plot(elem_id="reliability", show_label=False)


def warning_markdown(sentence: str) -> str:
    """A warning as the page shows it: ``⚠️ **sentence**`` (empty stays empty)."""
    return f"⚠️ **{sentence}**" if sentence else ""


def warning_text(analysis: senet.Analysis, language: str) -> str:
    """``⚠️ This photo does not look like ...`` when the analysis flags the photo, else empty (also when the
    checkpoint has no statistics: then nothing is said)."""
    return warning_markdown(texts.unfamiliar_sentence(language)) if analysis.unfamiliar else ""


def example_caption(truth: str, predicted: str, language: str) -> str:
    """The true class with the model's verdict, short enough for a thumbnail: ``✓ Measles`` when the model
    agrees, ``✗ Chickenpox · model: Monkeypox`` when it does not."""
    if truth == predicted:
        return f"✓ {texts.label_name(truth, language)}"
    separator = "：" if language == "zh" else ": "
    return (f"✗ {texts.label_name(truth, language)} · "
            f"{word('trust_model', language)}{separator}{texts.label_name(predicted, language)}")


def reliability_figure(calibration: Mapping[str, Any], language: str) -> Any:
    """A plotly reliability diagram: accuracy against confidence per bin, before and after calibration."""
    import plotly.graph_objects as go

    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=word("rel_ideal", language),
                                line={"dash": "dot", "color": "gray"}))
    for key, name, colour in (("reliability_raw", "rel_before", "#94a3b8"), ("reliability", "rel_after", "#ea580c")):
        rows = [row for row in calibration.get(key, []) if row.get("n")]
        if rows:
            figure.add_trace(go.Scatter(
                x=[row["confidence"] for row in rows], y=[row["accuracy"] for row in rows], mode="lines+markers",
                name=word(name, language), marker={"size": [6 + 2 * row["n"] ** 0.5 for row in rows], "color": colour},
                line={"color": colour}, text=[f"n = {row['n']}" for row in rows],
                hovertemplate="%{x:.2f} → %{y:.2f} (%{text})<extra></extra>"))
    ece0, ece1 = calibration["raw"]["ece"], calibration["calibrated"]["ece"]
    figure.update_layout(
        title=f"{word('reliability', language)} · ECE {ece0 * 100:.1f} % → {ece1 * 100:.1f} % · "
              f"T = {calibration['temperature']:.2f}",
        xaxis={"title": word("rel_confidence", language), "range": [0, 1]},
        yaxis={"title": word("rel_accuracy", language), "range": [0, 1.02]},
        height=420, margin={"l": 60, "r": 20, "t": 60, "b": 50}, legend={"x": 0.02, "y": 0.98})
    return figure


class TrustViews:
    """Handlers for the warning, the example captions and the reliability diagram."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._answers: dict[str, list[str]] = {}  # model name -> its answer for every example

    def example_answers(self, name: str) -> list[str]:
        """The model's top class for every example photo (computed once per model)."""
        if name not in self._answers:
            net, card, _ = self.catalog.load(name)
            images = []
            for path, _ in EXAMPLES:
                with Image.open(path) as image:
                    images.append(image.convert("RGB"))
            probabilities = senet.predict(net, card, images)  # serialised per model, like analyze
            self._answers[name] = [max(p.items(), key=lambda item: item[1])[0] for p in probabilities]
        return self._answers[name]

    def after_analysis(self, result: Result | None, request: gr.Request | None = None) -> tuple[Any, Any, Any]:
        """The warning (shown first), the prediction dimmed or not, and the examples with truth and answer."""
        if result is None:
            return gr.skip(), gr.skip(), gr.skip()
        language = lang(request)
        warning = warning_text(result.analysis, language)
        label = gr.update(elem_classes=[DIMMED] if result.analysis.unfamiliar else [])
        try:
            answers = self.example_answers(result.model)
        except (UnknownModel, ModelUnavailable):
            return gr.update(value=warning, visible=bool(warning)), label, gr.skip()
        gallery = [(str(path), example_caption(truth, answer, language))
                   for (path, truth), answer in zip(EXAMPLES, answers)]
        return gr.update(value=warning, visible=bool(warning)), label, gallery

    def reliability(self, model: str | None, request: gr.Request | None = None) -> Any:
        """The chosen model's reliability diagram, or nothing when its card has no calibration."""
        try:
            card = self.catalog.entry(model or None).card
        except UnknownModel:
            return None
        calibration = card.metrics.get("calibration") if card else None
        if not isinstance(calibration, Mapping) or "reliability" not in calibration:
            return None
        return reliability_figure(calibration, lang(request))


def wire(demo: gr.Blocks, views: TrustViews, ui: SimpleNamespace, warning: gr.Markdown, plot: gr.Plot,
         result: gr.State, analyses: list[Any], heavy: dict[str, Any]) -> None:
    """Chain the warning and captions on every analysis; fill the diagram when a model is shown."""
    for event in analyses:
        event.success(views.after_analysis, result, [warning, ui.label, ui.gallery], api_visibility="private",
                      **heavy)
    demo.load(views.reliability, ui.model, plot, api_visibility="private")
    ui.model.input(views.reliability, ui.model, plot, api_visibility="private")
