"""Plotly figures of the SE views, drawn by the browser (Gradio's ``gr.Plot`` bundles plotly.js: no CDN).

Gradio-free and dependency-light: every builder returns a plotly figure *specification* (the ``{"data": [...],
"layout": {...}}`` dictionary that plotly.js draws), so it is unit-testable and cheap. Why not ``go.Figure``:
its validation and the default template it embeds made the paper view cost ~350 ms and 150 KB per answer on
the 2-core CPU, several times the analysis itself; the tests validate every spec with ``go.Figure`` instead.
Numbers are rounded to 3 decimals; only the classes asked for are sent (the
compare picker asks for more). ``gr.Plot`` takes a spec through
``plot_data``.

Each builder takes the data from ``senet.se_analysis`` (or an analysis's excitations), the page's theme
(``light`` / ``dark``) and language (``en`` / ``zh``); backgrounds are transparent. Hover shows the channel
index, this photo's weight and each class average; every chart zooms by dragging (double-click resets).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from senet.se_analysis import BlockProfiles, BlockSpecificity
from senet.texts import label_name

Figure = dict[str, Any]  # a plotly figure specification

# Okabe-Ito: distinguishable with the common colour-vision deficiencies, on white and on dark grey.
CLASS_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
STAGE_COLOURS = {2: "#94a3b8", 3: "#60a5fa", 4: "#f59e0b", 5: "#ef4444"}
THEMES: dict[str, dict[str, str]] = {
    "light": {"text": "#1f2937", "muted": "#6b7280", "grid": "#e5e7eb", "photo": "#94a3b8", "overall": "#111827",
              "hover": "#ffffff"},
    "dark": {"text": "#e5e7eb", "muted": "#9ca3af", "grid": "#374151", "photo": "#64748b", "overall": "#f9fafb",
             "hover": "#1f2937"},
}
WORDS = {
    "en": {
        "photo": "This photo", "average": "average {label}", "all": "all classes", "channel": "channel",
        "weight": "channel weight", "block": "SE block", "channels": "{n} channels",
        "subset": "{n} of {c} channels", "specificity": "class specificity",
        "saturated": "share of saturated channels (mean weight > 0.9)",
        "specificity_title": "Class specificity per SE block",
        "overview_title": "Every SE block",
        "paper_title": "SE paper view (Figs. 6-7)",
        "std": "± std",
        "compare_title": "SE channel weights, last block of each stage",
        "source_test": "class averages: the fold's held-out Test photos",
        "source_train_valid": ("class averages: the card's profiles (a trained model's Train+Valid photos);<br>"
                               "no Test-photo profiles: python -m senet.add_profiles --data DATASET adds them"),
    },
    "zh": {
        "photo": "这张照片", "average": "{label}平均", "all": "所有类别", "channel": "通道",
        "weight": "通道权重", "block": "SE 模块", "channels": "{n} 个通道",
        "subset": "{c} 个通道中的 {n} 个", "specificity": "类别特异性",
        "saturated": "饱和通道比例（平均权重 > 0.9）",
        "specificity_title": "各 SE 模块的类别特异性",
        "overview_title": "所有 SE 模块",
        "paper_title": "SE 论文视图（图 6-7）",
        "std": "± 标准差",
        "compare_title": "SE 通道权重：每个阶段的最后一个模块",
        "source_test": "类别平均值：该折留出的测试集照片",
        "source_train_valid": ("类别平均值：模型卡中的数据（训练所得模型为训练+验证照片）；<br>"
                               "没有测试集照片的数据：python -m senet.add_profiles --data DATASET 可添加"),
    },
}


def _words(lang: str) -> dict[str, str]:
    return WORDS["zh" if lang == "zh" else "en"]


def _colours(theme: str) -> dict[str, str]:
    return THEMES.get(theme, THEMES["light"])


def class_colour(label: str, order: Sequence[str]) -> str:
    """A class keeps its colour (from its place in ``order``, the card's labels) whichever others are shown."""
    index = list(order).index(label) if label in order else len(order)
    return CLASS_COLOURS[index % len(CLASS_COLOURS)]


def plot_json(figure: Figure) -> str:
    """The JSON that ``gr.Plot`` hands to plotly.js (NaN becomes null: blank heatmap cells)."""
    return json.dumps(figure, separators=(",", ":"), allow_nan=False, default=_plain)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot put {type(value).__name__} in a figure")


def _values(array: Any) -> list[float | None]:
    """Rounded floats for the JSON (3 decimals: a thousandth of the gate's range); NaN -> None (plotly's gap)."""
    rounded = np.round(np.asarray(array, dtype=np.float64).reshape(-1), 3)
    if not np.isnan(rounded).any():
        return rounded.tolist()
    return [None if np.isnan(v) else v for v in rounded.tolist()]


def _axis(colours: Mapping[str, str], **extra: Any) -> dict[str, Any]:
    return {"gridcolor": colours["grid"], "zerolinecolor": colours["grid"], "linecolor": colours["grid"],
            "automargin": True, **extra}


def _layout(theme: str, *, height: int, title: str = "", **extra: Any) -> dict[str, Any]:
    colours = _colours(theme)
    layout = {
        "height": height,
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"color": colours["text"], "size": 12,
                 "family": "system-ui, -apple-system, 'Segoe UI', 'Noto Sans CJK SC', 'Noto Sans', sans-serif"},
        "margin": {"l": 56, "r": 16, "t": 64 if title else 24, "b": 44},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "font": {"size": 11}},
        # plotly's unified hover box is white with the font colour: unreadable on the dark theme without this
        "hoverlabel": {"namelength": -1, "bgcolor": colours["hover"], "font": {"color": colours["text"]}},
        "dragmode": "zoom",
        "xaxis": _axis(colours), "yaxis": _axis(colours),
    }
    if title:
        layout["title"] = {"text": title, "font": {"size": 14}, "x": 0, "xanchor": "left", "y": 0.995,
                           "yanchor": "top"}
    layout.update(extra)
    return layout


