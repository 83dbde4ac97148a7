"""The Explore tab: model picker, photo and examples, prediction and Grad-CAM; it hosts the SE tab."""

from __future__ import annotations

import hashlib
import html
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
from PIL import Image

import senet
from senet import heatmaps, texts
from senet.catalog import Catalog, Entry, ModelUnavailable, UnknownModel
from senet.image_io import load_image

from . import faithfulness_view, se_tab
from .components import DISPLAY_SIDE, EXAMPLES, LOG, PROGRESS, Result, fail, gpu, photo_input
from .i18n import I18N, lang
from .labels import class_names, layer_name, legend, method_name, model_choices, model_name, say, status_line
from .lanes import LANES, is_slow
from .request_checks import check_options, opacity_value
from .run_control import Cancelled, Runs
from .se_tab import PAPER_VIEW, SeHandlers

OUTPUTS = 8  # label, overlay, heatmap, SE chart, SE overview, sentence, status, result
# Identical requests (same photo bytes, model and options) are answered from here; a Result is a few MB.
ANALYSES = gr.Cache(max_size=24)


def _file_digest(image: Any) -> str | None:
    """SHA-256 of the photo's bytes (a data URL's, or an uploaded file's: the cache key's photo part); None when it
    cannot be read."""
    if isinstance(image, bytes):
        return hashlib.sha256(image).hexdigest()
    try:
        return hashlib.sha256(Path(image).read_bytes()).hexdigest()
    except (TypeError, OSError):
        return None


def _page_session(request: gr.Request | None, event: gr.EventData | None) -> str | None:
    """The browser session of a request triggered on the page, else None: a newer page action replaces an older
    one, while an API client's parallel requests (no trigger) all run to the end."""
    if event is None or getattr(event, "target", None) is None:
        return None
    return getattr(request, "session_hash", None)


