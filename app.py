"""SENet Explorer: pick a model, upload a skin photo, see the prediction, a Grad-CAM map and the SE channel weights.

The entry point: builds the page from the tab modules in ``ui/`` and launches it. Models, analysis, charts and
texts live in ``senet/``. Run ``python app.py --help``; on a Hugging Face Space this same file is the ``app_file``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Gradio, torch and the UI are imported inside the functions that need them: `python app.py --help` and argument
# errors answer at once instead of after seconds of imports.
if TYPE_CHECKING:
    import gradio as gr

    from senet.catalog import Catalog

DEVICES = ("auto", "cpu", "cuda")
MAX_FILE_SIZE = "20mb"  # Gradio refuses larger uploads before any handler runs (image_io's own limit: 20 MB)
DELETE_CACHE = (300, 600)  # every 5 minutes, delete uploads and outputs older than 10 minutes
SPACE_QUEUE_SIZE = 40  # on a public Space, further visitors are told the queue is full instead of waiting forever


def on_space() -> bool:
    """Whether the app runs on a Hugging Face Space (which sets ``SYSTEM=spaces`` and ``SPACE_ID``)."""
    return os.environ.get("SYSTEM") == "spaces" or bool(os.environ.get("SPACE_ID"))


def zero_gpu() -> bool:
    """Whether the Space runs on ZeroGPU hardware (a GPU attached only inside ``spaces.GPU`` functions)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true")


def build_demo(checkpoint_dir: str | Path | None = None, *, device: str = "auto",
               catalog: Catalog | None = None, uploads: bool | None = None) -> gr.Blocks:
    """The whole UI, not launched.

    Args:
        checkpoint_dir: where the models are; default ``$SENET_CHECKPOINTS`` or ``checkpoints/``.
        device: ``auto``, ``cpu`` or ``cuda``.
        catalog: an existing catalog to serve instead (then the other arguments are ignored); the "use your own
            model" panel needs an ``own_model.SessionCatalog``.
        uploads: show the "use your own model" panel; default ``own_model.uploads_enabled()``.
    """
    import gradio as gr

    from ui import batch as batch_tab
    from ui import card_tab, explore, guards, own_model, report, se_tab, tools, trust_views, upload_errors
    from ui import compare as compare_tab
    from ui.components import STATE_TTL
    from ui.i18n import I18N

    catalog = catalog or own_model.SessionCatalog(checkpoint_dir, device=device)
    uploads = own_model.uploads_enabled(uploads) and isinstance(catalog, own_model.SessionCatalog)
    se_handlers = se_tab.SeHandlers(catalog)
    handlers = explore.Explorer(catalog, se_handlers)
    card = catalog.entries[catalog.default].card if catalog.default else None
    labels = list(card.labels) if card else []
    profiled = bool(card and card.class_profiles.get("classes"))

    with gr.Blocks(title="SENet Explorer", delete_cache=DELETE_CACHE) as demo:
        result = gr.State(None, time_to_live=STATE_TTL)
        theme = gr.Textbox("light", visible=False)
        gr.Markdown(I18N("title"), elem_classes="app-header")
        gr.Markdown(I18N("subtitle"))
        gr.Markdown(I18N("disclaimer"), elem_classes="disclaimer")
        if on_space():  # a link to this view needs a public URL
            gr.DeepLinkButton()
        with gr.Tabs():
            with gr.Tab(I18N("tab_explore")):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=4, min_width=320):
                        ui = explore.inputs_column(catalog, labels)
                        report_ui = report.layout()
                        own_panel = own_model.layout() if uploads else None
                    with gr.Column(scale=7):
                        warning = trust_views.warning_box()  # first, above the prediction
                        explore.results_column(ui, labels, profiled)
            with gr.Tab(I18N("tab_compare")):
                compare_ui = compare_tab.layout(catalog)
            with gr.Tab(I18N("tab_batch")):
                batch_ui = batch_tab.layout(catalog)
            with gr.Tab(I18N("tab_card")):
                card_view = card_tab.layout()
                reliability = trust_views.reliability_plot()

        # Model work shares one concurrency group wide enough for every model and the slow lane (ui/lanes.py);
        # the per-model lock serialises requests to the same model while different models run side by side.
        heavy = guards.heavy_events(catalog)
        demo.load(None, None, theme, js=_theme_js())
        demo.load(None, js=upload_errors.JS)  # Gradio's own upload refusals in Chinese on a Chinese page
        analyses = explore.wire(demo, handlers, ui, card_view, result, theme, heavy)
        se_tab.wire(se_handlers, ui.se, result, theme, analyses, heavy)
        own_model.wire(demo, own_model.OwnModels(catalog), own_panel, ui.model,
                       (handlers.select_model, ui.model, explore.model_pickers(ui, card_view)))
        report.wire(report.Reporter(catalog), report_ui, ui.image, ui.model, ui.method, heavy)
        compare_tab.wire(compare_tab.Comparer(catalog), compare_ui, heavy, theme)
        batch_tab.wire(batch_tab.BatchRunner(catalog), batch_ui, heavy)
        tools.build(tools.Tools(catalog), heavy)  # /classify, /explain, /list_models: the MCP tools
        trust_views.wire(demo, trust_views.TrustViews(catalog), ui, warning, reliability, result, analyses, heavy)
    guards.install(demo)  # queue size, per-session limits, input checks before queueing, the page's own steps
    demo.catalog = catalog  # for tests and scripts: the models this UI serves
    demo.uploads = uploads  # whether visitors may upload their own models (launch_options needs it)
    return demo


