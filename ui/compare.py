"""The Compare tab: one photo, two to four models side by side, and whether they agree (``/compare``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gradio as gr
import numpy as np

import senet
from senet import compare as comparing
from senet import se_analysis, texts
from senet.catalog import Catalog
from senet.image_io import load_image
from ui import se_figures
from ui.components import DISPLAY_SIDE, fail, gpu, photo_input
from ui.i18n import I18N, add, lang
from ui.refusals import refuse
from ui.se_tab import plot
from ui.trust_views import warning_markdown

add({
    "en": {
        "tab_compare": "Compare models",
        "compare_help": "The same photo through several models, with the same CAM method and colour scale.",
        "compare_models": "Models (two to four)",
        "compare_run": "Compare",
        "compare_probs": "Probabilities per model",
        "compare_heatmaps": "Heatmaps (red: what raised each model's score for its top class)",
        "compare_se": "SE channel weights, last block of each stage",
        "compare_stages": "SE channel weights per stage",
    },
    "zh": {
        "tab_compare": "比较模型",
        "compare_help": "同一张照片交给多个模型，使用相同的 CAM 方法和配色。",
        "compare_models": "模型（两到四个）",
        "compare_run": "比较",
        "compare_probs": "各模型的概率",
        "compare_heatmaps": "热力图（红色：最能提高各模型对其首选类别评分的区域）",
        "compare_se": "SE 通道权重：每个阶段的最后一个模块",
        "compare_stages": "各阶段的 SE 通道权重",
    },
})

FAST_METHODS = [(spec.display_name, key) for key, spec in senet.CAM_METHODS.items() if not spec.slow]


def _family(arch: str) -> str:
    """``resnet`` or ``densenet`` (with or without SE): models of one family have comparable SE stages."""
    return arch.removeprefix("se_").rstrip("0123456789")


def stage_table(comparison: comparing.Comparison) -> str:
    """Markdown: for each model, the mean ± std channel weight of the last SE block of each stage."""
    per_model = []
    stages: list[str] = []
    for outcome, analysis in comparison.analyses():
        excitations = analysis.excitations
        cells = {}
        for block in se_analysis.last_block_per_stage(list(excitations)):
            stage = block.split("_")[1] if block.count("_") == 2 else block
            values = np.asarray(excitations[block], dtype=float)
            cells[stage] = f"{values.mean():.2f} ± {values.std():.2f} ({block})"
            if stage not in stages:
                stages.append(stage)
        per_model.append((outcome.short_name, cells))
    header = "| model | " + " | ".join(f"stage {stage}" for stage in stages) + " |"
    lines = [header, "|" + "---|" * (len(stages) + 1)]
    lines += ["| " + name + " | " + " | ".join(cells.get(stage, "—") for stage in stages) + " |"
              for name, cells in per_model]
    return "\n".join(lines)


class Comparer:
    """The Compare tab's handler."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    @gpu
    def compare(self, image: str | None, models: list[str] | None, method: str = "gradcam", theme: str = "light",
                request: gr.Request | None = None) -> tuple[Any, ...]:
        """Run one photo through several models and say whether they agree.

        Args:
            image: the photo (JPEG, PNG, WebP, GIF, BMP or TIFF).
            models: model names (from the model picker); empty for every available model (at most four).
            method: CAM method used for every model (gradcam, gradcam++, xgradcam, hirescam, layercam, eigencam).
            theme: "light" or "dark" chart colours.
        Returns:
            The agreement sentence (after the unfamiliar-photo warning when a model finds the photo unlike its
            training photos); a table of probabilities (one row per class, one column per model); the
            heatmap of each model on the photo, captioned with the model and its top class; the SE chart, one
            column per model (a plotly figure, when all models are of one family; else empty); a table of
            per-stage SE channel weights.
        """
        language = lang(request)
        method = method or "gradcam"
        if method not in senet.CAM_METHODS or senet.CAM_METHODS[method].slow:
            raise refuse(f"Please choose one of these CAM methods: {', '.join(k for _, k in FAST_METHODS)}.")
        try:
            photo = load_image(image)
            result = comparing.compare(self.catalog, photo, list(models or []), method=method)
        except comparing.CompareError as error:
            raise refuse(str(error)) from None
        except Exception as error:
            raise fail(error) from None
        shown = photo.copy()
        shown.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE))
        pairs = result.analyses()
        labels = list(dict.fromkeys(label for _, analysis in pairs for label in analysis.probabilities))
        rows: list[list[Any]] = [[texts.label_name(label, language)]
                                 + [round(a.probabilities.get(label, float("nan")), 4) for _, a in pairs]
                                 for label in labels]
        table = {"headers": ["class"] + [o.short_name for o, _ in pairs], "data": rows}
        overlays = [(senet.overlay(shown, a.cam, opacity=0.5),
                     f"{o.short_name}: {texts.label_name(a.predicted, language)} "
                     f"{texts.percent(a.probabilities[a.predicted])}") for o, a in pairs]
        chart = self.se_chart(pairs, theme, language)
        errors = [f"- {o.short_name}: {o.error}" for o in result.outcomes if o.error]
        warning = warning_markdown(comparing.unfamiliar_sentence(result, language))  # first, as on Explore
        summary = "\n\n".join(part for part in (warning, result.summary(language), "\n".join(errors)) if part)
        return summary, table, overlays, chart, stage_table(result)

    def se_chart(self, pairs: list[tuple[comparing.ModelOutcome, senet.Analysis]], theme: str, language: str) -> Any:
        """The side-by-side SE chart (last block of each stage, each model's predicted class average), when
        every model is of one family (else their stages are not comparable: None)."""
        if len({_family(o.arch) for o, _ in pairs}) != 1:
            return None
        columns = []
        order: list[str] = []
        for outcome, analysis in pairs:
            card = self.catalog.entry(outcome.name).card
            profiles = card.class_profiles if card else None
            order = order or list(card.labels if card else [])
            blocks = se_analysis.last_block_per_stage(list(analysis.excitations))
            gates = {block: np.asarray(analysis.excitations[block]) for block in blocks}
            averages = {}
            for block, values in gates.items():
                mean = se_analysis.block_profiles(profiles, block, values.size).means.get(analysis.predicted)
                if mean is not None:
                    averages[block] = mean
            columns.append(se_figures.ModelColumn(outcome.short_name, gates, averages, analysis.predicted))
        return plot(se_figures.compare_figure(columns, order=order, theme=theme, lang=language))


