"""Charts of SE channel weights (matplotlib, Agg canvas, no pyplot state): per-block bars and an all-blocks view.

Figures are transparent with text colours for the page's ``light`` or ``dark`` theme, and sized for a laptop
screen. Each function returns a new ``Figure``; nothing global is touched, so concurrent requests are safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from .layers import SE_BLOCK_NAME

# Okabe-Ito: distinguishable with the common colour-vision deficiencies, on white and on dark grey.
CLASS_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
THEMES: dict[str, dict[str, str]] = {
    "light": {"text": "#1f2937", "muted": "#6b7280", "grid": "#e5e7eb", "bars": "#f97316", "edge": "#d1d5db",
              "image": "#a3b1c6"},
    "dark": {"text": "#e5e7eb", "muted": "#9ca3af", "grid": "#374151", "bars": "#fb923c", "edge": "#4b5563",
             "image": "#5b6b82"},
}


def _new_figure(width: float, height: float, theme: str) -> tuple[Figure, dict[str, str]]:
    colours = THEMES.get(theme, THEMES["light"])
    # Fixed margins instead of constrained layout: that layout engine costs half the drawing time.
    figure = Figure(figsize=(width, height), dpi=110, facecolor="none")
    FigureCanvasAgg(figure)  # attaches an Agg canvas: savefig works without pyplot or a GUI backend
    return figure, colours


def _style(axes: Any, colours: Mapping[str, str]) -> None:
    axes.set_facecolor("none")
    axes.tick_params(colors=colours["muted"], labelsize=9)
    for spine in axes.spines.values():
        spine.set_color(colours["edge"])
    axes.spines[["top", "right"]].set_visible(False)
    axes.xaxis.label.set_color(colours["text"])
    axes.yaxis.label.set_color(colours["text"])


def _profile(profiles: Mapping[str, Any], block: str, label: str, channels: int) -> np.ndarray | None:
    """The class-average excitation of ``block`` for ``label`` from a card's profiles, if it fits."""
    blocks = list(profiles.get("blocks") or [])
    entry = (profiles.get("classes") or {}).get(label)
    if block not in blocks or not isinstance(entry, Mapping):
        return None
    try:
        mean = np.asarray(entry["mean"][blocks.index(block)], dtype=float)
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return mean if mean.shape == (channels,) else None


