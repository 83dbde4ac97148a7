"""Words of the page: the EN / ZH tables for Gradio's i18n and the page language of a request.

The library keeps the sentences any front end needs (``senet.texts``); widget labels live here. Each tab
module may add its own table with :func:`add` when it is imported; ``I18N`` sees every table (it keeps the dicts).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from senet import texts

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "# SENet Explorer",
        "subtitle": ("See what a Squeeze-and-Excitation network looks at in a skin photo: its prediction, a "
                     "Grad-CAM heatmap, and how every SE block re-weights its channels."),
        "disclaimer": "⚠️ **Research demo, not a diagnosis.** Do not use it to make medical decisions.",
        "model": "Model",
        "photo": "Photo",
        "examples": ("Examples (true class under each photo; after a run ✓ / ✗: the model's answer; MSLD v2.0 test "
                     "images, CC BY-NC-SA 4.0)"),
        "analyze": "Analyze",
        "options": "Explanation options",
        "method": "CAM method",
        "target": "Class to explain",
        "predicted_class": "Predicted class",
        "layer": "CAM layer",
        "opacity": "Heatmap opacity",
        "prediction": "Prediction",
        "tab_explore": "Explore",
        "tab_cam": "Grad-CAM",
        "tab_se": "SE channel weights",
        "tab_card": "Model card",
        "overlay": "Heatmap on the photo",
        "heatmap": "Raw heatmap",
        "block": "SE block",
        "paper_view": "SE paper view (Figs. 6-7)",
        "compare": "Compare with the average photo of",
        "compare_top": "the two most likely classes",
        "compare_all": "every class",
        "compare_none": "none",
        "se_help": ("**How to read it:** bars are this photo's channel weights (the SE gate, 0 to 1); lines are the "
                    "average weights over training photos of each class. Values near 1 pass a channel through, "
                    "near 0 mute it. Early blocks look alike for every class; late blocks (SE_5_x) differ between "
                    "classes, which is where the network's class-specific choices show."),
        "block_chart": "Channel weights per block",
        "overview": "All SE blocks",
        "drill": "Channel drill-down: what does one channel respond to?",
        "drill_block": "Block",
        "channel": "Channel (strongest first)",
        "channel_map": "Channel feature map on the photo",
        "status_idle": "Upload a photo or pick an example to start.",
        "cancel": "Cancel",
        "api_help": "Call it from Python with `gradio_client`: see **Use via API** at the bottom of the page.",
    },
    "zh": {
        "title": "# SENet 探索器",
        "subtitle": ("看看挤压-激励（SE）网络在皮肤照片中关注什么：预测结果、Grad-CAM 热力图，"
                     "以及每个 SE 模块如何重新加权各通道。"),
        "disclaimer": "⚠️ **研究演示，不是诊断。** 请勿据此做出医疗决定。",
        "model": "模型",
        "photo": "照片",
        "examples": "示例（照片下方为真实类别；分析后 ✓ / ✗ 表示模型的答案；MSLD v2.0 测试集图片，CC BY-NC-SA 4.0）",
        "analyze": "分析",
        "options": "解释选项",
        "method": "CAM 方法",
        "target": "要解释的类别",
        "predicted_class": "预测类别",
        "layer": "CAM 层",
        "opacity": "热力图不透明度",
        "prediction": "预测",
        "tab_explore": "探索",
        "tab_cam": "Grad-CAM",
        "tab_se": "SE 通道权重",
        "tab_card": "模型卡",
        "overlay": "叠加在照片上的热力图",
        "heatmap": "原始热力图",
        "block": "SE 模块",
        "paper_view": "SE 论文视图（图 6-7）",
        "compare": "与以下类别的平均照片比较",
        "compare_top": "最可能的两个类别",
        "compare_all": "所有类别",
        "compare_none": "不比较",
        "se_help": ("**如何阅读：** 柱形是这张照片各通道的权重（SE 门控值，0 到 1）；折线是各类别训练照片的平均权重。"
                    "接近 1 表示通道被保留，接近 0 表示被抑制。浅层模块对所有类别都相似；深层模块（SE_5_x）"
                    "在类别之间不同，体现了网络针对类别的选择。"),
        "block_chart": "各模块的通道权重",
        "overview": "所有 SE 模块",
        "drill": "通道细看：某个通道对什么有反应？",
        "drill_block": "模块",
        "channel": "通道（最强的在前）",
        "channel_map": "通道特征图叠加在照片上",
        "status_idle": "上传照片或选择示例即可开始。",
        "cancel": "取消",
        "api_help": "可用 Python 的 `gradio_client` 调用：见页面底部的 **通过 API 使用**。",
    },
}


# Gradio keeps these dicts by reference, so tables added later by the tab modules are served too.
I18N = gr.I18n(en=TEXT["en"], **{"zh-CN": TEXT["zh"], "zh": TEXT["zh"]})


def add(table: dict[str, dict[str, str]]) -> None:
    """Merge a tab's own ``{"en": {...}, "zh": {...}}`` table into the page's (keys must be new)."""
    for lang in ("en", "zh"):
        clash = set(table[lang]) & set(TEXT[lang])
        if clash:
            raise ValueError(f"i18n keys defined twice: {sorted(clash)}")
        TEXT[lang].update(table[lang])


def lang(request: Any) -> str:
    """``en`` or ``zh``, from the browser's ``Accept-Language`` (for text made on the server)."""
    headers = getattr(request, "headers", None) or {}
    return texts.language(headers.get("accept-language"))


def word(key: str, language: str) -> str:
    """One table entry in ``language`` (for text the server writes into Markdown)."""
    return TEXT["zh" if language == "zh" else "en"][key]