def launch_options(uploads: bool = False) -> dict[str, Any]:
    """Keyword arguments of ``demo.launch`` shared by every start (CLI, Space, tests).

    Args:
        uploads: the demo takes visitors' own models, so files up to 300 MB must get through (photos are still
            held to 20 MB by ``senet.image_io``).
    """
    from ui import guards, own_model, trust_views
    from ui.components import CSS, EXAMPLES_DIR, THEME
    from ui.i18n import I18N

    return {
        "i18n": I18N,
        "theme": THEME,
        "css": CSS + trust_views.CSS,
        "max_file_size": own_model.UPLOAD_LIMIT if uploads else MAX_FILE_SIZE,
        "run_history": False,  # uploaded photos are not kept in the browser either
        "allowed_paths": [str(EXAMPLES_DIR)],  # only the examples; uploads live in Gradio's own cache
        "show_error": False,  # only gr.Error messages reach the page, never exception text
        # request-size limits, upload rate and cache cap, session capacity
        **guards.launch_options(upload_bytes=own_model.MAX_UPLOAD_BYTES if uploads else 0),
    }


def _theme_js() -> str:
    from ui.components import THEME_JS

    return THEME_JS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (defaults from the environment); a bad device or a missing checkpoint folder is an error
    here, before anything heavy is imported."""
    host = os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if on_space() else "127.0.0.1")
    parser = argparse.ArgumentParser(description="SENet Explorer: SE-ResNet / SE-DenseNet predictions, Grad-CAM "
                                                 "and SE channel weights in the browser.")
    parser.add_argument("--host", default=host, help="address to bind (default 127.0.0.1; 0.0.0.0 on a Hugging "
                                                     "Face Space; env GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT") or 7860),
                        help="port (default 7860; env GRADIO_SERVER_PORT)")
    parser.add_argument("--device", choices=DEVICES, default=os.environ.get("SENET_DEVICE", "auto"),
                        help="where models run (default auto: the GPU when there is one; env SENET_DEVICE)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    parser.add_argument("--checkpoints", default=os.environ.get("SENET_CHECKPOINTS"),
                        help="checkpoint folder (default $SENET_CHECKPOINTS or ./checkpoints)")
    parser.add_argument("--no-uploads", dest="uploads", action="store_false", default=None,
                        help="hide the 'use your own model' panel (it is off by default on a Hugging Face Space "
                             "unless SENET_UPLOADS=1; env SENET_UPLOADS=0 turns it off too)")
    mcp_default = os.environ.get("SENET_MCP", "1" if on_space() else "0").lower() in ("1", "true", "yes")
    parser.add_argument("--mcp", action=argparse.BooleanOptionalAction, default=mcp_default,
                        help="also serve classify / explain / list_models as MCP tools at /gradio_api/mcp/ "
                             "(default off; on on a Hugging Face Space; env SENET_MCP)")
    args = parser.parse_args(argv)
    if args.device not in DEVICES:  # argparse checks choices on the command line only, not on env defaults
        parser.error(f"argument --device (env SENET_DEVICE): invalid choice: {args.device!r} "
                     f"(choose from {', '.join(DEVICES)})")
    if args.checkpoints is not None and not Path(args.checkpoints).is_dir():
        parser.error(f"argument --checkpoints: {args.checkpoints!r} is not a folder")
    return args


def _check_port(host: str, port: int) -> None:
    """A port that is already taken is a one-line error naming ``--port`` (Gradio would raise a long OSError)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise SystemExit(f"app.py: error: port {port} on {host} is already in use; choose another with "
                             "--port (or stop the program that uses it)") from None