class Explorer:
    """The Explore tab's handlers: turn widget values into library calls and results into widget values."""

    def __init__(self, catalog: Catalog, se: SeHandlers) -> None:
        self.catalog = catalog
        self.se = se
        self.runs = Runs()
        self._warmed: set[str] = set()

    def _photo(self, image: Image.Image, analysis: senet.Analysis, card: senet.ModelCard) -> Image.Image:
        if card.resize_ratio < 1:  # the network saw a centre crop: draw on exactly that
            return Image.fromarray((analysis.input_rgb * 255).round().astype("uint8"))
        photo = image.copy()  # the network saw the whole photo, squashed: its map stretches back onto it
        photo.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE))
        return photo

    def _warm_up(self, net: Any, card: senet.ModelCard, entry: Entry) -> None:
        """One throw-away analysis when a model is first shown, so a visitor's first one is not the slow one
        (lazy imports, first-call kernel set-up)."""
        if entry.name in self._warmed:
            return
        senet.analyze(net, card, Image.new("RGB", card.input_size[::-1], (128, 128, 128)))
        self._warmed.add(entry.name)

    @staticmethod
    def _reporter(progress: Any, method: str, language: str) -> Any:
        """The library's fraction done -> one line on the progress bar (what runs and how far it is)."""
        def report(fraction: float) -> None:
            key = "progress" if fraction > 0 else "progress_start"
            progress(fraction, desc=say(key, language, method=method, percent=round(fraction * 100)))
        return report

    def _result(self, image: str | bytes | None, model: str | None, method: str | None, target: str | None,
                layer: str | None, ticket: Any, progress: Any, language: str) -> tuple[Result, bool]:
        """The session's analysis, and whether it came from the cache (the same photo, model and options were
        analysed before)."""
        photo_in = load_image(image)
        net, card, entry = self.catalog.load(model or None)
        # empty widget values mean the defaults; analyze checks the options (OptionError, shown as is)
        method, target, layer = method or "gradcam", target or None, layer or None
        digest = _file_digest(image)
        key = (digest, entry.name, method, target, layer)
        hit = ANALYSES.get(key) if digest else None
        if hit is not None:
            return hit["result"], True
        spec = senet.CAM_METHODS.get(method)
        slow = is_slow(method)
        report = self._reporter(progress, spec.display_name.split(" (")[0], language) if spec and slow else None
        # One analysis per model at a time (analyze re-enters the model's lock), different models side by side;
        # slow methods in their own lane, on a copy of the model (ui/lanes.py).
        def still_wanted() -> None:
            if not self.runs.current(ticket):  # a newer request of this session came while this one waited
                raise Cancelled

        analysis = LANES.analyze(net, card, photo_in, method=method, target=target, layer=layer,
                                 progress=self.runs.watch(ticket, report), waited=still_wanted)
        result = Result(entry.name, analysis, self._photo(photo_in, analysis, card))
        if digest:
            ANALYSES.set(key, result=result)
        self._warmed.add(entry.name)
        return result, False

    def _stopped(self, ticket: Any, language: str) -> tuple[Any, ...]:
        """Outputs of an analysis that stopped: nothing changes, except a note when the visitor cancelled it."""
        status = say("cancelled", language) if self.runs.cancelled(ticket) else gr.skip()
        return (*(gr.skip() for _ in range(6)), status, gr.skip())

    @gpu
    def analyze(self, image: str | bytes | None, model: str | None, method: str = "gradcam", target: str | None = "",
                layer: str | None = "", opacity: float = 0.5, block: str = PAPER_VIEW,
                compare: str = "top", theme: str = "light", request: gr.Request | None = None,
                progress: gr.Progress = PROGRESS, event: gr.EventData | None = None) -> tuple[Any, ...]:
        """Predict, explain and chart the SE channel weights of one photo.

        Args:
            image: the photo (JPEG, PNG, WebP, GIF, BMP or TIFF).
            model: a model name from the picker; empty for the default model.
            method: CAM method (gradcam, gradcam++, xgradcam, hirescam, layercam, eigencam, scorecam, ablationcam).
            target: class to explain; empty for the predicted class.
            layer: CAM layer; empty for the model's default (its last stage).
            opacity: heatmap opacity on the photo, 0 to 1.
            block: SE block to chart (e.g. SE_5_2), or "paper" for the last block of each stage.
            compare: classes whose average channel weights are drawn on the chart: "top" (the two most likely),
                "all" or "none".
            theme: "light" or "dark" chart colours.
        Returns:
            Class probabilities, the heatmap on the photo, the raw heatmap, the per-block SE chart, the all-blocks
            SE chart, a plain-language sentence and a status line (a short line, then the timings in a
            ``<details>`` element).
        """
        language = lang(request)
        check_options(method, target, layer, opacity, block, compare, theme)
        ticket = self.runs.start(_page_session(request, event))
        start = time.perf_counter()
        try:
            result, cached = self._result(image, model, method, target, layer, ticket, progress, language)
            analysis = result.analysis
            overlay = senet.overlay(result.photo, analysis.cam, opacity=opacity_value(opacity))
            heatmap = senet.heatmap_image(analysis.cam, size=result.photo.size)
            chart, overview = self.se.figures(result, block, compare, theme, language)
        except Cancelled:
            return self._stopped(ticket, language)
        except gr.Error:
            raise
        except Exception as error:
            raise fail(error) from None
        entry = self.catalog.entry(result.model)
        card = entry.card
        assert card is not None  # the entry was just loaded
        names = class_names(card.labels, language, card.data)
        shown = {names[label]: p for label, p in analysis.probabilities.items()}
        positive = texts.positive_class(card)
        sentence = texts.prediction_sentence(shown, language, card=card,
                                             positive=names.get(positive, positive) if positive else None,
                                             unfamiliar=analysis.unfamiliar)
        elapsed = (time.perf_counter() - start) * 1000  # what the visitor waited (a cached answer is fast)
        status = status_line(elapsed, analysis.timings, self.catalog.device_name,
                             senet.CAM_METHODS[analysis.method].display_name,
                             model_name(entry.display_name, language), language, cached=cached)
        return shown, overlay, heatmap, chart, overview, sentence, status, result

    def analyze_if_image(self, image: str | bytes | None, model: str | None, method: str, target: str | None,
                         layer: str | None, opacity: float, block: str, compare: str, theme: str,
                         request: gr.Request | None = None, progress: gr.Progress = PROGRESS,
                         event: gr.EventData | None = None) -> tuple[Any, ...]:
        """``analyze`` for automatic triggers: without a photo the views are cleared; with an unusable model they
        stay as the model switch left them (cleared)."""
        if image is None:
            return (None, None, None, None, None, "", I18N("status_idle"), None)
        try:
            usable = self.catalog.entry(model or None).available
        except UnknownModel:
            usable = True  # let analyze() say so
        if not usable:
            return tuple(gr.skip() for _ in range(OUTPUTS))
        return self.analyze(image, model, method, target, layer, opacity, block, compare, theme, request, progress,
                            event)

    def cancel(self, request: gr.Request | None = None) -> str:
        """The Cancel button: stop this session's running analysis at its next progress report."""
        self.runs.cancel(getattr(request, "session_hash", None))
        return say("cancelled", lang(request))

    @staticmethod
    def clear_views() -> tuple[Any, ...]:
        """Every view that belongs to the previous model or photo, emptied (label, images, charts, texts, the
        session's analysis, the heatmap caption, the drill-down's channel and map)."""
        return (None, None, None, None, None, "", "", None, "", gr.update(choices=[], value=None), None)

    def caption(self, result: Result | None, request: gr.Request | None = None) -> str:
        """What the heatmap shows, its colour scale, and a note when the map says little."""
        if result is None:
            return ""
        language = lang(request)
        analysis = result.analysis
        card = self.catalog.entry(result.model).card
        assert card is not None  # the session's analysis came from this model
        name = class_names(card.labels, language, card.data)[analysis.target]
        default = analysis.layer == next(iter(senet.cam_layers(self.catalog.load(result.model)[0])))
        layer = say("last_stage", language) if default else analysis.layer
        method = senet.CAM_METHODS[analysis.method].display_name.split(" (")[0]
        text = say("caption", language, label=html.escape(name), method=method, layer=html.escape(layer))
        parts = [f'<p class="cam-caption">{text}</p>', legend(heatmaps.colormap_stops(), language)]
        reason = heatmaps.uninformative(analysis.cam)
        if reason:
            parts.append(f'<p class="cam-note">⚠️ {say("note_" + reason, language)}</p>')
        return "".join(parts)

    def select_model(self, model: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Status, model card, classes, CAM layers and SE blocks of the chosen model (loaded once)."""
        language = lang(request)
        folder = html.escape(self.catalog.directory.name + "/")
        try:
            net, card, entry = self.catalog.load(model or None)
            self._warm_up(net, card, entry)
        except UnknownModel:
            note = say("no_models", language, folder=folder) if not self.catalog.available() else \
                say("model_unavailable", language)
            return (note, "", *(gr.update() for _ in range(5)))
        except ModelUnavailable as error:
            LOG.warning("model picked but unavailable: %s", error)
            return (say("model_unavailable", language), "", *(gr.update() for _ in range(5)))
        layers = senet.cam_layers(net)
        first = next(iter(layers))
        blocks = [info.name for info in senet.se_blocks(net)]
        profiled = card.class_profiles.get("classes")
        names = class_names(card.labels, language, card.data)
        layer_choices = [(layer_name(first, layers[first], language, default=True), "")]
        layer_choices += [(layer_name(key, text, language, default=False), key) for key, text in layers.items()
                          if key != first]
        return (
            say("model_note", language, classes=card.num_classes, blocks=len(blocks), folder=folder),
            texts.model_card_markdown(card, language, display_name=model_name(entry.display_name, language)),
            gr.update(choices=[(I18N("predicted_class"), "")] + [(names[label], label) for label in card.labels],
                      value=""),
            gr.update(choices=layer_choices, value=""),
            gr.update(choices=[(I18N("paper_view"), PAPER_VIEW)] + [(b, b) for b in blocks], value=PAPER_VIEW),
            gr.update(visible=bool(profiled)),
            gr.update(choices=blocks, value=blocks[-1] if blocks else None),
        )

    def switch_model(self, model: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """``select_model`` for the picker, plus a new token that starts the analysis of the shown photo."""
        return (*self.select_model(model, request), time.monotonic_ns())

    def page_words(self, request: gr.Request | None = None) -> tuple[Any, Any, Any]:
        """The model picker's names, the examples' captions and the CAM methods in the page's language."""
        language = lang(request)
        choices = model_choices(self.catalog.choices(), language)
        names = class_names([label for _, label in EXAMPLES], language)
        methods = [(method_name(spec.display_name, language), key) for key, spec in senet.CAM_METHODS.items()]
        return (gr.update(choices=choices), [(str(path), names[label]) for path, label in EXAMPLES],
                gr.update(choices=methods))

    def overlay(self, result: Result | None, opacity: float) -> Any:
        """The heatmap on the photo at another opacity (from this session's last analysis)."""
        if result is None:
            return gr.skip()
        return senet.overlay(result.photo, result.analysis.cam, opacity=opacity_value(opacity))

    @staticmethod
    def pick_example(evt: gr.SelectData) -> str:
        """The example clicked in the gallery (by index: clients never name a server file)."""
        return str(EXAMPLES[evt.index][0])

def inputs_column(catalog: Catalog, labels: list[str]) -> SimpleNamespace:
    """Model picker, photo, examples and explanation options (call inside a ``gr.Column``)."""
    ui = SimpleNamespace()
    # allow_custom_value: an API client's "" means the default model (the handlers resolve and check names).
    ui.model = gr.Dropdown(catalog.choices(), value=catalog.default, label=I18N("model"), allow_custom_value=True,
                           elem_id="model")
    ui.model_note = gr.Markdown(elem_classes="status", elem_id="model-note")
    ui.ready = gr.State(0)  # changes when a newly picked model is ready: starts the analysis of the shown photo
    ui.image = photo_input(sources=["upload", "webcam", "clipboard"], label=I18N("photo"), height=320,
                           elem_id="photo")
    with gr.Row():
        ui.run = gr.Button(I18N("analyze"), variant="primary", elem_id="analyze", scale=3)
        ui.cancel = gr.Button(I18N("cancel"), variant="stop", elem_id="cancel", scale=1, min_width=90)
    gr.Markdown(I18N("examples"), elem_classes="examples-title")
    # No label on the gallery (its badge covered the first row), no buttons (a stray "Download All"), and auto
    # height: all twelve examples show at once, without a scroll box.
    ui.gallery = gr.Gallery([(str(path), label) for path, label in EXAMPLES], show_label=False, columns=4,
                            height="auto", allow_preview=False, object_fit="cover", buttons=[], elem_id="examples")
    with gr.Accordion(I18N("options"), open=False):
        methods = [(method.display_name, key) for key, method in senet.CAM_METHODS.items()]
        ui.method = gr.Dropdown(methods, value="gradcam", label=I18N("method"))
        # allow_custom_value: the choices follow the selected model; the handler checks the value itself.
        ui.target = gr.Dropdown([(I18N("predicted_class"), "")] + [(lb, lb) for lb in labels], value="",
                                label=I18N("target"), allow_custom_value=True)
        ui.layer = gr.Dropdown([("default", "")], value="", label=I18N("layer"), allow_custom_value=True)
    return ui


def results_column(ui: SimpleNamespace, labels: list[str], profiled: bool) -> None:
    """Sentence, prediction, the Grad-CAM tab and the SE tab (call inside a ``gr.Column``)."""
    ui.sentence = gr.Markdown(elem_classes="sentence", elem_id="sentence")
    ui.label = gr.Label(num_top_classes=min(5, max(2, len(labels))), label=I18N("prediction"), elem_id="prediction")
    with gr.Tabs():
        with gr.Tab(I18N("tab_cam")):
            ui.cam_caption = gr.HTML(elem_id="cam-caption")
            with gr.Row():  # titles above the images: a label badge would cover their top
                with gr.Column(min_width=200):
                    gr.Markdown(I18N("overlay"), elem_classes="image-title")
                    ui.overlay = gr.Image(type="pil", format="png", label=I18N("overlay"), show_label=False,
                                          elem_id="overlay", buttons=["download", "fullscreen"])
                with gr.Column(min_width=200):
                    gr.Markdown(I18N("heatmap"), elem_classes="image-title")
                    ui.heatmap = gr.Image(type="pil", format="png", label=I18N("heatmap"), show_label=False,
                                          elem_id="heatmap", buttons=["fullscreen"])
            ui.opacity = gr.Slider(0, 1, value=0.5, step=0.05, label=I18N("opacity"))
            ui.faith = faithfulness_view.layout()
        with gr.Tab(I18N("tab_se")):
            ui.se = se_tab.layout(profiled)
    ui.status = gr.Markdown(I18N("status_idle"), elem_classes="status", elem_id="status")


def model_pickers(ui: SimpleNamespace, card_view: gr.Markdown) -> list[Any]:
    """What ``Explorer.select_model`` fills in when another model is chosen."""
    se = ui.se
    return [ui.model_note, card_view, ui.target, ui.layer, se.block, se.compare, se.drill_block]


# After a run on a narrow screen, bring the prediction into view (it sits far below the photo there).
SCROLL_TO_PREDICTION = """() => {
  if (window.innerWidth < 768) document.getElementById('sentence')?.scrollIntoView({behavior: 'smooth'});
}"""


def wire(demo: gr.Blocks, handlers: Explorer, ui: SimpleNamespace, card_view: gr.Markdown, result: gr.State,
         theme: gr.Textbox, heavy: dict[str, Any]) -> list[Any]:
    """The Explore tab's events; returns the events that produce a new analysis (for the SE tab).

    One user action starts one analysis job: dropdowns trigger on ``change`` (Gradio 6.31's dropdown sends
    ``input`` twice for a mouse pick, once on select and once on blur, and also on a blur without a change).
    A newer action does not wait for the older one (``trigger_mode="multiple"``): the handler's ticket
    (``run_control.Runs``) makes the older job of the session stop at its next progress report or before it
    takes the model's lock, so the page always ends with the newest request's result.
    """
    se = ui.se
    inputs = [ui.image, ui.model, ui.method, ui.target, ui.layer, ui.opacity, se.block, se.compare, theme]
    outputs = [ui.label, ui.overlay, ui.heatmap, se.chart, se.overview, ui.sentence, ui.status, result]
    hidden = {"api_visibility": "undocumented"}
    progress = {"show_progress": "full", "show_progress_on": [ui.label], "trigger_mode": "multiple"}
    run = ui.run.click(handlers.analyze, inputs, outputs, api_name="analyze", **progress, **heavy)
    auto = gr.on([ui.image.change, ui.method.change, ui.target.change, ui.layer.change, ui.ready.change],
                 handlers.analyze_if_image, inputs, outputs, api_name="reanalyze", **hidden, **progress, **heavy)
    for event in (run, auto):
        event.success(handlers.caption, result, ui.cam_caption, queue=False, api_visibility="private").then(
            None, js=SCROLL_TO_PREDICTION)
    ui.cancel.click(handlers.cancel, None, ui.status, cancels=[run, auto], queue=False, api_visibility="private")
    pickers = model_pickers(ui, card_view)
    cleared = [*outputs, ui.cam_caption, se.channel, se.channel_image]
    ui.model.change(handlers.clear_views, None, cleared, queue=False, api_visibility="private").then(
        handlers.switch_model, ui.model, [*pickers, ui.ready], api_name="model_info", **heavy)
    demo.load(handlers.select_model, ui.model, pickers, api_visibility="private", **heavy)
    demo.load(handlers.page_words, None, [ui.model, ui.gallery, ui.method], queue=False, api_visibility="private")
    ui.gallery.select(handlers.pick_example, None, ui.image, api_name="pick_example", **hidden)
    ui.opacity.release(handlers.overlay, [result, ui.opacity], ui.overlay, api_name="overlay", **hidden)
    faithfulness_view.wire(handlers.catalog, ui.faith, result, [run, auto])
    return [run, auto]
