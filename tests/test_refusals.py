"""Every refusal a visitor can see has Chinese with the same variable parts (ui/refusals.py), and the handlers
say it in the language of the request. Over HTTP: tests/test_public_service.py."""

from __future__ import annotations

import re
import string
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from gradio.context import LocalContext

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import senet  # noqa: E402
from senet import options  # noqa: E402
from senet.catalog import ModelUnavailable  # noqa: E402
from senet.compare import CompareError  # noqa: E402
from senet.private_models import UploadRefused  # noqa: E402
from ui import guards, lanes, refusals  # noqa: E402
from ui.components import fail  # noqa: E402

# What may stay Latin in a Chinese refusal: names of methods, file types, units, and the values that were sent.
LATIN_ALLOWED = re.compile(r"Grad-CAM|Score-CAM|Ablation-CAM|CAM|SE|\.pth|\.pt|\.safetensors|\.zip|MB|data: URL|"
                           r"/analyze|checkpoints/|[\d.,%×+ ]")
SAMPLE = {"n": "3", "size": "21.0", "limit": "20", "name": "alpha", "models": "alpha, beta", "value": "'x'",
          "choices": "layer3, layer4", "classes": "Chickenpox, Measles", "block": "SE_5_2", "last": "6",
          "index": "9", "first": "SE_2_1", "blocks": "SE_2_1, SE_5_2", "methods": "gradcam, gradcampp",
          "count": "2", "suffix": ".txt", "what": "SE-ResNet-18", "low": "0", "high": "1", "need": "7"}
ZH_REQUEST = SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"})


def _parts(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _has_english(chinese: str, *names: str) -> bool:
    for name in sorted(names, key=len, reverse=True):  # "alpha, beta" before "alpha"
        chinese = chinese.replace(name, "")
    return bool(re.search(r"[A-Za-z]{2,}", LATIN_ALLOWED.sub("", chinese)))


@pytest.mark.parametrize("english", list(refusals.TEMPLATES))
def test_every_refusal_has_chinese_with_the_same_parts(english: str) -> None:
    chinese = refusals.TEMPLATES[english]
    assert _parts(english) == _parts(chinese), (english, chinese)
    values = {part: SAMPLE[part] for part in _parts(english)}
    message = english.format(**values)
    said = refusals.in_language(message, "zh")
    assert said != message and re.search(r"[\u4e00-\u9fff]", said), (message, said)
    names = [values[part] for part in ("name", "value", "choices", "block", "first", "blocks", "methods", "models",
                                       "what", "suffix") if part in values]
    assert not _has_english(said, *names), (message, said)
    for part, value in values.items():  # every variable part is kept (class names are translated)
        assert (value if part != "classes" else "水痘") in said, (part, said)
    assert refusals.in_language(message, "en") == message


def test_the_guards_sentences_are_in_the_table() -> None:
    """The constants the guards raise are the table's keys: a reworded sentence fails here, not on a Chinese page."""
    for sentence in (guards.QUEUE_FULL, guards.SESSION_BUSY, guards.NOT_AN_API, lanes.SLOW_BUSY,
                     lanes.SLOW_SESSION, lanes.MODEL_BUSY):
        assert sentence in refusals.TEMPLATES, sentence


def test_library_sentences_match_the_table() -> None:
    """The library's own sentences (made here by the library, not copied) are found in the table."""
    library = [
        options.unknown("class", "x", ["Chickenpox", "Measles"]),
        options.unknown("CAM layer", "x", ["layer4"]),
        options.unknown("SE block", "x", ["SE_5_2"]),
        options.unknown("CAM method", "x", senet.CAM_METHODS, of_model=False),
        CompareError("No usable model is installed, so there is nothing to compare."),
    ]
    for error in library:
        said = refusals.in_language(str(error), "zh")
        assert said != str(error) and not _has_english(said, "'x'", "layer4", "SE_5_2", *senet.CAM_METHODS), said


def test_handlers_refuse_in_the_language_of_the_request() -> None:
    errors = [options.unknown("class", "Cowpox?", ["Chickenpox", "Measles"]),
              ModelUnavailable("alpha is unavailable: Error while deserializing header"),
              RuntimeError("a bug")]
    token = LocalContext.request.set(ZH_REQUEST)
    try:
        said = [fail(error).message for error in errors]
        busy = refusals.refuse(lanes.MODEL_BUSY).message  # what the lanes raise
        own = refusals.own_model_refusal("weights.pth: the state dict has no SE blocks.").message
        known = refusals.own_model_refusal(str(UploadRefused("The file is 300 MB; the limit is 200 MB."))).message
        labels = refusals.own_model_refusal("This file holds SE-ResNet-18, SE reduction 16, 2 classes: type its 2 "
                                            "class names, in the order used in training.").message
    finally:
        LocalContext.request.reset(token)
    assert said == ["这个模型没有类别 'Cowpox?'；可选：水痘、麻疹。", "模型 alpha 不可用；请选择其他模型。",
                    "分析意外失败。请换一张照片或换一个模型再试。"], said
    assert busy == "这个模型正忙于其他分析。请一分钟后再试。"
    assert known == "文件大小为 300 MB；上限为 200 MB。"
    assert labels == "这个文件包含SE-ResNet-18，SE 压缩比 16，2 个类别：请按训练时的顺序输入它的 2 个类别名称。", labels
    assert own.startswith("无法使用这个模型文件（weights.pth: the state dict has no SE blocks）"), own
    # API clients (no Accept-Language) and English pages: the library's English.
    assert fail(errors[0]).message == str(errors[0])
    assert fail(errors[2]).message.startswith("The analysis failed unexpectedly")
