"""The SE tab: the SE paper's view or one block's channel weights against class averages, a one-line takeaway,
the class specificity of every block, the all-blocks overview, interventions on the gates, and the channel
drill-down.

Charts are plotly specs drawn by the browser (``ui/se_figures.py``). Work is done once: ``/analyze`` returns the
chart and the overview; a block or class change redraws only the chart; the specificity chart is made once per
model, theme and language; the drill-down's forward pass runs only while its accordion is open.
"""

from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import gradio as gr
import numpy as np
from gradio.components.plot import PlotData
from PIL import Image

import senet
from senet import se_analysis, se_sentences, texts
from senet.catalog import Catalog
from senet.interventions import InterventionError, stage_blocks

from . import i18n, se_figures
from .components import Result, fail, gpu
from .i18n import I18N
from .refusals import refuse
from .request_checks import channel_index, channel_number, check_options

PAPER_VIEW = "paper"  # block picker value: the SE paper's Fig. 6 blocks (see se_analysis.paper_blocks)
LAST_STAGE = 5

i18n.add({
    "en": {
        "se_takeaway_help": ("The closest class is found by the Pearson correlation between this photo's channel "
                             "weights and each class's average weights in that block (r = 1: the same pattern)."),
        "se_specificity": "Class specificity of every SE block",
        "se_specificity_help": ("One bar per block: how far apart the class averages are (the standard deviation "
                                "between the classes' average weights, averaged over the channels). The SE paper "
                                "found early blocks alike for every class, later blocks class-specific and the "
                                "last ones saturated (weights near 1 for every class: diamonds)."),
        "se_all_channels": "Show all channels in the paper view (default: a fixed random 50 per block)",
        "se_inspect": "Look inside a block: interventions and channel drill-down",
        "se_inspect_help": ("Change the SE gates for this photo and see how the prediction moves: *switch off* "
                            "a block (its gate forced to 1, every channel passes unchanged), *mute* one channel "
                            "(its gate forced to 0). One forward pass each."),
        "se_bypass_block": "Switch off SE in this block",
        "se_mute_channel": "Mute this channel",
        "se_bypass_stage5": "Bypass every SE block of stage 5",
        "se_intervention": "Effect on the prediction",
        "se_channel_order": "Channel (most different from the class average first)",
        "se_before": "before", "se_after": "after", "se_class": "class",
        "se_switched_off": "SE switched off (gates = 1) in", "se_muted": "Muted (gate = 0)",
        "se_views_help": ("**How to read it:** the SE gate of each channel (0 to 1) scales that channel: near 1 "
                          "passes it through, near 0 mutes it. The *SE paper view* shows, as in the paper's "
                          "Figs. 6-7, the last block of each stage and every block of the last stage: dots are "
                          "this photo, lines each class's average over the held-out Test photos of the model's fold "
                          "(over its Train+Valid photos where the card has no Test profiles) with a ± std band "
                          "(click a class in the legend to hide it; *compare with* chooses the classes), the dashed "
                          "line the average over all classes. Pick one block to see all its channels as bars. "
                          "Drag to zoom, double-click to reset."),
    },
    "zh": {
        "se_takeaway_help": ("最接近的类别由这张照片在该模块的通道权重与各类别平均权重之间的皮尔逊相关系数决定"
                             "（r = 1：模式相同）。"),
        "se_specificity": "各 SE 模块的类别特异性",
        "se_specificity_help": ("每个模块一根柱：各类别平均值相差多远（各类别平均权重之间的标准差，对通道取平均）。"
                                "SE 论文发现：浅层模块对所有类别都相似，较深的模块具有类别特异性，最后的模块趋于饱和"
                                "（所有类别的权重都接近 1：菱形）。"),
        "se_all_channels": "论文视图中显示所有通道（默认：每个模块固定随机选取 50 个）",
        "se_inspect": "深入一个模块：干预与通道细看",
        "se_inspect_help": ("改变这张照片的 SE 门控，看看预测如何变化："
                            "*关闭* 一个模块（门控强制为 1，所有通道原样通过），"
                            "*静音* 一个通道（门控强制为 0）。每次只需一次前向计算。"),
        "se_bypass_block": "关闭此模块的 SE",
        "se_mute_channel": "静音此通道",
        "se_bypass_stage5": "跳过第 5 阶段的所有 SE 模块",
        "se_intervention": "对预测的影响",
        "se_channel_order": "通道（与类别平均值差别最大的在前）",
        "se_before": "之前", "se_after": "之后", "se_class": "类别",
        "se_switched_off": "已关闭 SE（门控 = 1）的模块", "se_muted": "已静音（门控 = 0）",
        "se_views_help": ("**如何阅读：** 每个通道的 SE 门控值（0 到 1）对该通道加权："
                          "接近 1 表示保留，接近 0 表示抑制。"
                          "*SE 论文视图* 与论文图 6-7 相同，显示每个阶段的最后一个模块以及最后一个阶段的所有模块："
                          "圆点是这张照片，折线是该模型所用数据折中留出的测试集照片的各类别平均值"
                          "（模型卡没有测试集数据时用训练+验证照片）及 ± 标准差带"
                          "（点击图例可隐藏某个类别；用“比较”选择类别），"
                          "虚线是所有类别的平均值。选择单个模块可用柱形查看其全部通道。拖动可放大，双击可复原。"),
    },
})


