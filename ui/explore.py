"""The Explore tab: model picker, photo and examples, prediction and Grad-CAM; it hosts the SE tab."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gradio as gr
from PIL import Image

import senet
from senet import texts
from senet.catalog import Catalog, Entry, ModelUnavailable, UnknownModel
from senet.image_io import load_image

from . import guards, se_tab
from .components import DISPLAY_SIDE, EXAMPLES, PROGRESS, Result, fail, gpu, photo_input
from .i18n import I18N, lang
from .se_tab import PAPER_VIEW, SeHandlers

OUTPUTS = 8  # label, overlay, heatmap, SE chart, SE overview, sentence, status, result


def _check_options(net: Any, card: senet.ModelCard, method: str | None, target: str | None,
                   layer: str | None) -> tuple[str, str | None, str | None]:
    """Validate the explanation options against the model, with messages for people; empty means default."""
    method = method or "gradcam"
    if method not in senet.CAM_METHODS:
        raise gr.Error(f"Unknown CAM method {method[:40]!r}; choose one of: {', '.join(senet.CAM_METHODS)}.",
                       print_exception=False)
    if target and target not in card.labels:
        raise gr.Error(f"This model has no class {target[:40]!r}; its classes are: {', '.join(card.labels)}.",
                       print_exception=False)
    layers = senet.cam_layers(net)
    if layer and layer not in layers:
        raise gr.Error(f"This model has no CAM layer {layer[:40]!r}; choose one of: {', '.join(layers)}.",
                       print_exception=False)
    return method, target or None, layer or None


class Explorer:
    """The Explore tab's handlers: turn widget values into library calls and results into widget values."""

    def __init__(self, catalog: Catalog, se: SeHandlers) -> None:
        self.catalog = catalog
        self.se = se
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
        with entry.lock:
            senet.analyze(net, card, Image.new("RGB", card.input_size[::-1], (128, 128, 128)))
        self._warmed.add(entry.name)

    @gpu
    def analyze(self, image: str | None, model: str | None, method: str = "gradcam", target: str | None = "",
                layer: str | None = "", opacity: float = 0.5, block: str = PAPER_VIEW,
                compare: str = "top", theme: str = "light", request: gr.Request | None = None,
                progress: gr.Progress = PROGRESS) -> tuple[Any, ...]:
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
            SE chart, a plain-language sentence and a status line (device and timing).
        """
        language = lang(request)
        guards.check_options(method, target, layer, opacity, block, compare, theme)
        try:
            photo_in = load_image(image)
            net, card, entry = self.catalog.load(model or None)
            method, target, layer = _check_options(net, card, method, target, layer)
            spec = senet.CAM_METHODS[method]
            # One analysis per model at a time, different models side by side; slow methods in their own lane.
            with guards.LANES.turn(entry, net, slow=spec.slow, session=getattr(request, "session_hash", None)) \
                    as lane_net:
                analysis = senet.analyze(lane_net, card, photo_in, target=target, method=method, layer=layer,
                                         progress=progress if spec.slow else None)
            photo = self._photo(photo_in, analysis, card)
            result = Result(entry.name, analysis, photo)
            overlay = senet.overlay(photo, analysis.cam, opacity=float(opacity))
            heatmap = senet.heatmap_image(analysis.cam, size=photo.size)
            chart, overview = self.se.figures(result, block, compare, theme)
        except gr.Error:
            raise
        except Exception as error:
            raise fail(error) from None
        self._warmed.add(entry.name)
        sentence = texts.prediction_sentence(analysis.probabilities, language)
        words = ("设备", "分析耗时") if language == "zh" else ("Device", "Analysis")
        timings = analysis.timings
        status = (f"**{words[0]}:** {self.catalog.device_name} · **{words[1]}:** {timings['total']:.0f} ms "
                  f"(forward + backward {timings.get('forward_backward', 0):.0f} ms, CAM {timings.get('cam', 0):.0f}"
                  f" ms) · {entry.display_name}")
        return analysis.probabilities, overlay, heatmap, chart, overview, sentence, status, result

    def analyze_if_image(self, image: str | None, model: str | None, method: str, target: str | None,
                         layer: str | None, opacity: float, block: str, compare: str, theme: str,
                         request: gr.Request | None = None, progress: gr.Progress = PROGRESS) -> tuple[Any, ...]:
        """``analyze`` for automatic triggers: without a photo or a usable model the last results stay."""
        try:
            usable = image is not None and self.catalog.entry(model or None).available
        except UnknownModel:
            usable = True  # let analyze() say so
        if not usable:
            return tuple(gr.skip() for _ in range(OUTPUTS))
        return self.analyze(image, model, method, target, layer, opacity, block, compare, theme, request, progress)

    def select_model(self, model: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Status, model card, classes, CAM layers and SE blocks of the chosen model (loaded once)."""
        try:
            net, card, entry = self.catalog.load(model or None)
            self._warm_up(net, card, entry)
        except (UnknownModel, ModelUnavailable) as error:
            return (f"⚠️ {error}", "", *(gr.update() for _ in range(5)))
        layers = senet.cam_layers(net)
        blocks = [info.name for info in senet.se_blocks(net)]
        profiled = card.class_profiles.get("classes")
        return (
            f"{card.num_classes} classes · {len(blocks)} SE blocks · {self.catalog.device_name}",
            texts.model_card_markdown(card, lang(request), display_name=entry.display_name),
            gr.update(choices=[(I18N("predicted_class"), "")] + [(label, label) for label in card.labels], value=""),
            gr.update(choices=[(text, key) for key, text in layers.items()], value=next(iter(layers))),
            gr.update(choices=[(I18N("paper_view"), PAPER_VIEW)] + [(b, b) for b in blocks], value=PAPER_VIEW),
            gr.update(visible=bool(profiled)),
            gr.update(choices=blocks, value=blocks[-1] if blocks else None),
        )

    def overlay(self, result: Result | None, opacity: float) -> Any:
        """The heatmap on the photo at another opacity (from this session's last analysis)."""
        if result is None:
            return gr.skip()
        return senet.overlay(result.photo, result.analysis.cam, opacity=guards.opacity_value(opacity))

    @staticmethod
    def pick_example(evt: gr.SelectData) -> str:
        """The example clicked in the gallery (by index: clients never name a server file)."""
        return str(EXAMPLES[evt.index][0])