def layout(catalog: Catalog) -> SimpleNamespace:
    """The tab's widgets (call inside ``gr.Tab``)."""
    ui = SimpleNamespace()
    available = catalog.available()
    gr.Markdown(I18N("compare_help"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=300):
            ui.image = photo_input(sources=["upload", "clipboard"], label=I18N("photo"), height=260,
                                   elem_id="compare-photo")
            ui.models = gr.CheckboxGroup([c for c in catalog.choices() if c[1] in available],
                                         value=available[:comparing.MAX_MODELS], label=I18N("compare_models"))
            # Names are checked by the catalog (with a sentence for people), not by Gradio's choice check, whose
            # refusal shows Python types; API clients may also send display names.
            ui.models.preprocess = lambda payload: [str(name) for name in payload or []]
            ui.method = gr.Dropdown(FAST_METHODS, value="gradcam", label=I18N("method"))
            ui.run = gr.Button(I18N("compare_run"), variant="primary", elem_id="compare-run")
        with gr.Column(scale=7):
            ui.summary = gr.Markdown(elem_classes="sentence", elem_id="compare-summary")
            ui.table = gr.Dataframe(label=I18N("compare_probs"), interactive=False, elem_id="compare-table")
            ui.overlays = gr.Gallery(label=I18N("compare_heatmaps"), columns=comparing.MAX_MODELS, height="auto",
                                     object_fit="contain", elem_id="compare-heatmaps")
            ui.charts = gr.Plot(label=I18N("compare_se"), show_label=False, elem_id="compare-se")
            with gr.Accordion(I18N("compare_stages"), open=False):
                ui.stages = gr.Markdown()
    return ui


def wire(handler: Comparer, ui: SimpleNamespace, heavy: dict[str, Any], theme: gr.Textbox | None = None) -> None:
    """The tab's event; ``theme`` (the page's colour scheme, hidden) colours the SE chart."""
    inputs = [ui.image, ui.models, ui.method] + ([theme] if theme is not None else [])
    ui.run.click(handler.compare, inputs,
                 [ui.summary, ui.table, ui.overlays, ui.charts, ui.stages], api_name="compare", **heavy)
