"""SENet Explorer: pick a model, upload a skin photo, see the prediction, a Grad-CAM map and the SE channel weights.

The Gradio UI only: widgets, events and type conversion. Models, analysis, charts and texts live in ``senet/``.
Run ``python app.py --help``; on a Hugging Face Space this same file is the ``app_file``.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
from PIL import Image

import senet
from senet import se_charts, texts
from senet.catalog import Catalog, Entry, ModelUnavailable, UnknownModel
from senet.image_io import ImageRejected, load_image

try:  # ZeroGPU Spaces attach a GPU only inside functions decorated with spaces.GPU; elsewhere it is a no-op.
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn: Any) -> Any:
        return fn

LOG = logging.getLogger("senet.app")
ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "examples"
MAX_FILE_SIZE = "20mb"  # Gradio refuses larger uploads before any handler runs (image_io's own limit: 20 MB)
DELETE_CACHE = (300, 600)  # every 5 minutes, delete uploads and outputs older than 10 minutes
PAPER_VIEW = "paper"  # block picker value: the last SE block of each stage, as the SE paper plots them
DISPLAY_SIDE = 640  # photos are kept and drawn on at most this many pixels per side
STATE_TTL = 900  # seconds a session's last analysis (a few MB) is kept for the follow-up views
PROGRESS = gr.Progress()  # Gradio injects a live tracker into handlers whose parameter defaults to one
I18N = gr.I18n(en=texts.UI_TEXT["en"], **{"zh-CN": texts.UI_TEXT["zh"], "zh": texts.UI_TEXT["zh"]})
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


def _photo_input(**kwargs: Any) -> gr.Image:
    """An image input whose handler receives the uploaded file's path without Pillow having opened it.

    Gradio's own preprocessing calls ``PIL.Image.open`` on the file, so a hostile or non-image upload would fail
    there with Pillow's text; ``senet.image_io.load_image`` in the handler checks it and answers in words.
    (An instance override rather than a subclass: Gradio writes a ``.pyi`` stub next to any module that
    subclasses a component.)
    """
    component = gr.Image(type="filepath", image_mode=None, **kwargs)
    gradio_preprocess = component.preprocess

    def preprocess(payload: Any) -> str | None:
        if payload is None:
            return None
        if getattr(payload, "path", None) and not str(getattr(payload, "url", "") or "").startswith("data:"):
            return str(payload.path)
        try:  # a base64 data URL: Gradio writes it to a file first
            return gradio_preprocess(payload)
        except Exception:
            raise gr.Error("This file is not an image that can be read.", print_exception=False) from None

    component.preprocess = preprocess
    return component


@dataclass(frozen=True)
class Result:
    """One browser session's latest analysis, kept in ``gr.State`` for the cheap follow-up views."""

    model: str
    analysis: senet.Analysis
    photo: Image.Image  # what overlays are drawn on


def _lang(request: gr.Request | None) -> str:
    headers = getattr(request, "headers", None) or {}
    return texts.language(headers.get("accept-language"))


def _fail(error: Exception) -> gr.Error:
    """A human message for the page; anything unexpected is logged, never shown."""
    if isinstance(error, ImageRejected | UnknownModel | ModelUnavailable):
        return gr.Error(str(error), print_exception=False)
    LOG.exception("analysis failed")
    return gr.Error("The analysis failed unexpectedly. Please try another photo or model.", print_exception=False)


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


def _compared(analysis: senet.Analysis, card: senet.ModelCard, mode: str | None) -> list[str]:
    """Classes whose average profile is drawn: ``top`` (the two most likely, default), ``all`` or ``none``."""
    profiled = [label for label in card.labels if label in (card.class_profiles.get("classes") or {})]
    if mode == "none":
        return []
    if mode == "all":
        return profiled
    return [label for label, _ in analysis.top_k(len(card.labels)) if label in profiled][:2]