def block_figure(
    block: str,
    photo: np.ndarray,
    means: Mapping[str, np.ndarray],
    *,
    labels: Sequence[str] = (),
    order: Sequence[str] = (),
    highlight: str | None = None,
    theme: str = "light",
    lang: str = "en",
) -> Figure:
    """One SE block, every channel: this photo's weights as bars, class averages as lines.

    Hover (one box per channel) lists the channel index, this photo's weight and every drawn class average.
    Only the classes in ``labels`` are drawn (a legend click hides one).
    """
    words, colours = _words(lang), _colours(theme)
    gates = np.asarray(photo, dtype=np.float64).reshape(-1)
    x = list(range(gates.size))
    data: list[dict[str, Any]] = [{
        "type": "bar", "x": x, "y": _values(gates), "name": words["photo"], "opacity": 0.85,
        "marker": {"color": colours["photo"], "line": {"width": 0}},
        "hovertemplate": "%{y:.3f} (" + words["channel"] + " %{x})"}]
    for label, mean in means.items():
        if label not in labels:
            continue
        strong = label == highlight
        data.append({
            "type": "scatter", "mode": "lines", "x": x, "y": _values(mean),
            "name": words["average"].format(label=label_name(label, lang)),
            "line": {"color": class_colour(label, order), "width": 2.2 if strong else 1.3, "shape": "hvh"},
            "opacity": 1.0 if strong else 0.85, "hovertemplate": "%{y:.3f}"})
    layout = _layout(theme, height=380, title=f"{block} · {words['channels'].format(n=gates.size)}",
                     hovermode="x unified", bargap=0)
    layout["margin"]["t"] = 88
    layout["xaxis"].update(title={"text": words["channel"]}, range=[-0.5, gates.size - 0.5])
    layout["yaxis"].update(title={"text": words["weight"]}, range=[0, 1.02], fixedrange=True)
    return {"data": data, "layout": layout}


