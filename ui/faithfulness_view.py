"""The faithfulness check next to the heatmap: a button and one sentence (computed only when asked for: it
costs a few analyses, see ``senet.faithfulness``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gradio as gr

from senet import se_sentences
from senet.catalog import Catalog
from senet.faithfulness import faithfulness

from . import i18n
from .components import Result, fail, gpu
from .i18n import I18N
from .se_tab import model_view

i18n.add({
    "en": {
        "faith_button": "How faithful is this heatmap?",
        "faith_help": ("Hides the 20 % most highlighted pixels (filled in from their neighbours, the ROAD metric "
                       "of the grad-cam package) and, as a control, the 20 % least highlighted, then asks the "
                       "model again. Takes a second or two."),
    },
    "zh": {
        "faith_button": "这张热力图可信吗？",
        "faith_help": ("遮住热力图最突出的 20 % 像素（用周围像素填补，即 grad-cam 包的 ROAD 指标），"
                       "并以遮住最不突出的 20 % "
                       "作为对照，再让模型预测一次。需要一两秒。"),
    },
})


def layout() -> SimpleNamespace:
    """The button, the sentence and a help line (call under the heatmap)."""
    ui = SimpleNamespace()
    with gr.Row():
        ui.button = gr.Button(I18N("faith_button"), size="sm", elem_id="faith-button", scale=0, min_width=240)
        ui.sentence = gr.Markdown(elem_id="faith-sentence")
    gr.Markdown(I18N("faith_help"), elem_classes="status")
    return ui


def wire(catalog: Catalog, ui: SimpleNamespace, result: gr.State, analyses: list[Any]) -> None:
    """The button's event; a new analysis clears the old sentence."""

    @gpu
    def score(result: Result | None, request: gr.Request | None = None) -> str:
        if result is None:
            return ""
        try:
            net, card, _ = catalog.load(result.model)
            analysis = result.analysis  # faithfulness() is serialised per model inside
            found = faithfulness(net, card, model_view(result), analysis.cam, analysis.target)
        except Exception as error:
            raise fail(error) from None
        return se_sentences.faithfulness_sentence(found, i18n.lang(request))

    ui.button.click(score, result, ui.sentence, api_name="faithfulness", concurrency_id="models",
                    api_visibility="undocumented")
    for event in analyses:
        event.success(lambda: "", None, ui.sentence, api_visibility="private")