def _log_models(catalog: Catalog) -> None:
    """The start-up log: every model by name, the unavailable ones with the reason (for the operator only)."""
    print(f"SENet Explorer: {len(catalog.available())} model(s) from {catalog.directory} on {catalog.device_name}",
          flush=True)
    for name in catalog.names():
        entry = catalog.entries[name]
        if entry.available:
            print(f"  {name}: {entry.display_name}", flush=True)
        else:
            print(f"  {name}: unavailable: {entry.error}", flush=True)


def freeze_startup_objects() -> None:
    """Everything built at start-up lives as long as the server: move it out of the garbage collector's view, so
    that a full collection scans only what requests create (one took ~330 ms during 40 DenseNet analyses before)."""
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    _check_port(args.host, args.port)
    from senet.catalog import resolve_device  # torch only: a missing GPU is reported before Gradio is imported

    try:
        resolve_device(args.device)
    except ValueError as error:  # --device cuda or SENET_DEVICE=cuda without a GPU
        raise SystemExit(f"app.py: error: {error}") from None
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per internal request otherwise
    try:
        app = build_demo(args.checkpoints, device=args.device, uploads=args.uploads)
    except ValueError as error:  # e.g. --device cuda (or SENET_DEVICE=cuda) without a GPU
        raise SystemExit(f"app.py: error: {error}") from None
    catalog: Catalog = app.catalog  # type: ignore[attr-defined]  # set by build_demo; Blocks has no typed slot
    _log_models(catalog)
    if zero_gpu():  # ZeroGPU asks for models on "cuda" at start-up, outside the spaces.GPU functions
        for name in catalog.available():
            catalog.load(name)
    freeze_startup_objects()
    globals()["demo"] = app  # `gradio app.py` (reload mode) looks the launched demo up in the module's namespace
    # launch() prints the local URL (and the share URL when --share is given).
    app.queue(default_concurrency_limit=2, max_size=SPACE_QUEUE_SIZE if on_space() else None).launch(
        server_name=args.host, server_port=args.port, share=args.share, mcp_server=args.mcp,
        **launch_options(uploads=getattr(app, "uploads", False)))


_DEMO: gr.Blocks | None = None


def __getattr__(name: str) -> Any:
    """``app.demo``, built on first use: ``gradio app.py`` and Spaces look it up, ``python app.py --help`` does not
    pay for it."""
    global _DEMO
    if name != "demo":
        raise AttributeError(f"module 'app' has no attribute {name!r}")
    if _DEMO is None:
        _DEMO = build_demo(device=os.environ.get("SENET_DEVICE", "auto"))
    return _DEMO


if __name__ == "__main__":
    main()
