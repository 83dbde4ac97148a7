"""Every refusal a visitor can see, in the page's language: one table, one way in.

The library and the guards keep one English sentence per refusal (API clients get it as it is). On a Chinese page
(``Accept-Language`` of the request, :func:`ui.i18n.lang`) :func:`in_language` gives its Chinese, keeping the
variable parts (model names, numbers, the value that was asked for). ``TEMPLATES`` maps an English template with
``{named}`` parts to the Chinese with the same parts; a part named in ``_PART_WORDS`` is translated itself (class
names, CAM method names). The image refusals of ``senet.image_io`` are regular expressions in
``ui/upload_errors.py``; :func:`in_language` consults both tables.

Handlers raise :func:`refuse` (a ``gr.Error`` in the language of the request being handled); the queue guard,
which runs before a handler and has the request itself, calls :func:`in_language`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import gradio as gr
from gradio.context import LocalContext

from senet import texts

from . import upload_errors
from .i18n import TEXT, lang

# English template -> Chinese template (same {parts}). Tests check both sides name the same parts.
TEMPLATES: dict[str, str] = {
    # Queue and lanes (ui/guards.py, ui/lanes.py).
    "The server is busy: {n} requests are already waiting. Please try again in a minute.":
        "服务器正忙：已有 {n} 个请求在排队。请一分钟后再试。",
    "You already have {n} requests waiting or running. Please wait for them to finish.":
        "您已有 {n} 个请求在等待或运行。请等它们完成。",
    ("This function is one of the page's own steps and cannot be called directly. Please call the /analyze "
     "endpoint instead."): "这是页面自身的步骤，不能直接调用。请调用 /analyze 接口。",
    ("Slow methods (Score-CAM, Ablation-CAM) are busy: {n} are already waiting. Please try again in a minute, or "
     "use a fast method such as Grad-CAM."):
        "慢速方法（Score-CAM、Ablation-CAM）正忙：已有 {n} 个在排队。请一分钟后再试，或使用 Grad-CAM 等快速方法。",
    ("You already have a slow analysis (Score-CAM or Ablation-CAM) waiting or running. Please wait for it to "
     "finish."): "您已有一个慢速分析（Score-CAM 或 Ablation-CAM）在等待或运行。请等它完成。",
    "This model is busy with other analyses. Please try again in a minute.": "这个模型正忙于其他分析。请一分钟后再试。",
    # Uploads refused by the HTTP guard (ui/http_limits.py).
    "Too many uploads from your address in the last minute. Please wait a minute and try again.":
        "过去一分钟内来自您地址的上传太多。请等一分钟再试。",
    "The server's upload space is full. Please try again in a few minutes.": "服务器的上传空间已满。请几分钟后再试。",
    "The request is too large ({size} MB); images are limited to {limit} MB.":
        "请求太大（{size} MB）；图片上限为 {limit} MB。",
    # Models (ui/components.fail, senet.catalog, senet.private_models).
    "The model {name} is unavailable; choose another one.": "模型 {name} 不可用；请选择其他模型。",
    "unknown model {name}; choose one of: {models}": "未知模型 {name}；可选：{models}",
    "no usable checkpoint is installed in checkpoints/": "checkpoints/ 中没有安装可用的模型。",
    "a model name must be a string": "模型名称必须是文本。",
    "The analysis failed unexpectedly. Please try another photo or model.":
        "分析意外失败。请换一张照片或换一个模型再试。",
    # Analysis options (senet.options.unknown, senet.explain).
    "This model has no CAM layer {value}; choose one of: {choices}.": "这个模型没有 CAM 层 {value}；可选：{choices}。",
    "This model has no class {value}; choose one of: {classes}.": "这个模型没有类别 {value}；可选：{classes}。",
    "This model has no SE block {value}; choose one of: {choices}.": "这个模型没有 SE 模块 {value}；可选：{choices}。",
    "There is no CAM method {value}; choose one of: {choices}.": "没有 CAM 方法 {value}；可选：{choices}。",
    "SE block {block} has channels 0 to {last}; choose one of those.":
        "SE 模块 {block} 的通道为 0 到 {last}；请从中选择。",
    "This model has classes 0 to {last}; there is no class {index}.":
        "这个模型的类别为 0 到 {last}；没有类别 {index}。",
    # Inputs checked by the app (ui/request_checks.py).
    "The opacity must be a number from 0 to 1, not {value}.": "不透明度必须是 0 到 1 之间的数字，而不是 {value}。",
    "Unknown SE block {value}; this model's blocks are {first} to {last}.":
        "未知 SE 模块 {value}；这个模型的模块为 {first} 到 {last}。",
    "The channel must be a whole number from 0 to {last} for {block}, not {value}.":
        "{block} 的通道必须是 0 到 {last} 之间的整数，而不是 {value}。",
    "The channel must be a whole number, not {value}.": "通道必须是整数，而不是 {value}。",
    "Unknown {name} {value}; choose one of: {choices}.": "未知的{name} {value}；可选：{choices}。",
    "The {name} must be a number from {low} to {high}, not {value}.":
        "{name}必须是 {low} 到 {high} 之间的数字，而不是 {value}。",
    "The photo must be an uploaded file or a data: URL. Please upload the image first.":
        "请先上传图片（文件或 data: URL）。",
    # Interventions (ui/se_tab.py shows senet.interventions' message with a full stop).
    "nothing to change: name SE blocks to bypass or channels to mute.":
        "没有要改变的内容：请指定要跳过的 SE 模块或要屏蔽的通道。",
    "this model has no SE block {value}; its blocks are {blocks}.":
        "这个模型没有 SE 模块 {value}；它的模块有：{blocks}。",
    "channels of {block} must be whole numbers, got {value}.": "{block} 的通道必须是整数，收到的是 {value}。",
    "{block} has channels 0 to {last}, got {index}.": "{block} 的通道为 0 到 {last}，收到的是 {index}。",
    "no channels given to mute in {block}.": "没有指定 {block} 中要屏蔽的通道。",
    # Batch, compare (ui/batch.py, ui/compare.py, senet.compare).
    "Please upload some photos or a .zip archive first.": "请先上传一些照片或一个 .zip 压缩包。",
    "Please choose one of these CAM methods: {methods}.": "请选择以下 CAM 方法之一：{methods}。",
    "No usable model is installed, so there is nothing to compare.": "没有安装可用的模型，因此无法比较。",
    "Please pick at most {limit} models to compare (got {count}).":
        "最多只能选择 {limit} 个模型进行比较（收到 {count} 个）。",
    # A visitor's own model (ui/own_model.py, senet.private_models).
    "Uploads are switched off on this server.": "本服务器已关闭上传。",
    "Choose a .pth, .pt or .safetensors file first.": "请先选择一个 .pth、.pt 或 .safetensors 文件。",
    "This page has no session, so an uploaded model could not be kept for you alone.":
        "本页面没有会话，因此无法为您单独保存上传的模型。",
    "Upload a .pth, .pt or .safetensors weights file, not {suffix}.":
        "请上传 .pth、.pt 或 .safetensors 权重文件，而不是 {suffix}。",
    "The file is {size} MB; the limit is {limit} MB.": "文件大小为 {size} MB；上限为 {limit} MB。",
    ("{count} labels were given but the model has {need} outputs ({what}); give exactly {need} class names, in "
     "training order."):
        "输入了 {count} 个类别名称，但模型有 {need} 个输出（{what}）；请按训练顺序输入恰好 {need} 个类别名称。",
    "every label must be 1 to {limit} characters long.": "每个类别名称必须为 1 到 {limit} 个字符。",
    "the label {value} is given twice; class names must be unique.": "类别名称 {value} 重复了；类别名称必须各不相同。",
    "This file holds {what}: type its {count} class names, in the order used in training.":
        "这个文件包含{what}：请按训练时的顺序输入它的 {count} 个类别名称。",
}

# Parts whose words are translated too (comma-separated lists of class names).
_PART_WORDS: dict[str, Callable[[str], str]] = {
    "classes": lambda text: "、".join(texts.LABELS_ZH.get(name, name) for name in text.split(", ")),
    "suffix": lambda text: "这种文件" if text == "this" else text,  # senet.private_models: a file without a suffix
    "what": lambda text: _recognised_zh(text),
    "name": lambda text: _LABELS_ZH().get(text, text),  # an input's label, as ui/request_checks names it
}


def _recognised_zh(text: str) -> str:
    """``senet.recognize``'s ``SE-ResNet-50, SE reduction 16, SE layers without biases, 2 classes`` in Chinese
    (the architecture's name stays)."""
    for english, chinese in ((r"SE reduction (\d+)", r"SE 压缩比 \1"), (r"SE layers without biases", "SE 层无偏置"),
                             (r"(\d+) classes", r"\1 个类别"), (r", ", "，")):
        text = re.sub(english, chinese, text)
    return text


def _LABELS_ZH() -> dict[str, str]:  # noqa: N802 (a table, built on use: tab modules add labels when imported)
    """The page's labels, English (lower case, as request_checks says them) -> Chinese."""
    return {english.lower(): TEXT["zh"].get(key, english) for key, english in TEXT["en"].items()}
# Refusals of a visitor's own model whose sentence comes from the converter (many shapes): said in Chinese with the
# library's detail kept, rather than left wholly English.
_OWN_MODEL_ZH = "无法使用这个模型文件（{detail}）。"


_GREEDY = {"name": ".+"}  # a label has spaces ("cam method"); the value after it is a short quoted repr


def _compile(template: str) -> re.Pattern[str]:
    parts, seen = re.split(r"\{(\w+)\}", template), set()
    regex = ""
    for i, part in enumerate(parts):
        if i % 2 == 0:
            regex += re.escape(part)
        else:  # a part named twice must repeat the same text
            regex += f"(?P={part})" if part in seen else f"(?P<{part}>{_GREEDY.get(part, '.+?')})"
            seen.add(part)
    return re.compile(f"^{regex}$", re.S)


_COMPILED = tuple((_compile(english), zh) for english, zh in TEMPLATES.items())


def in_language(message: str, language: str) -> str:
    """A refusal in ``language`` (``en``, or any sentence not in the tables: as it is)."""
    if language != "zh":
        return message
    for pattern, zh in _COMPILED:
        match = pattern.match(message)
        if match:
            parts = {key: _PART_WORDS.get(key, str)(value) for key, value in match.groupdict().items()}
            return zh.format(**parts)
    return upload_errors.in_language(message, language)


def for_page(message: str) -> str:
    """``message`` in the language of the page whose request is being handled (English outside a request)."""
    return in_language(message, lang(LocalContext.request.get(None)))


def refuse(message: str) -> gr.Error:
    """A refusal for the page, in its language (``raise refuse("...")``)."""
    return gr.Error(for_page(message), print_exception=False)


def own_model_refusal(message: str) -> gr.Error:
    """A refusal of a visitor's uploaded model: the table's Chinese, else the converter's detail in a Chinese
    sentence (its file-format words have no table)."""
    language = lang(LocalContext.request.get(None))
    said = in_language(message, language)
    if language == "zh" and said == message:
        said = _OWN_MODEL_ZH.format(detail=message.rstrip("."))
    return gr.Error(said, print_exception=False)