def compared(analysis: senet.Analysis, card: senet.ModelCard, mode: str | None) -> list[str]:
    """Classes whose average profile is drawn: ``top`` (the two most likely, default), ``all`` or ``none``."""
    profiled = [label for label in card.labels if label in (card.class_profiles.get("classes") or {})]
    if mode == "none":
        return []
    if mode == "all":
        return profiled
    return [label for label, _ in analysis.top_k(len(card.labels)) if label in profiled][:2]


def plot(spec: dict[str, Any]) -> PlotData:
    """A plotly spec as ``gr.Plot``'s value (the browser draws it with the plotly.js Gradio bundles)."""
    return PlotData(type="plotly", plot=se_figures.plot_json(spec))


def model_view(result: Result) -> Image.Image:
    """Exactly the pixels the network saw in the analysis (resized, cropped), as an image.

    Re-running the card's preprocessing on it gives the same input tensor (the resize works on uint8), so
    interventions and scores start from the analysis's own probabilities.
    """
    return Image.fromarray(np.round(result.analysis.input_rgb.astype(np.float32) * 255).astype(np.uint8))


class SeHandlers:
    """Event handlers of the SE tab; they read the session's last analysis (``Result``)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def _card(self, result: Result) -> senet.ModelCard:
        card = self.catalog.entry(result.model).card
        assert card is not None  # the model was analysed, so its card was read
        return card

    def chart(self, result: Result, block: str | None, compare: str | None, theme: str, lang: str = "en",
              all_channels: bool = False) -> PlotData:
        """The SE paper's view (``block`` empty or ``paper``) or one block's channels against class averages."""
        analysis, card = result.analysis, self._card(result)
        excitations = analysis.excitations
        shown = compared(analysis, card, compare)
        if block not in excitations:
            # the paper averages over held-out photos: the fold's Test part when the card has it
            test = se_analysis.test_part_profiles(card.class_profiles)
            panels = se_analysis.paper_view(excitations, test or card.class_profiles,
                                            channels=None if all_channels else se_analysis.PAPER_CHANNELS)
            source = "" if not se_analysis.has_profiles(card.class_profiles) else "test" if test else "train_valid"
            return plot(se_figures.paper_figure(
                panels, labels=shown, order=card.labels, theme=theme, lang=lang, source=source,
                total_channels={name: len(gates) for name, gates in excitations.items()}))
        gates = excitations[block]
        means = se_analysis.block_profiles(card.class_profiles, block, len(gates)).means
        return plot(se_figures.block_figure(block, gates, means, labels=shown, order=card.labels,
                                            highlight=analysis.predicted, theme=theme, lang=lang))

    def figures(self, result: Result, block: str | None, compare: str | None, theme: str,
                lang: str = "en") -> tuple[PlotData, PlotData]:
        """The chart and the all-blocks overview of a new analysis (what ``/analyze`` returns)."""
        overview = plot(se_figures.overview_figure(result.analysis.excitations, theme=theme, lang=lang))
        return self.chart(result, block, compare, theme, lang), overview

    def takeaway(self, result: Result | None, block: str | None, lang: str) -> str:
        """One line: which class average this photo resembles in the chosen block (or the paper view's last)."""
        if result is None:
            return ""
        excitations, card = result.analysis.excitations, self._card(result)
        if not se_analysis.has_profiles(card.class_profiles):
            return se_sentences.no_profiles_sentence(result.model, lang)
        if block not in excitations:
            block = se_analysis.paper_blocks(list(excitations))[-1]
        found = se_analysis.nearest_class(excitations[block], card.class_profiles, block, labels=card.labels)
        return "" if found is None else se_sentences.takeaway_sentence(found, lang)

    def se_charts(self, result: Result | None, block: str, compare: str, theme: str, all_channels: bool = False,
                  request: gr.Request | None = None) -> tuple[Any, Any]:
        """Another block or class selection: the chart and the takeaway (the overview stays as it is)."""
        if result is None:
            return gr.skip(), gr.skip()
        check_options(None, None, None, 0, block, compare, theme)
        language = i18n.lang(request)
        return (self.chart(result, block, compare, theme, language, bool(all_channels)),
                self.takeaway(result, block, language))

    def after_analysis(self, result: Result | None, block: str | None, theme: str,
                       request: gr.Request | None = None) -> tuple[Any, Any, Any, Any]:
        """Cheap views of a new analysis: takeaway, specificity chart (cached per model), its note, and a clean
        intervention box."""
        if result is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        language = i18n.lang(request)
        card = self._card(result)
        figure = _specificity(self.catalog, result.model, theme, language)
        note = se_sentences.specificity_sentence(se_analysis.class_specificity(card.class_profiles), language)
        if card.arch.startswith("se_densenet"):
            note = f"{note} {se_sentences.densenet_note(language)}"
        if not se_analysis.has_profiles(card.class_profiles):
            note = se_sentences.no_profiles_sentence(result.model, language)
        return (self.takeaway(result, block, language), gr.update(value=figure, visible=figure is not None),
                note, "")

    def channels(self, result: Result | None, block: str | None) -> Any:
        """Channel choices of a block, most different from the predicted class's average first (strongest first
        without class profiles): a useful order instead of dozens of ties at 1.00."""
        if result is None:
            return gr.update(choices=[], value=None)
        names = list(result.analysis.excitations)
        block = block if block in names else names[-1]
        weights = result.analysis.excitations[block]
        means = se_analysis.block_profiles(self._card(result).class_profiles, block, len(weights)).means
        reference = means.get(result.analysis.predicted)
        order = se_analysis.distinctive_channels(weights, reference)
        if reference is None:
            choices = [(f"#{i} · {weights[i]:.2f}", i) for i in order]
        else:
            choices = [(f"#{i} · {weights[i]:.2f} (avg {reference[i]:.2f})", i) for i in order]
        return gr.update(choices=choices, value=order[0])

    def drill_pickers(self, result: Result | None, block: str | None) -> tuple[Any, Any]:
        """After an analysis: the block list (keeping the chosen block) and its channels."""
        names = list(result.analysis.excitations) if result else []
        block = block if block in names else (names[-1] if names else None)
        return gr.update(choices=names, value=block), self.channels(result, block)

    @gpu
    def channel_map(self, result: Result | None, block: str | None, channel: int | None,
                    is_open: bool = True) -> Any:
        """One channel's feature map in one SE block, laid over the photo (only while the drill-down is open)."""
        if not is_open:
            return gr.skip()
        if result is None or block is None or channel is None:
            return None
        block, channel = channel_index(result, block, channel)
        try:
            net, card, _ = self.catalog.load(result.model)
            heat = senet.channel_map(net, card, model_view(result), block, channel)  # serialised per model
        except Exception as error:
            raise fail(error) from None
        photo = model_view(result) if card.resize_ratio < 1 else result.photo
        return senet.overlay(photo, heat, opacity=0.55)

    @gpu
    def intervene(self, result: Result | None, kind: str, block: str | None, channel: int | None,
                  request: gr.Request | None = None) -> str:
        """``kind``: ``block`` (bypass the block), ``channel`` (mute it) or ``stage5`` (bypass stage 5)."""
        if result is None:
            return ""
        language = i18n.lang(request)
        if kind == "channel":
            channel = channel_number(channel)  # its range and the block are checked by the library, in words
        try:
            net, card, _ = self.catalog.load(result.model)
            if kind == "stage5":
                options: dict[str, Any] = {"bypass": stage_blocks(net, LAST_STAGE)}
            elif kind == "channel":
                options = {"mute": {block or "": [channel if isinstance(channel, int) else -1]}}
            else:
                options = {"bypass": [block or ""]}
            change = senet.intervene(net, card, model_view(result), **options)  # serialised per model inside
        except InterventionError as error:
            raise refuse(f"{error}.") from None
        except Exception as error:
            raise fail(error) from None
        return intervention_markdown(change, language)


def intervention_markdown(change: senet.Intervention, lang: str) -> str:
    """What was changed, the sentence, and a before → after table per class (most probable first)."""
    word = lambda key: i18n.word(key, lang)  # noqa: E731
    done = []
    if change.bypass:
        done.append(f"{word('se_switched_off')}: {', '.join(change.bypass)}")
    for block, channels in change.mute.items():
        done.append(f"{word('se_muted')}: {block} #{', #'.join(str(c) for c in channels)}")
    rows = [f"| {word('se_class')} | {word('se_before')} | {word('se_after')} |", "|---|---:|---:|"]
    for label, before in sorted(change.baseline.items(), key=lambda item: -item[1]):
        after = change.probabilities[label]
        arrow = "↑" if after > before + 0.005 else "↓" if after < before - 0.005 else ""
        rows.append(f"| {texts.label_name(label, lang)} | {texts.percent(before)} | {texts.percent(after)} {arrow} |")
    return "\n".join([f"**{' · '.join(done)}**", "", se_sentences.intervention_sentence(change, lang), "", *rows])


@lru_cache(maxsize=32)
def _specificity(catalog: Catalog, model: str, theme: str, lang: str) -> PlotData | None:
    """The class-specificity chart of one model (depends on its card only: made once per theme and language)."""
    card = catalog.entry(model).card
    result = se_analysis.class_specificity(card.class_profiles if card else None)
    if card is None or not result:
        return None
    short = {"en": "SE placement not studied in the SE paper", "zh": "SE 论文未研究此 SE 放置方式"}
    note = short["zh" if lang == "zh" else "en"] if card.arch.startswith("se_densenet") else ""
    return plot(se_figures.specificity_figure(result, note=note, theme=theme, lang=lang))


def layout(profiled: bool) -> SimpleNamespace:
    """The SE tab's widgets (call inside a ``gr.Tab``)."""
    ui = SimpleNamespace()
    gr.Markdown(I18N("se_views_help"))
    with gr.Row():
        # min_width: on a phone the two wrap onto their own lines instead of cutting the block's name off
        ui.block = gr.Dropdown([(I18N("paper_view"), PAPER_VIEW)], value=PAPER_VIEW, label=I18N("block"),
                               allow_custom_value=True, elem_id="se-block", min_width=280)
        ui.compare = gr.Radio([(I18N("compare_top"), "top"), (I18N("compare_all"), "all"),
                               (I18N("compare_none"), "none")], value="top", label=I18N("compare"),
                              visible=bool(profiled), min_width=280)
    ui.takeaway = gr.Markdown(elem_id="se-takeaway", elem_classes="sentence")
    ui.chart = gr.Plot(label=I18N("block_chart"), show_label=False, elem_id="se-chart")
    ui.all_channels = gr.Checkbox(False, label=I18N("se_all_channels"), elem_id="se-all-channels")
    gr.Markdown(I18N("se_takeaway_help"), elem_classes="status")
    with gr.Accordion(I18N("se_inspect"), open=False, elem_id="se-inspect") as ui.inspect:
        gr.Markdown(I18N("se_inspect_help"))
        with gr.Row():
            ui.drill_block = gr.Dropdown([], label=I18N("drill_block"), allow_custom_value=True,
                                         elem_id="se-drill-block")
            ui.channel = gr.Dropdown([], label=I18N("se_channel_order"), allow_custom_value=True,
                                     elem_id="se-channel")
        with gr.Row():
            ui.bypass_block = gr.Button(I18N("se_bypass_block"), size="sm", elem_id="se-bypass-block")
            ui.mute_channel = gr.Button(I18N("se_mute_channel"), size="sm", elem_id="se-mute-channel")
            ui.bypass_stage5 = gr.Button(I18N("se_bypass_stage5"), size="sm", variant="primary",
                                         elem_id="se-bypass-stage5")
        ui.intervention = gr.Markdown(elem_id="se-intervention")
        ui.channel_image = gr.Image(type="pil", format="png", label=I18N("channel_map"), height=320,
                                    elem_id="se-channel-map")
    ui.drill_open = gr.State(False)
    ui.specificity = gr.Plot(label=I18N("se_specificity"), show_label=False, elem_id="se-specificity")
    ui.specificity_note = gr.Markdown(elem_classes="status", elem_id="se-specificity-note")
    gr.Markdown(I18N("se_specificity_help"), elem_classes="status")
    ui.overview = gr.Plot(label=I18N("overview"), show_label=False, elem_id="se-overview")
    return ui


def wire(handlers: SeHandlers, ui: SimpleNamespace, result: gr.State, theme: gr.Textbox,
         analyses: list[Any], heavy: dict[str, Any]) -> None:
    """The SE tab's events; ``analyses`` are the events that produce a new analysis."""
    hidden = {"api_visibility": "undocumented"}
    private = {"api_visibility": "private"}
    drill = [result, ui.drill_block, ui.channel, ui.drill_open]
    for event in analyses:
        event.success(handlers.after_analysis, [result, ui.block, theme],
                      [ui.takeaway, ui.specificity, ui.specificity_note, ui.intervention], **private)
        event.success(handlers.drill_pickers, [result, ui.drill_block], [ui.drill_block, ui.channel],
                      **private).success(handlers.channel_map, drill, ui.channel_image, **private, **heavy)
    gr.on([ui.block.input, ui.compare.input, ui.all_channels.input], handlers.se_charts,
          [result, ui.block, ui.compare, theme, ui.all_channels], [ui.chart, ui.takeaway], api_name="se_charts",
          **hidden)
    ui.inspect.expand(lambda: True, None, ui.drill_open, **private).then(
        handlers.channel_map, drill, ui.channel_image, **private, **heavy)
    ui.inspect.collapse(lambda: False, None, ui.drill_open, **private)
    ui.drill_block.input(handlers.channels, [result, ui.drill_block], ui.channel, api_name="channels",
                         **hidden).success(handlers.channel_map, drill, ui.channel_image, **private, **heavy)
    ui.channel.input(handlers.channel_map, drill, ui.channel_image, api_name="channel_map", **hidden, **heavy)
    for button, kind in ((ui.bypass_block, "block"), (ui.mute_channel, "channel"), (ui.bypass_stage5, "stage5")):
        button.click(partial_kind(handlers.intervene, kind), [result, ui.drill_block, ui.channel],
                     ui.intervention, api_name=f"intervene_{kind}", **hidden, **heavy)


def partial_kind(handler: Any, kind: str) -> Any:
    """``handler`` with its ``kind`` fixed (a named function, so Gradio sees the request parameter)."""
    def run(result: Result | None, block: str | None, channel: int | None,
            request: gr.Request | None = None) -> str:
        return handler(result, kind, block, channel, request)

    run.__name__ = f"intervene_{kind}"
    return run