def block_chart(
    excitations: Mapping[str, np.ndarray],
    blocks: Sequence[str],
    *,
    profiles: Mapping[str, Any] | None = None,
    labels: Sequence[str] = (),
    highlight: str | None = None,
    theme: str = "light",
) -> Figure:
    """Bars of this image's channel weights for each block in ``blocks``, with class-average lines on top.

    Args:
        excitations: SE block name -> (C,) gate values of the image.
        blocks: which blocks to draw, one panel each (1 panel, or a grid of 2 columns).
        profiles: a card's ``class_profiles``; the average of each class in ``labels`` is drawn as a line.
        labels: classes to overlay, in legend order; each keeps its colour (from its place in ``profiles``)
            whichever others are shown.
        highlight: the class drawn thicker (usually the predicted one).
        theme: ``light`` or ``dark``.
    """
    blocks = [block for block in blocks if block in excitations] or list(excitations)[-1:]
    columns = 1 if len(blocks) == 1 else 2
    rows = -(-len(blocks) // columns)
    figure, colours = _new_figure(8.0, 1.9 + 2.2 * rows if rows > 1 else 3.4, theme)
    height = figure.get_figheight()
    grid = figure.subplots(rows, columns, squeeze=False, gridspec_kw={
        "left": 0.08, "right": 0.99, "bottom": 0.55 / height, "top": 1 - 0.95 / height,
        "hspace": 0.95 / (height / rows), "wspace": 0.2})
    handles: dict[str, Any] = {}
    order = list((profiles or {}).get("classes") or {})
    for axes, block in zip(grid.flat, blocks):
        gates = np.asarray(excitations[block], dtype=float).reshape(-1)
        index = np.arange(gates.size)
        # One filled step polygon instead of C bar patches: same picture, a fraction of the drawing time.
        handles["This image"] = axes.stairs(gates, np.arange(gates.size + 1) - 0.5, fill=True,
                                            color=colours["image"], alpha=0.9, linewidth=0)
        for i, label in enumerate(labels):
            mean = _profile(profiles or {}, block, label, gates.size)
            if mean is None:
                continue
            strong = label == highlight
            colour = CLASS_COLOURS[(order.index(label) if label in order else i) % len(CLASS_COLOURS)]
            (line,) = axes.plot(index, mean, color=colour, zorder=3 if strong else 2,
                                linewidth=1.6 if strong else 1.1, alpha=1.0 if strong else 0.9)
            handles[f"average {label}"] = line
        axes.set_xlim(-0.5, gates.size - 0.5)
        axes.set_ylim(0, 1.02)
        axes.set_title(f"{block} · {gates.size} channels", fontsize=10.5, loc="left", color=colours["text"])
        axes.set_ylabel("channel weight", fontsize=9)
        axes.set_xlabel("channel", fontsize=9)
        axes.grid(axis="y", color=colours["grid"], linewidth=0.6)
        axes.set_axisbelow(True)
        _style(axes, colours)
    for axes in list(grid.flat)[len(blocks):]:
        axes.set_visible(False)
    legend = figure.legend(list(handles.values()), list(handles), loc="upper center", bbox_to_anchor=(0.5, 1.0),
                           ncols=min(len(handles), 4), frameon=False, fontsize=9)
    for text in legend.get_texts():
        text.set_color(colours["text"])
    return figure


def overview_chart(excitations: Mapping[str, np.ndarray], *, theme: str = "light") -> Figure:
    """All SE blocks at once: a blocks x channels heatmap and each block's mean +- std channel weight."""
    names = list(excitations)
    values = [np.asarray(excitations[name], dtype=float).reshape(-1) for name in names]
    width = max((v.size for v in values), default=1)
    matrix = np.full((len(names), width), np.nan)
    for row, gates in enumerate(values):
        matrix[row, :gates.size] = gates
    height = float(np.clip(1.3 + 0.2 * len(names), 3.0, 8.0))
    figure, colours = _new_figure(8.0, height, theme)
    heat_axes, spread_axes, bar_axes = figure.subplots(1, 3, width_ratios=(4, 1, 0.08), gridspec_kw={
        "left": 0.09, "right": 0.93, "bottom": 0.5 / height, "top": 1 - 0.35 / height, "wspace": 0.1})
    spread_axes.sharey(heat_axes)
    spread_axes.tick_params(labelleft=False)
    image = heat_axes.imshow(matrix, aspect="auto", interpolation="nearest", cmap="viridis",
                             norm=Normalize(0, 1))
    step = max(1, -(-len(names) // 30))  # at most ~30 row labels stay readable
    heat_axes.set_yticks(range(0, len(names), step), names[::step], fontsize=8)
    heat_axes.set_xlabel("channel", fontsize=9)
    heat_axes.set_title("Channel weights of every SE block (blank: the block has fewer channels)",
                        fontsize=10.5, loc="left", color=colours["text"])
    stages = [match.group(1) if (match := SE_BLOCK_NAME.match(name)) else "" for name in names]
    for row in range(1, len(names)):
        if stages[row] != stages[row - 1]:
            for axes in (heat_axes, spread_axes):
                axes.axhline(row - 0.5, color=colours["text"], linewidth=0.8, alpha=0.6)
    means = np.array([v.mean() for v in values])
    spreads = np.array([v.std() for v in values])
    rows = np.arange(len(names))
    spread_axes.errorbar(means, rows, xerr=spreads, fmt="o", markersize=3.5, color=colours["bars"],
                         ecolor=colours["muted"], elinewidth=1.2, capsize=2)
    spread_axes.set_xlim(0, 1)
    spread_axes.set_xlabel("mean ± std", fontsize=9)
    spread_axes.grid(axis="x", color=colours["grid"], linewidth=0.6)
    spread_axes.set_axisbelow(True)
    for axes in (heat_axes, spread_axes):
        _style(axes, colours)
    colourbar = figure.colorbar(image, cax=bar_axes)
    colourbar.ax.tick_params(colors=colours["muted"], labelsize=8)
    colourbar.outline.set_edgecolor(colours["edge"])
    colourbar.set_label("weight", color=colours["text"], fontsize=9)
    return figure
