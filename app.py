"""SENet Explorer: pick a model, upload a skin photo, see the prediction, a Grad-CAM map and the SE channel weights.

The entry point: builds the page from the tab modules in ``ui/`` and launches it. Models, analysis, charts and
texts live in ``senet/``. Run ``python app.py --help``; on a Hugging Face Space this same file is the ``app_file``.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import gradio as gr

from senet.catalog import Catalog
from ui import card_tab, explore, guards, se_tab
from ui.components import CSS, EXAMPLES_DIR, STATE_TTL, THEME, THEME_JS
from ui.i18n import I18N

MAX_FILE_SIZE = "20mb"  # Gradio refuses larger uploads before any handler runs (image_io's own limit: 20 MB)
DELETE_CACHE = (300, 600)  # every 5 minutes, delete uploads and outputs older than 10 minutes


def build_demo(checkpoint_dir: str | Path | None = None, *, device: str = "auto",
               catalog: Catalog | None = None) -> gr.Blocks:
    """The whole UI, not launched.

    Args:
        checkpoint_dir: where the models are; default ``$SENET_CHECKPOINTS`` or ``checkpoints/``.
        device: ``auto``, ``cpu`` or ``cuda``.
        catalog: an existing catalog to serve instead (then the other arguments are ignored).
    """
    catalog = catalog or Catalog(checkpoint_dir, device=device)
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
        with gr.Tabs():
            with gr.Tab(I18N("tab_explore")):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=4, min_width=320):
                        ui = explore.inputs_column(catalog, labels)
                    with gr.Column(scale=7):
                        explore.results_column(ui, labels, profiled)
            with gr.Tab(I18N("tab_card")):
                card_view = card_tab.layout()

        # Model work shares one concurrency group wide enough for every model and the slow lane (ui/guards.py);
        # the per-model lock serialises requests to the same model while different models run side by side.
        heavy = guards.heavy_events(catalog)
        demo.load(None, None, theme, js=THEME_JS)
        analyses = explore.wire(demo, handlers, ui, card_view, result, theme, heavy)
        se_tab.wire(se_handlers, ui.se, result, theme, analyses, heavy)
    guards.install(demo)  # queue size, per-session limits, internal handlers not callable as an API
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
        **guards.launch_options(),  # request-size limits, upload rate and cache cap, session capacity
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
    guards.check_port(args.host, args.port)  # a second copy: one line naming --port, not a traceback
    # launch() prints the local URL (and the share URL when --share is given).
    app.queue(default_concurrency_limit=2).launch(server_name=args.host, server_port=args.port, share=args.share,
                                                  **launch_options())


demo = build_demo(device=os.environ.get("SENET_DEVICE", "auto"))

if __name__ == "__main__":
    main()