def inputs_column(catalog: Catalog, labels: list[str]) -> SimpleNamespace:
    """Model picker, photo, examples and explanation options (call inside a ``gr.Column``)."""
    ui = SimpleNamespace()
    ui.model = gr.Dropdown(catalog.choices(), value=catalog.default, label=I18N("model"))
    ui.model_note = gr.Markdown(elem_classes="status")
    ui.image = photo_input(sources=["upload", "webcam", "clipboard"], label=I18N("photo"), height=320,
                           elem_id="photo")
    ui.run = gr.Button(I18N("analyze"), variant="primary", elem_id="analyze")
    ui.gallery = gr.Gallery([(str(path), label) for path, label in EXAMPLES], label=I18N("examples"), columns=3,
                            allow_preview=False, object_fit="cover", elem_id="examples")
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
            with gr.Row():
                ui.overlay = gr.Image(type="pil", format="png", label=I18N("overlay"), elem_id="overlay",
                                      buttons=["download", "fullscreen"])
                ui.heatmap = gr.Image(type="pil", format="png", label=I18N("heatmap"), elem_id="heatmap",
                                      buttons=["fullscreen"])
            ui.opacity = gr.Slider(0, 1, value=0.5, step=0.05, label=I18N("opacity"))
        with gr.Tab(I18N("tab_se")):
            ui.se = se_tab.layout(profiled)
    ui.status = gr.Markdown(I18N("status_idle"), elem_classes="status", elem_id="status")


def wire(demo: gr.Blocks, handlers: Explorer, ui: SimpleNamespace, card_view: gr.Markdown, result: gr.State,
         theme: gr.Textbox, heavy: dict[str, Any]) -> list[Any]:
    """The Explore tab's events; returns the events that produce a new analysis (for the SE tab)."""
    se = ui.se
    inputs = [ui.image, ui.model, ui.method, ui.target, ui.layer, ui.opacity, se.block, se.compare, theme]
    outputs = [ui.label, ui.overlay, ui.heatmap, se.chart, se.overview, ui.sentence, ui.status, result]
    hidden = {"api_visibility": "undocumented"}
    runs = [
        ui.run.click(handlers.analyze, inputs, outputs, api_name="analyze", **heavy),
        ui.image.change(handlers.analyze_if_image, inputs, outputs, api_name="analyze_on_change", **hidden,
                        **heavy),
        gr.on([ui.method.input, ui.target.input, ui.layer.input], handlers.analyze_if_image, inputs, outputs,
              api_name="reanalyze", **hidden, **heavy),
    ]
    pickers = [ui.model_note, card_view, ui.target, ui.layer, se.block, se.compare, se.drill_block]
    ui.model.input(handlers.select_model, ui.model, pickers, api_name="model_info", **heavy).success(
        handlers.analyze_if_image, inputs, outputs, api_visibility="private", **heavy)
    demo.load(handlers.select_model, ui.model, pickers, api_visibility="private", **heavy)
    ui.gallery.select(handlers.pick_example, None, ui.image, api_name="pick_example", **hidden)
    ui.opacity.release(handlers.overlay, [result, ui.opacity], ui.overlay, api_name="overlay", **hidden)
    return runs