class Explorer:
    """The event handlers: turn widget values into library calls and results into widget values."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._warmed: set[str] = set()

    def _photo(self, image: Image.Image, analysis: senet.Analysis, card: senet.ModelCard) -> Image.Image:
        if card.resize_ratio < 1:  # the network saw a centre crop: draw on exactly that
            return Image.fromarray((analysis.input_rgb * 255).round().astype("uint8"))
        photo = image.copy()  # the network saw the whole photo, squashed: its map stretches back onto it
        photo.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE))
        return photo

    def _se_figures(self, result: Result, block: str | None, compare: str | None, theme: str) -> tuple:
        excitations = result.analysis.excitations
        card = self.catalog.entry(result.model).card
        blocks = se_charts.paper_blocks(list(excitations)) if block in ("", PAPER_VIEW, None) else [block]
        shown = _compared(result.analysis, card, compare)
        chart = se_charts.block_chart(excitations, blocks, profiles=card.class_profiles, labels=shown,
                                  highlight=result.analysis.predicted, theme=theme)
        return chart, se_charts.overview_chart(excitations, theme=theme)

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
        lang = _lang(request)
        try:
            photo_in = load_image(image)
            net, card, entry = self.catalog.load(model or None)
            method, target, layer = _check_options(net, card, method, target, layer)
            spec = senet.CAM_METHODS[method]
            with entry.lock:  # one analysis per model at a time; different models run side by side
                analysis = senet.analyze(net, card, photo_in, target=target, method=method, layer=layer,
                                         progress=progress if spec.slow else None)
            photo = self._photo(photo_in, analysis, card)
            result = Result(entry.name, analysis, photo)
            overlay = senet.overlay(photo, analysis.cam, opacity=float(opacity))
            heatmap = senet.heatmap_image(analysis.cam, size=photo.size)
            chart, overview = self._se_figures(result, block, compare, theme)
        except gr.Error:
            raise
        except Exception as error:
            raise _fail(error) from None
        self._warmed.add(entry.name)
        sentence = texts.prediction_sentence(analysis.probabilities, lang)
        words = ("设备", "分析耗时") if lang == "zh" else ("Device", "Analysis")
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
            return tuple(gr.skip() for _ in range(8))
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
            texts.model_card_markdown(card, _lang(request), display_name=entry.display_name),
            gr.update(choices=[(I18N("predicted_class"), "")] + [(label, label) for label in card.labels], value=""),
            gr.update(choices=[(text, key) for key, text in layers.items()], value=next(iter(layers))),
            gr.update(choices=[(I18N("paper_view"), PAPER_VIEW)] + [(b, b) for b in blocks], value=PAPER_VIEW),
            gr.update(visible=bool(profiled)),
            gr.update(choices=blocks, value=blocks[-1] if blocks else None),
        )

    def channels(self, result: Result | None, block: str | None) -> Any:
        """Channel choices of a block for the drill-down, strongest first."""
        if result is None:
            return gr.update(choices=[], value=None)
        names = list(result.analysis.excitations)
        weights = result.analysis.excitations[block if block in names else names[-1]]
        order = senet.strongest_channels(weights, len(weights))
        return gr.update(choices=[(f"#{i} · {weights[i]:.2f}", i) for i in order], value=order[0])

    def drill_pickers(self, result: Result | None, block: str | None) -> tuple[Any, Any]:
        """After an analysis: the drill-down's block list (keeping the chosen block) and its channels."""
        names = list(result.analysis.excitations) if result else []
        block = block if block in names else (names[-1] if names else None)
        return gr.update(choices=names, value=block), self.channels(result, block)

    def overlay(self, result: Result | None, opacity: float) -> Any:
        """The heatmap on the photo at another opacity (from this session's last analysis)."""
        if result is None:
            return gr.skip()
        return senet.overlay(result.photo, result.analysis.cam, opacity=float(opacity))

    def se_charts(self, result: Result | None, block: str, compare: str, theme: str) -> tuple:
        """The SE charts for another block or class selection (from this session's last analysis)."""
        if result is None:
            return gr.skip(), gr.skip()
        return self._se_figures(result, block, compare, theme)

    @gpu
    def channel_map(self, result: Result | None, block: str | None, channel: int | None) -> Any:
        """One channel's feature map in one SE block, laid over the photo."""
        if result is None or block is None or channel is None:
            return None
        try:
            net, card, entry = self.catalog.load(result.model)
            with entry.lock:
                heat = senet.channel_map(net, card, result.photo, block, int(channel))
        except Exception as error:
            raise _fail(error) from None
        return senet.overlay(result.photo, heat, opacity=0.55)

    @staticmethod
    def pick_example(evt: gr.SelectData) -> str:
        """The example clicked in the gallery (by index: clients never name a server file)."""
        return str(EXAMPLES[evt.index][0])


