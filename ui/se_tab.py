"""The SE tab: channel weights per block against class averages, the all-blocks overview, and the channel
drill-down."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gradio as gr

import senet
from senet import se_charts
from senet.catalog import Catalog

from . import guards
from .components import Result, fail, gpu
from .i18n import I18N

PAPER_VIEW = "paper"  # block picker value: the last SE block of each stage, as the SE paper plots them


def compared(analysis: senet.Analysis, card: senet.ModelCard, mode: str | None) -> list[str]:
    """Classes whose average profile is drawn: ``top`` (the two most likely, default), ``all`` or ``none``."""
    profiled = [label for label in card.labels if label in (card.class_profiles.get("classes") or {})]
    if mode == "none":
        return []
    if mode == "all":
        return profiled
    return [label for label, _ in analysis.top_k(len(card.labels)) if label in profiled][:2]


class SeHandlers:
    """Event handlers of the SE tab; they read the session's last analysis (``Result``)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def figures(self, result: Result, block: str | None, compare: str | None, theme: str) -> tuple[Any, Any]:
        """The per-block chart and the all-blocks overview of an analysis."""
        excitations = result.analysis.excitations
        card = self.catalog.entry(result.model).card
        blocks = se_charts.paper_blocks(list(excitations)) if block in ("", PAPER_VIEW, None) else [block]
        shown = compared(result.analysis, card, compare)
        chart = se_charts.block_chart(excitations, blocks, profiles=card.class_profiles, labels=shown,
                                  highlight=result.analysis.predicted, theme=theme)
        return chart, se_charts.overview_chart(excitations, theme=theme)

    def se_charts(self, result: Result | None, block: str, compare: str, theme: str) -> tuple:
        """The SE charts for another block or class selection (from this session's last analysis)."""
        if result is None:
            return gr.skip(), gr.skip()
        guards.check_options(None, None, None, 0, block, compare, theme)
        return self.figures(result, block, compare, theme)

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

    @gpu
    def channel_map(self, result: Result | None, block: str | None, channel: int | None) -> Any:
        """One channel's feature map in one SE block, laid over the photo."""
        if result is None or block is None or channel is None:
            return None
        block, channel = guards.channel_index(result, block, channel)
        try:
            net, card, entry = self.catalog.load(result.model)
            with entry.lock:
                heat = senet.channel_map(net, card, result.photo, block, channel)
        except Exception as error:
            raise fail(error) from None
        return senet.overlay(result.photo, heat, opacity=0.55)


def layout(profiled: bool) -> SimpleNamespace:
    """The SE tab's widgets (call inside a ``gr.Tab``)."""
    ui = SimpleNamespace()
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
    return ui


def wire(handlers: SeHandlers, ui: SimpleNamespace, result: gr.State, theme: gr.Textbox,
         analyses: list[Any], heavy: dict[str, Any]) -> None:
    """The SE tab's events; ``analyses`` are the events that produce a new analysis."""
    hidden = {"api_visibility": "undocumented"}
    for event in analyses:
        event.success(handlers.drill_pickers, [result, ui.drill_block], [ui.drill_block, ui.channel],
                      api_visibility="private").success(
            handlers.channel_map, [result, ui.drill_block, ui.channel], ui.channel_image,
            api_visibility="private", **heavy)
    gr.on([ui.block.input, ui.compare.input], handlers.se_charts, [result, ui.block, ui.compare, theme],
          [ui.chart, ui.overview], api_name="se_charts", **hidden)
    ui.drill_block.input(handlers.channels, [result, ui.drill_block], ui.channel, api_name="channels",
                         **hidden).success(handlers.channel_map, [result, ui.drill_block, ui.channel],
                                           ui.channel_image, api_visibility="private", **heavy)
    ui.channel.input(handlers.channel_map, [result, ui.drill_block, ui.channel], ui.channel_image,
                     api_name="channel_map", **hidden, **heavy)
