"""The Model card tab: what the chosen model is, how it was trained and evaluated, and its limits."""

from __future__ import annotations

import gradio as gr


def layout() -> gr.Markdown:
    """The card's Markdown (filled by the Explore tab's model picker; call inside a ``gr.Tab``)."""
    return gr.Markdown(elem_id="model-card")