def paper_figure(
    panels: Sequence[BlockProfiles],
    *,
    labels: Sequence[str] = (),
    order: Sequence[str] = (),
    total_channels: Mapping[str, int] | None = None,
    source: str = "",
    theme: str = "light",
    lang: str = "en",
) -> Figure:
    """The SE paper's Figs. 6-7: one panel per block, over a channel subset, with each class's average (a line)
    and mean ± std band, the all-classes mean (dashed) and this photo (dots).

    Only the classes in ``labels`` are drawn; a legend click toggles a class in every panel at once. ``source``
    (``test`` or ``train_valid``; empty: no class averages) says under the title which photos the averages
    are over.
    """
    words, colours = _words(lang), _colours(theme)
    rows = max(1, len(panels))
    note = words["source_" + source] if source else ""
    panel_height, top, bottom = 190, 100 + 16 * (note.count("<br>") + 1 if note else 0), 40
    height = top + bottom + panel_height * rows
    layout = _layout(theme, height=height, title=words["paper_title"], hovermode="x unified")
    if note:  # plotly's subtitle: a second title line that plotly places (a <br> in the title gets clipped)
        layout["title"]["subtitle"] = {"text": note, "font": {"size": 11, "color": colours["muted"]}}
    layout["margin"].update(t=top, b=bottom)
    gap = 0.35 / rows  # share of the height between panels (room for each panel's title)
    annotations = []
    data: list[dict[str, Any]] = []
    for row, panel in enumerate(panels, start=1):
        suffix = "" if row == 1 else str(row)
        x_name, y_name = f"x{suffix}", f"y{suffix}"
        upper = 1 - (row - 1) / rows
        domain = [max(0.0, upper - 1 / rows + gap / 2), upper - gap / 2]
        ticks = list(range(0, panel.channels.size, max(1, panel.channels.size // 10)))
        layout[f"xaxis{suffix}"] = _axis(colours, anchor=y_name, tickvals=ticks,
                                         ticktext=[str(int(panel.channels[i])) for i in ticks])
        layout[f"yaxis{suffix}"] = _axis(colours, anchor=x_name, domain=domain, range=[0, 1.02], fixedrange=True)
        total = (total_channels or {}).get(panel.block, panel.channels.size)
        note = (words["channels"].format(n=total) if panel.channels.size >= total
                else words["subset"].format(n=panel.channels.size, c=total))
        annotations.append({"text": f"<b>{panel.block}</b> · {note}", "xref": "paper", "yref": "paper", "x": 0,
                            "y": domain[1], "xanchor": "left", "yanchor": "bottom", "showarrow": False,
                            "font": {"size": 12, "color": colours["text"]}})
        x = list(range(panel.channels.size))
        axes = {"xaxis": x_name, "yaxis": y_name}
        first = row == 1
        for label, mean in panel.means.items():
            if label not in labels:
                continue
            colour = class_colour(label, order)
            std = panel.stds[label]
            group = {"legendgroup": f"class-{label}", **axes}
            data.append({"type": "scatter", "mode": "lines", "x": x, "y": _values(np.clip(mean + std, 0, 1.02)),
                         "line": {"width": 0, "color": colour}, "showlegend": False, "hoverinfo": "skip",
                         **group})
            data.append({"type": "scatter", "mode": "lines", "x": x, "y": _values(np.clip(mean - std, 0, 1)),
                         "line": {"width": 0, "color": colour}, "fill": "tonexty", "fillcolor": _alpha(colour, 0.15),
                         "showlegend": False, "hoverinfo": "skip", **group})
            data.append({"type": "scatter", "mode": "lines", "x": x, "y": _values(mean),
                         "name": words["average"].format(label=label_name(label, lang)),
                         "line": {"color": colour, "width": 1.6}, "showlegend": first,
                         "customdata": _values(std),
                         "hovertemplate": "%{y:.3f} " + words["std"] + " %{customdata:.3f}", **group})
        if panel.overall is not None:
            data.append({"type": "scatter", "mode": "lines", "x": x, "y": _values(panel.overall),
                         "name": words["all"], "legendgroup": "all", "showlegend": first,
                         "line": {"color": colours["overall"], "width": 1.4, "dash": "dash"},
                         "hovertemplate": "%{y:.3f}", **axes})
        if panel.photo is not None:
            data.append({"type": "scatter", "mode": "markers", "x": x, "y": _values(panel.photo),
                         "name": words["photo"], "legendgroup": "photo", "showlegend": first,
                         "marker": {"color": colours["text"], "size": 5},
                         "customdata": [int(c) for c in panel.channels],
                         "hovertemplate": words["channel"] + " %{customdata}: %{y:.3f}", **axes})
    layout["annotations"] = annotations
    layout["legend"].update(y=1.0, yanchor="bottom")  # just above the first panel, under the title
    return {"data": data, "layout": layout}


def overview_figure(excitations: Mapping[str, np.ndarray], *, theme: str = "light", lang: str = "en") -> Figure:
    """All SE blocks at once: a blocks x channels heatmap (hover: block, channel, weight)."""
    words, colours = _words(lang), _colours(theme)
    names = list(excitations)
    values = [np.asarray(excitations[name], dtype=np.float64).reshape(-1) for name in names]
    width = max((v.size for v in values), default=1)
    matrix = np.full((len(names), width), np.nan)
    for row, gates in enumerate(values):
        matrix[row, : gates.size] = gates
    data = [{
        "type": "heatmap", "z": [_values(row) for row in matrix], "y": names, "x": list(range(width)),
        "zmin": 0, "zmax": 1, "colorscale": "Viridis", "hoverongaps": False,
        "colorbar": {"title": {"text": words["weight"], "side": "right"}, "thickness": 12,
                     "tickfont": {"color": colours["text"]}},
        "hovertemplate": words["block"] + " %{y}<br>" + words["channel"] + " %{x}: %{z:.3f}<extra></extra>"}]
    layout = _layout(theme, height=int(np.clip(140 + 16 * len(names), 300, 1100)), title=words["overview_title"])
    layout["yaxis"].update(autorange="reversed", type="category", tickfont={"size": 10})
    layout["xaxis"].update(title={"text": words["channel"]})
    return {"data": data, "layout": layout}


def specificity_figure(
    specificity: Sequence[BlockSpecificity], *, note: str = "", theme: str = "light", lang: str = "en"
) -> Figure:
    """One bar per SE block (its class specificity), coloured by stage, with the share of saturated channels
    as dots on a second axis; ``note`` (e.g. that the paper never studied this placement) goes under the title."""
    words, colours = _words(lang), _colours(theme)
    names = [s.block for s in specificity]
    data = [
        {"type": "bar", "x": names, "y": _values([s.specificity for s in specificity]), "name": words["specificity"],
         "marker": {"color": [STAGE_COLOURS.get(s.stage, colours["photo"]) for s in specificity]},
         "hovertemplate": "%{x}: %{y:.3f}<extra></extra>"},
        {"type": "scatter", "mode": "markers", "x": names, "y": _values([s.saturated for s in specificity]),
         "name": words["saturated"], "yaxis": "y2", "marker": {"color": colours["text"], "size": 7,
                                                               "symbol": "diamond"},
         "hovertemplate": "%{x}: %{y:.0%}<extra></extra>"},
    ]
    layout = _layout(theme, height=380, title=words["specificity_title"])
    layout["margin"].update(t=72, b=110)
    layout["legend"].update(y=-0.32, yanchor="top")
    layout["xaxis"].update(type="category", tickangle=-45 if len(names) > 6 else 0, tickfont={"size": 10})
    layout["yaxis"].update(title={"text": words["specificity"]}, rangemode="tozero")
    layout["yaxis2"] = _axis(colours, overlaying="y", side="right", range=[0, 1.05], tickformat=".0%",
                             showgrid=False, fixedrange=True)
    if note:
        layout["annotations"] = [{"text": note, "xref": "paper", "yref": "paper", "x": 0, "y": 1.02,
                                  "xanchor": "left", "yanchor": "bottom", "showarrow": False,
                                  "font": {"size": 11, "color": colours["muted"]}}]
        layout["margin"]["t"] = 96
    return {"data": data, "layout": layout}


@dataclass(frozen=True)
class ModelColumn:
    """One model's column of the side-by-side SE chart (Compare tab)."""

    model: str  # the model's short name (the column's title)
    gates: Mapping[str, np.ndarray]  # SE block -> (C,) this photo's gate values, one row each, top to bottom
    averages: Mapping[str, np.ndarray]  # SE block -> (C,) the average of ``label`` (blocks without one: absent)
    label: str | None = None  # the class whose average is drawn (the model's prediction)


def compare_figure(
    columns: Sequence[ModelColumn], *, order: Sequence[str] = (), theme: str = "light", lang: str = "en"
) -> Figure:
    """Several models side by side: one column per model, one row per block (the i-th block of every model
    shares a row), this photo's weights as bars and the predicted class's average as a line.

    Hover (per panel) names the channel, this photo's weight and the class average; drag zooms one panel.
    """
    words, colours = _words(lang), _colours(theme)
    count = max(1, len(columns))
    rows = max((len(column.gates) for column in columns), default=1) or 1
    panel_height, top, bottom = 150, 110, 36
    layout = _layout(theme, height=top + bottom + panel_height * rows, title=words["compare_title"],
                     hovermode="x unified", bargap=0)
    layout["margin"].update(t=top, b=bottom, l=44)
    row_gap, column_gap = 0.3 / rows, 0.04
    annotations: list[dict[str, Any]] = []
    data: list[dict[str, Any]] = []
    shown: set[str] = set()
    for col, column in enumerate(columns):
        left, right = col / count + column_gap / 2, (col + 1) / count - column_gap / 2
        annotations.append({"text": f"<b>{column.model}</b>", "xref": "paper", "yref": "paper",
                            "x": (left + right) / 2, "y": 1.0, "xanchor": "center", "yanchor": "bottom",
                            "yshift": 16, "showarrow": False, "font": {"size": 12, "color": colours["text"]}})
        for row, (block, gates) in enumerate(column.gates.items()):
            index = row * count + col + 1
            suffix = "" if index == 1 else str(index)
            upper = 1 - row / rows
            domain = [max(0.0, upper - 1 / rows + row_gap / 2), upper - row_gap / 2]
            values = np.asarray(gates, dtype=np.float64).reshape(-1)
            layout[f"xaxis{suffix}"] = _axis(colours, anchor=f"y{suffix}", domain=[left, right],
                                             range=[-0.5, values.size - 0.5], tickfont={"size": 9})
            layout[f"yaxis{suffix}"] = _axis(colours, anchor=f"x{suffix}", domain=domain, range=[0, 1.02],
                                             fixedrange=True, tickfont={"size": 9}, showticklabels=col == 0)
            annotations.append({"text": f"{block} · {words['channels'].format(n=values.size)}", "xref": "paper",
                                "yref": "paper", "x": left, "y": domain[1], "xanchor": "left",
                                "yanchor": "bottom", "showarrow": False,
                                "font": {"size": 10, "color": colours["muted"]}})
            axes = {"xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}
            x = list(range(values.size))
            data.append({"type": "bar", "x": x, "y": _values(values), "name": words["photo"], "opacity": 0.85,
                         "legendgroup": "photo", "showlegend": "photo" not in shown,
                         "marker": {"color": colours["photo"], "line": {"width": 0}},
                         "hovertemplate": "%{y:.3f} (" + words["channel"] + " %{x})", **axes})
            shown.add("photo")
            average = column.averages.get(block)
            if average is not None and column.label is not None:
                key = f"class-{column.label}"
                data.append({"type": "scatter", "mode": "lines", "x": x, "y": _values(average),
                             "name": words["average"].format(label=label_name(column.label, lang)),
                             "legendgroup": key, "showlegend": key not in shown,
                             "line": {"color": class_colour(column.label, order), "width": 1.6, "shape": "hvh"},
                             "hovertemplate": "%{y:.3f}", **axes})
                shown.add(key)
    layout["annotations"] = annotations
    layout["legend"].update(y=1.0 + 40 / (panel_height * rows), yanchor="bottom")
    return {"data": data, "layout": layout}


def _alpha(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"