def _inputs_column(catalog: Catalog, labels: list[str]) -> SimpleNamespace:
    ui = SimpleNamespace()
    ui.model = gr.Dropdown(catalog.choices(), value=catalog.default, label=I18N("model"))
    ui.model_note = gr.Markdown(elem_classes="status")
    ui.image = _photo_input(sources=["upload", "webcam", "clipboard"], label=I18N("photo"), height=320,
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


def _results_column(ui: SimpleNamespace, labels: list[str], profiled: bool) -> None:
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
            gr.Markdown(I18N("se_help"))
            with gr.Row():
                ui.block = gr.Dropdown([(I18N("paper_view"), PAPER_VIEW)], value=PAPER_VIEW, label=I18N("block"),
                                       allow_custom_value=True)
                ui.compare = gr.Radio([(I18N("compare_top"), "top"), (I18N("compare_all"), "all"),
                                       (I18N("compare_none"), "none")], value="top", label=I18N("compare"),
                                      visible=bool(profiled))
            ui.chart = gr.Plot(label=I18N("block_chart"), show_label=False, format="png", elem_id="se-chart")
            ui.overview = gr.Plot(label=I18N("overview"), show_label=False, format="png", elem_id="se-overview")
            with gr.Accordion(I18N("drill"), open=False):
                with gr.Row():
                    ui.drill_block = gr.Dropdown([], label=I18N("drill_block"), allow_custom_value=True)
                    ui.channel = gr.Dropdown([], label=I18N("channel"), allow_custom_value=True)
                ui.channel_image = gr.Image(type="pil", format="png", label=I18N("channel_map"), height=320)
    ui.status = gr.Markdown(I18N("status_idle"), elem_classes="status", elem_id="status")


def build_demo(checkpoint_dir: str | Path | None = None, *, device: str = "auto",
               catalog: Catalog | None = None) -> gr.Blocks:
    """The whole UI, not launched.

    Args:
        checkpoint_dir: where the models are; default ``$SENET_CHECKPOINTS`` or ``checkpoints/``.
        device: ``auto``, ``cpu`` or ``cuda``.
        catalog: an existing catalog to serve instead (then the other arguments are ignored).
    """
    catalog = catalog or Catalog(checkpoint_dir, device=device)
    handlers = Explorer(catalog)
    card = catalog.entries[catalog.default].card if catalog.default else None
    labels = list(card.labels) if card else []
    profiled = bool(card and card.class_profiles.get("classes"))

    with gr.Blocks(title="SENet Explorer", delete_cache=DELETE_CACHE) as demo:
        result = gr.State(None, time_to_live=STATE_TTL)
        theme = gr.Textbox("light", visible=False)
        gr.Markdown(I18N("title"), elem_classes="app-header")
        gr.Markdown(I18N("subtitle"))
        gr.Markdown(I18N("disclaimer"), elem_classes="disclaimer")
        with gr.Tabs():
            with gr.Tab(I18N("tab_explore")):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=4, min_width=320):
                        ui = _inputs_column(catalog, labels)
                    with gr.Column(scale=7):
                        _results_column(ui, labels, profiled)
            with gr.Tab(I18N("tab_card")):
                ui.card = gr.Markdown(elem_id="model-card")

        inputs = [ui.image, ui.model, ui.method, ui.target, ui.layer, ui.opacity, ui.block, ui.compare, theme]
        outputs = [ui.label, ui.overlay, ui.heatmap, ui.chart, ui.overview, ui.sentence, ui.status, result]
        # Model work shares one concurrency group wide enough for every model; the per-model lock serialises
        # requests to the same model while different models run side by side.
        heavy = {"concurrency_limit": max(2, len(catalog.available())), "concurrency_id": "models"}
        hidden = {"api_visibility": "undocumented"}
        runs = [
            ui.run.click(handlers.analyze, inputs, outputs, api_name="analyze", **heavy),
            ui.image.change(handlers.analyze_if_image, inputs, outputs, api_name="analyze_on_change", **hidden,
                            **heavy),
            gr.on([ui.method.input, ui.target.input, ui.layer.input], handlers.analyze_if_image, inputs, outputs,
                  api_name="reanalyze", **hidden, **heavy),
        ]
        for event in runs:
            event.success(handlers.drill_pickers, [result, ui.drill_block], [ui.drill_block, ui.channel],
                          api_visibility="private").success(
                handlers.channel_map, [result, ui.drill_block, ui.channel], ui.channel_image,
                api_visibility="private", **heavy)
        pickers = [ui.model_note, ui.card, ui.target, ui.layer, ui.block, ui.compare, ui.drill_block]
        ui.model.input(handlers.select_model, ui.model, pickers, api_name="model_info", **heavy).success(
            handlers.analyze_if_image, inputs, outputs, api_visibility="private", **heavy)
        demo.load(None, None, theme, js=THEME_JS)
        demo.load(handlers.select_model, ui.model, pickers, api_visibility="private", **heavy)
        ui.gallery.select(handlers.pick_example, None, ui.image, api_name="pick_example", **hidden)
        ui.opacity.release(handlers.overlay, [result, ui.opacity], ui.overlay, api_name="overlay", **hidden)
        gr.on([ui.block.input, ui.compare.input], handlers.se_charts, [result, ui.block, ui.compare, theme],
              [ui.chart, ui.overview], api_name="se_charts", **hidden)
        ui.drill_block.input(handlers.channels, [result, ui.drill_block], ui.channel, api_name="channels",
                             **hidden).success(handlers.channel_map, [result, ui.drill_block, ui.channel],
                                               ui.channel_image, api_visibility="private", **heavy)
        ui.channel.input(handlers.channel_map, [result, ui.drill_block, ui.channel], ui.channel_image,
                         api_name="channel_map", **hidden, **heavy)
    demo.catalog = catalog  # for tests and scripts: the models this UI serves
    return demo


