"""Names and short sentences the server writes in the page's language: classes, models, CAM layers, the
status line and the heatmap caption.

The library keeps the data (a card's labels, its display name, the layer keys); the words live here. Class names
come from the built-in table (``senet.texts.LABELS_ZH``) and a card may add or override its own in
``card.data["label_names"] = {"zh": {"Monkeypox": "猴痘", ...}}``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

from senet import texts

_MODEL_ZH = (  # English pieces of senet.catalog.card_display_name -> Chinese
    (re.compile(r"(\d+) classes"), r"\1 类"),
    (re.compile(r"(\d+) % acc \((\d+)-fold\)"), r"准确率 \1 %（\2 折）"),
    (re.compile(r"(\d+) % acc \(CV incomplete\)"), r"准确率 \1 %（部分交叉验证）"),
    (re.compile(r"(\d+) % acc"), r"准确率 \1 %"),
    (re.compile(r" ?\(unavailable\)"), "（不可用）"),
)

WORDS = {
    "en": {
        "analysed": "Analysed in {seconds} on the {device}",
        "details": "Details",
        "cached": "answered from the cache (the same photo, model and options were analysed before)",
        "cpu": "CPU", "gpu": "GPU",
        "seconds": "{value:.1f} s",
        "forward_backward": "forward + backward", "cam": "CAM", "threads": "threads", "total": "{ms} ms in all",
        "cancelled": "Cancelled. Pick an option or press Analyze to run again.",
        "caption": "Where the model looked to decide <b>{label}</b> · {method} · {layer}",
        "last_stage": "last stage",
        "low": "low", "high": "high",
        "note_border": ("This map has its strongest values on the image border and little inside: early layers "
                        "rarely give useful maps. Try the default layer (last stage)."),
        "note_empty": "This map is almost empty: this layer gives no useful map for this photo. Try the default layer.",
        "model_note": "{classes} classes · {blocks} SE blocks · models from the folder <code>{folder}</code>",
        "model_unavailable": "⚠️ This model is unavailable. Choose another one.",
        "no_models": "⚠️ No usable model was found in the folder <code>{folder}</code>.",
        "progress": "{method}: {percent} % of the masked passes",
        "progress_start": "{method}: starting",
    },
    "zh": {
        "analysed": "在{device}上分析用时 {seconds}",
        "details": "详细信息",
        "cached": "来自缓存（之前分析过同一照片、模型和选项）",
        "cpu": " CPU ", "gpu": " GPU ",
        "seconds": "{value:.1f} 秒",
        "forward_backward": "前向 + 反向", "cam": "CAM", "threads": "线程", "total": "共 {ms} ms",
        "cancelled": "已取消。选择选项或按“分析”重新运行。",
        "caption": "模型判断为 <b>{label}</b> 时关注的区域 · {method} · {layer}",
        "last_stage": "最后阶段",
        "low": "低", "high": "高",
        "note_border": "此图的最强值位于图像边缘，内部很弱：浅层很少给出有用的热力图。请尝试默认层（最后阶段）。",
        "note_empty": "此图几乎为空：该层对这张照片没有给出有用的热力图。请尝试默认层。",
        "model_note": "{classes} 个类别 · {blocks} 个 SE 模块 · 模型来自文件夹 <code>{folder}</code>",
        "model_unavailable": "⚠️ 此模型不可用，请选择其他模型。",
        "no_models": "⚠️ 在文件夹 <code>{folder}</code> 中没有找到可用的模型。",
        "progress": "{method}：已完成 {percent} % 的遮挡前向计算",
        "progress_start": "{method}：开始",
    },
}


def say(key: str, language: str, **values: Any) -> str:
    """One sentence of :data:`WORDS` in ``language`` (``en`` or ``zh``), formatted with ``values``."""
    return WORDS["zh" if language == "zh" else "en"][key].format(**values)


def class_names(labels: Sequence[str], language: str, card_data: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Each label's name in ``language``: the card's own ``label_names`` first, then the built-in table."""
    if language != "zh":
        return {label: label for label in labels}
    own = (card_data or {}).get("label_names")
    own = own.get("zh") if isinstance(own, Mapping) else None
    own = own if isinstance(own, Mapping) else {}
    return {label: str(own.get(label) or texts.LABELS_ZH.get(label, label)) for label in labels}


def model_name(display_name: str, language: str) -> str:
    """A catalog display name (``SE-ResNet-18 · MSLD v2 · 77 % acc (5-fold)``) in ``language``."""
    if language != "zh":
        return display_name
    for pattern, replacement in _MODEL_ZH:
        display_name = pattern.sub(replacement, display_name)
    return display_name


def model_choices(choices: Sequence[tuple[str, str]], language: str) -> list[tuple[str, str]]:
    """The model picker's ``(display name, model name)`` choices with the names in ``language``."""
    return [(model_name(text, language), name) for text, name in choices]


def layer_name(key: str, text: str, language: str, *, default: bool) -> str:
    """A short CAM layer choice that fits the picker (``layer4 · last stage (default)``, ``layer3 · stage 4``);
    the library's longer description (``text``) is kept for layers it does not know."""
    zh = language == "zh"
    if default:
        return f"{key} · " + ("最后阶段（默认）" if zh else "last stage (default)")
    if key.startswith("layer") and key[5:].isdigit():
        stage = int(key[5:]) + 1  # the SE paper counts the stem as stage 1
        return f"{key} · " + (f"第 {stage} 阶段" if zh else f"stage {stage}")
    if key.startswith("denseblock"):
        number = key.removeprefix("denseblock")
        return f"{key} · " + (f"第 {number} 个密集块" if zh else f"dense block {number}")
    return text


def method_name(display_name: str, language: str) -> str:
    """A CAM method's name (``Score-CAM (slow)``) in ``language``: the method stays, the note is translated."""
    if language != "zh":
        return display_name
    return display_name.replace(" (slow)", "（较慢）").replace(" (gradient-free)", "（无需梯度）")


def device_word(device_name: str, language: str) -> str:
    """``CPU (2 threads)`` -> ``CPU``; a CUDA device -> ``GPU`` (the short form for the status line)."""
    return say("gpu" if "CUDA" in device_name else "cpu", language)


def status_line(total_ms: float, timings: Mapping[str, float], device_name: str, method: str, model: str,
                language: str, *, cached: bool = False) -> str:
    """``Analysed in 0.3 s on the CPU`` and, folded away, the engineer's details (timings, device, model; whether
    the answer came from the cache of identical requests)."""
    seconds = say("seconds", language, value=total_ms / 1000)
    short = say("analysed", language, seconds=seconds, device=device_word(device_name, language))
    device = device_name.replace("threads", say("threads", language)) if language == "zh" else device_name
    details = (f"{html.escape(method)} · {say('forward_backward', language)} "
               f"{timings.get('forward_backward', 0):.0f} ms, {say('cam', language)} {timings.get('cam', 0):.0f} ms, "
               f"{say('total', language, ms=round(total_ms))} · {html.escape(device)} · {html.escape(model)}")
    if cached:
        details += " · " + say("cached", language)
    return f"{short} <details><summary>{say('details', language)}</summary>{details}</details>"


def legend(stops: Sequence[str], language: str) -> str:
    """A colour scale, low to high, for the heatmap (HTML)."""
    gradient = ", ".join(stops)
    return (f'<div class="cam-legend"><span>{say("low", language)}</span>'
            f'<span class="cam-legend-bar" style="background: linear-gradient(to right, {gradient})"></span>'
            f'<span>{say("high", language)}</span></div>')
