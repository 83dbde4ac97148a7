"""The SE views' plotly figure specs: valid for plotly, interactive hover, theme and language, no NaN in JSON."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from senet import se_analysis
from ui import se_figures

LABELS = ("Measles", "Monkeypox", "Healthy")


def _profiles(blocks: dict[str, int]) -> dict:
    rng = np.random.default_rng(0)
    classes = {label: {"count": 5 + i, "mean": [], "std": []} for i, label in enumerate(LABELS)}
    for channels in blocks.values():
        for label in LABELS:
            classes[label]["mean"].append(list(rng.uniform(0, 1, channels)))
            classes[label]["std"].append(list(rng.uniform(0, 0.1, channels)))
    return {"blocks": list(blocks), "channels": list(blocks.values()), "classes": classes}


BLOCKS = {"SE_2_1": 64, "SE_2_2": 64, "SE_3_1": 128, "SE_5_1": 512, "SE_5_2": 512}
PROFILES = _profiles(BLOCKS)
EXCITATIONS = {name: np.random.default_rng(1).uniform(0, 1, size) for name, size in BLOCKS.items()}


def _valid(spec: dict) -> go.Figure:
    """plotly's own validation (raises on any unknown property) and a JSON round trip without NaN."""
    json.loads(se_figures.plot_json(spec))
    return go.Figure(spec)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_block_figure(theme: str) -> None:
    means = se_analysis.block_profiles(PROFILES, "SE_5_2", 512).means
    spec = se_figures.block_figure("SE_5_2", EXCITATIONS["SE_5_2"], means, labels=["Measles"], order=LABELS,
                                   highlight="Measles", theme=theme)
    figure = _valid(spec)
    bars, *lines = figure.data
    assert bars.type == "bar" and len(bars.y) == 512 and bars.y[7] == pytest.approx(EXCITATIONS["SE_5_2"][7], 1e-3)
    assert [line.name for line in lines] == ["average Measles"]  # only the classes asked for
    assert figure.layout.hovermode == "x unified"  # one hover box: channel, this photo, every class average
    assert figure.layout.font.color == se_figures.THEMES[theme]["text"]
    assert figure.layout.yaxis.fixedrange and not figure.layout.xaxis.fixedrange  # zoom along the channels


def test_paper_figure_panels_and_language() -> None:
    panels = se_analysis.paper_view(EXCITATIONS, PROFILES)
    spec = se_figures.paper_figure(panels, labels=["Monkeypox"], order=LABELS,
                                   total_channels=dict(BLOCKS), lang="zh", source="test")
    figure = _valid(spec)
    assert figure.layout.title.subtitle.text == "类别平均值：该折留出的测试集照片"
    assert [a.text.split("</b>")[0].removeprefix("<b>") for a in figure.layout.annotations] == [
        "SE_2_2", "SE_3_1", "SE_5_1", "SE_5_2"]
    assert "512 个通道中的 50 个" in figure.layout.annotations[-1].text
    assert "猴痘平均" in {trace.name for trace in figure.data}
    # one legend entry per class for all panels; hidden classes start hidden in every panel
    legend = [trace.name for trace in figure.data if trace.showlegend]
    assert len(legend) == len(set(legend))
    assert not [trace for trace in figure.data if trace.legendgroup == "class-Measles"]  # not asked for
    assert len([trace for trace in figure.data if trace.legendgroup == "class-Monkeypox"]) == 3 * 4  # line, band
    photo = [trace for trace in figure.data if trace.mode == "markers"]
    assert list(photo[-1].customdata) == [int(c) for c in panels[-1].channels]  # hover: the real channel index
    domains = [figure.layout[f"yaxis{'' if i == 1 else i}"].domain for i in range(1, 5)]
    assert all(a[0] >= b[1] for a, b in zip(domains, domains[1:]))  # panels stacked without overlap


def test_overview_has_gaps_not_nan() -> None:
    spec = se_figures.overview_figure(EXCITATIONS)
    figure = _valid(spec)
    heat = figure.data[0]
    assert list(heat.y) == list(BLOCKS) and len(heat.z[0]) == 512
    assert heat.z[0][100] is None and heat.z[-1][511] is not None


def test_specificity_figure() -> None:
    spec = se_figures.specificity_figure(se_analysis.class_specificity(PROFILES), note="not studied", theme="dark")
    figure = _valid(spec)
    assert list(figure.data[0].x) == list(BLOCKS)
    assert figure.layout.annotations[0].text == "not studied"


@pytest.mark.parametrize(("theme", "lang"), [("light", "en"), ("dark", "zh")])
def test_compare_figure_puts_models_side_by_side(theme: str, lang: str) -> None:
    blocks = se_analysis.last_block_per_stage(list(BLOCKS))
    gates = {block: EXCITATIONS[block] for block in blocks}
    averages = {block: se_analysis.block_profiles(PROFILES, block, BLOCKS[block]).means["Measles"]
                for block in blocks[:-1]}  # the last block has no average: no line there
    columns = [se_figures.ModelColumn("SE-ResNet-18", gates, averages, "Measles"),
               se_figures.ModelColumn("SE-ResNet-18 (2)", gates, {}, "Monkeypox")]
    figure = _valid(se_figures.compare_figure(columns, order=LABELS, theme=theme, lang=lang))
    bars = [trace for trace in figure.data if trace.type == "bar"]
    lines = [trace for trace in figure.data if trace.type == "scatter"]
    assert len(bars) == 2 * len(blocks) and len(lines) == len(blocks) - 1
    assert {(trace.xaxis, trace.yaxis) for trace in bars} == {
        (f"x{'' if i == 1 else i}", f"y{'' if i == 1 else i}") for i in range(1, 2 * len(blocks) + 1)}
    assert [trace.name for trace in figure.data if trace.showlegend] == (
        ["This photo", "average Measles"] if lang == "en" else ["这张照片", "麻疹平均"])
    assert figure.layout.font.color == se_figures.THEMES[theme]["text"]
    assert figure.layout.hovermode == "x unified" and "%{x}" in bars[0].hovertemplate  # channel and weight
    # columns side by side, rows stacked, no overlap
    left, right = figure.layout.xaxis.domain, figure.layout.xaxis2.domain
    assert left[1] <= right[0]
    top, below = figure.layout.yaxis.domain, figure.layout[f"yaxis{len(columns) + 1}"].domain
    assert below[1] <= top[0]
    titles = [a.text for a in figure.layout.annotations]
    assert "<b>SE-ResNet-18</b>" in titles and any(text.startswith("SE_2_2 ·") for text in titles)