def launch_options() -> dict[str, Any]:
    """Keyword arguments of ``demo.launch`` shared by every start (CLI, Space, tests)."""
    return {
        "i18n": I18N,
        "theme": THEME,
        "css": CSS,
        "max_file_size": MAX_FILE_SIZE,
        "run_history": False,  # uploaded photos are not kept in the browser either
        "allowed_paths": [str(EXAMPLES_DIR)],  # only the examples; uploads live in Gradio's own cache
        "show_error": False,  # only gr.Error messages reach the page, never exception text
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    on_space = bool(os.environ.get("SPACE_ID"))
    host = os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if on_space else "127.0.0.1")
    parser = argparse.ArgumentParser(description="SENet Explorer: SE-ResNet / SE-DenseNet predictions, Grad-CAM "
                                                 "and SE channel weights in the browser.")
    parser.add_argument("--host", default=host, help="address to bind (default 127.0.0.1; 0.0.0.0 on a Hugging "
                                                     "Face Space; env GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT") or 7860),
                        help="port (default 7860; env GRADIO_SERVER_PORT)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=os.environ.get("SENET_DEVICE", "auto"),
                        help="where models run (default auto: the GPU when there is one; env SENET_DEVICE)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    parser.add_argument("--checkpoints", default=None,
                        help="checkpoint folder (default $SENET_CHECKPOINTS or ./checkpoints)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per internal request otherwise
    reuse = args.checkpoints is None and args.device == os.environ.get("SENET_DEVICE", "auto")
    try:
        app = demo if reuse else build_demo(args.checkpoints, device=args.device)
    except ValueError as error:  # e.g. --device cuda without a GPU
        raise SystemExit(f"app.py: error: {error}") from None
    catalog: Catalog = app.catalog
    print(f"SENet Explorer: {len(catalog.available())} model(s) on {catalog.device_name}", flush=True)
    for entry in catalog.entries.values():
        if not entry.available:
            print(f"  unavailable: {entry.name}: {entry.error}", flush=True)
    # launch() prints the local URL (and the share URL when --share is given).
    app.queue(default_concurrency_limit=2).launch(server_name=args.host, server_port=args.port, share=args.share,
                                                  **launch_options())


demo = build_demo(device=os.environ.get("SENET_DEVICE", "auto"))

if __name__ == "__main__":
    main()
