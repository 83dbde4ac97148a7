"""Words for people: the plain-language prediction sentence and the model-card page, in English and Chinese.

Languages are ``en`` and ``zh`` (Simplified Chinese); anything else falls back to English.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .card import ModelCard
from .markdown_text import code_block, plain

LANGUAGES = ("en", "zh")

# Chinese names of the classes of the shipped datasets; other labels are shown as they are.
LABELS_ZH = {
    "Chickenpox": "水痘",
    "Cowpox": "牛痘",
    "HFMD": "手足口病",
    "Healthy": "健康皮肤",
    "Measles": "麻疹",
    "Monkeypox": "猴痘",
    "Others": "其他",
}

_TEXT = {
    "en": {
        "top": "The model thinks this looks most like {label} ({p})",
        "next": "; the next guess is {label} ({p})",
        "end": ".",
        "unsure": " It is not confident: no class reaches 50 %.",
        "positive": " {label} vs. everything else: {p} {label}.",
        "disclaimer": "Research demo, not a diagnosis. If you are worried about a rash, see a health professional.",
    },
    "zh": {
        "top": "模型认为这最像{label}（{p}）",
        "next": "；其次是{label}（{p}）",
        "end": "。",
        "unsure": "模型并不确定：没有任何类别达到 50 %。",
        "positive": "{label}与其他所有类别相比：{label}的概率为 {p}。",
        "disclaimer": "这是研究演示，不是诊断。如果您担心皮疹，请咨询医生或其他医疗专业人员。",
    },
}


def language(code: str | None) -> str:
    """``zh-CN,zh;q=0.9`` or ``zh-Hans`` -> ``zh``; anything not Chinese -> ``en``."""
    first = (code or "").split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"


def label_name(label: str, lang: str = "en") -> str:
    """A class name in the given language (unknown labels unchanged)."""
    return LABELS_ZH.get(label, label) if language(lang) == "zh" else label


def percent(p: float) -> str:
    """0.8123 -> ``81 %``; tiny and near-certain values do not round to a misleading 0 % or 100 %."""
    if p < 0.005:
        return "<1 %"
    if p > 0.995:
        return ">99 %"
    return f"{p * 100:.0f} %"


def prediction_sentence(probabilities: Mapping[str, float], lang: str = "en", *, positive: str = "Monkeypox") -> str:
    """E.g. ``The model thinks this looks most like Measles (81 %); the next guess is Chickenpox (12 %).``

    With more than two classes and ``positive`` among them, the "positive vs. everything else" probability
    is added (for the shipped models: the chance of Monkeypox against any other class).
    """
    text = _TEXT[language(lang)]
    ranked = sorted(probabilities.items(), key=lambda item: -item[1])
    if not ranked:
        return ""
    (top, p_top), rest = ranked[0], ranked[1:]
    sentence = text["top"].format(label=label_name(top, lang), p=percent(p_top))
    if rest:
        sentence += text["next"].format(label=label_name(rest[0][0], lang), p=percent(rest[0][1]))
    sentence += text["end"]
    if p_top < 0.5:
        sentence += text["unsure"]
    if len(ranked) > 2 and positive in probabilities:
        sentence += text["positive"].format(label=label_name(positive, lang), p=percent(probabilities[positive]))
    return sentence


def disclaimer(lang: str = "en") -> str:
    return _TEXT[language(lang)]["disclaimer"]


# --- model card -------------------------------------------------------------------------------------------

_CARD = {
    "en": {
        "data": "Data", "classes": "Classes", "metrics": "Test metrics", "confusion": "Confusion matrix",
        "confusion_note": "Rows: true class, columns: predicted class (counts on the test part).",
        "cv": "Cross-validation", "cv_note": "Mean ± std over {k} official folds (one model trained per fold).",
        "cv_folds": "Folds: {ids}.", "cv_incomplete": "**Incomplete:** {why}.",
        "training": "Training recipe", "model": "Model", "license": "License", "citation": "Citation",
        "limitations": "Limitations", "arch": "Architecture", "params": "Parameters", "input": "Input",
        "input_value": "{h} × {w} px RGB, ImageNet mean/std normalisation", "created": "Created",
        "backbone": "Initialised from", "true_pred": "true \\ predicted", "class": "class", "metric": "metric",
        "value": "value", "per_fold": "per fold", "none": "not recorded", "of_fold": "on the test part of {fold}",
        "default_limitations": (
            "Trained on a few hundred web-scraped photos: it has not been validated clinically, may fail on skin "
            "tones, body sites, cameras or lighting it has rarely seen, and only knows the classes above. "
            "It is a research demo, not a diagnostic device."),
    },
    "zh": {
        "data": "数据", "classes": "类别", "metrics": "测试指标", "confusion": "混淆矩阵",
        "confusion_note": "行：真实类别，列：预测类别（测试集上的数量）。",
        "cv": "交叉验证", "cv_note": "官方 {k} 折的均值 ± 标准差（每折训练一个模型）。",
        "cv_folds": "折：{ids}。", "cv_incomplete": "**不完整：** {why}。",
        "training": "训练方法", "model": "模型", "license": "许可证", "citation": "引用", "limitations": "局限性",
        "arch": "架构", "params": "参数量", "input": "输入",
        "input_value": "{h} × {w} 像素 RGB，ImageNet 均值/标准差归一化",
        "created": "创建日期", "backbone": "初始化自", "true_pred": "真实 \\ 预测", "class": "类别", "metric": "指标",
        "value": "数值", "per_fold": "各折", "none": "未记录", "of_fold": "{fold} 的测试集",
        "default_limitations": (
            "仅用几百张网络图片训练，未经临床验证；对训练中少见的肤色、身体部位、相机或光照可能出错，"
            "并且只认识上述类别。这是研究演示，不是诊断工具。"),
    },
}


def _is_scalar(value: Any) -> bool:
    return isinstance(value, int | float | str) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    """A number formatted for people, or card text escaped so that it renders as plain text (no markup)."""
    if isinstance(value, float):
        if value == 0 or abs(value) >= 10:
            return f"{value:.1f}" if value else "0"
        return f"{value:.3g}" if abs(value) < 0.01 else f"{value:.3f}"  # a 5e-4 learning rate is not 0.001
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Mapping | list | tuple):
        value = json.dumps(value, ensure_ascii=False)
    return plain(str(value).replace("\n", " "))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _key_values(section: Mapping[str, Any], skip: Sequence[str] = ()) -> str:
    items = [(key, value) for key, value in section.items() if key not in skip and value not in (None, "", [], {})]
    return "\n".join(f"- **{_cell(_title(key))}**: {_cell(value)}" for key, value in items)


def _title(key: str) -> str:
    return key.replace("_", " ")


def _test_metrics(metrics: Mapping[str, Any], labels: Sequence[str], words: Mapping[str, str]) -> list[str]:
    """Scalars, per-class and other tables, and the confusion matrix of a card's test metrics."""
    nested = metrics.get("test")
    section = nested if isinstance(nested, Mapping) else metrics
    out: list[str] = []
    if isinstance(nested, Mapping) and _is_scalar(metrics.get("fold")):
        out.append(f"*{words['of_fold'].format(fold=_cell(metrics['fold']))}*")
    scalars = [(_title(key), value) for key, value in section.items() if _is_scalar(value)]
    if scalars:
        out.append(_table([words["metric"], words["value"]], scalars))
    for key, value in section.items():
        if key in ("confusion_matrix", "cv") or not isinstance(value, Mapping) or not value:
            continue
        if all(isinstance(inner, Mapping) for inner in value.values()):  # per class: precision, recall, ...
            columns = list(dict.fromkeys(name for inner in value.values() for name in inner))
            rows = [[name, *(inner.get(column, "") for column in columns)] for name, inner in value.items()]
            out.append(f"**{_cell(_title(key))}**\n\n" + _table([words["class"], *map(_title, columns)], rows))
        else:
            rows = [(_title(name), inner) for name, inner in value.items() if _is_scalar(inner)]
            if rows:
                out.append(f"**{_cell(_title(key))}**\n\n" + _table([words["metric"], words["value"]], rows))
    matrix = section.get("confusion_matrix")
    names = list(section.get("labels") or labels)
    if isinstance(matrix, list) and matrix and len(matrix) == len(names):
        rows = [[name, *row] for name, row in zip(names, matrix)]
        out.append(f"**{words['confusion']}**\n\n{words['confusion_note']}\n\n"
                   + _table([words["true_pred"], *names], rows))
    return out


def _cross_validation(metrics: Mapping[str, Any], words: Mapping[str, str], section: str = "####") -> str:
    cv = metrics.get("cv")
    if not isinstance(cv, Mapping):
        return ""
    rows = []
    for key, value in cv.items():
        if isinstance(value, Mapping) and _is_scalar(value.get("mean")):
            spread = f" ± {value['std']:.3f}" if isinstance(value.get("std"), float) else ""
            folds = ", ".join(_cell(v) for v in value.get("values", []))
            rows.append((_title(key), f"{_cell(value['mean'])}{spread}", folds))
    if not rows:
        return ""
    note = words["cv_note"].format(k=_cell(cv.get("folds", len(rows[0][2].split(",")))))
    if isinstance(cv.get("fold_ids"), list):
        note += " " + words["cv_folds"].format(ids=", ".join(_cell(fold) for fold in cv["fold_ids"]))
    if cv.get("incomplete"):
        note += " " + words["cv_incomplete"].format(why=_cell(str(cv["incomplete"]).rstrip(".")))
    return f"{section} {words['cv']}\n\n{note}\n\n" + _table([words["metric"], "mean ± std", words["per_fold"]], rows)


def _class_counts(card: ModelCard, lang: str) -> str:
    counts = card.data.get("counts") if isinstance(card.data.get("counts"), Mapping) else {}
    parts = {name: part for name, part in counts.items() if isinstance(part, Mapping)}
    if not parts:
        return ", ".join(_cell(label_name(label, lang)) for label in card.labels)
    rows = [[label_name(label, lang), *(part.get(label, 0) for part in parts.values())] for label in card.labels]
    return _table([_CARD[language(lang)]["class"], *parts], rows)


def _training(training: Mapping[str, Any]) -> str:
    command = training.get("command")
    recipe = training.get("recipe") if isinstance(training.get("recipe"), Mapping) else {}
    lines = []
    if isinstance(command, str | list) and command:
        lines.append(code_block(command if isinstance(command, str) else " ".join(map(str, command))))
    body = _key_values(recipe) + "\n" + _key_values(training, skip=("command", "recipe", "history_tail"))
    lines.append(body.strip())
    return "\n\n".join(line for line in lines if line)


def model_card_markdown(card: ModelCard, lang: str = "en", *, display_name: str = "", level: int = 3) -> str:
    """The model card: data, classes, metrics (with confusion matrix), recipe, license, citation, limits.

    ``level`` is the markdown level of the title (3 inside the app's tab, 1 for a stand-alone ``.md`` file).
    """
    words = _CARD[language(lang)]
    section = "#" * (level + 1)
    # Every piece of card text goes through _cell / plain / code_block: a card is an untrusted file, and
    # markdown would otherwise render its HTML, images and links (remote content, live forms).
    parts = [f"{'#' * level} {plain(display_name or card.display_name)}"]
    if card.description:
        parts.append(plain(card.description))
    model_lines = [f"- **{words['arch']}**: `{card.arch}`" + (f" {_cell(dict(card.model_args))}" if card.model_args
                                                               else "")]
    if card.num_params:
        model_lines.append(f"- **{words['params']}**: {card.num_params / 1e6:.2f} M")
    model_lines.append(f"- **{words['input']}**: " + words["input_value"].format(h=card.input_size[0],
                                                                                 w=card.input_size[1]))
    if card.backbone:
        source = card.backbone.get("data", {})
        names = [s.get("name", "") for s in source.get("sources", [])] if isinstance(source, Mapping) else []
        origin = card.backbone.get("checkpoint", "")
        model_lines.append(f"- **{words['backbone']}**: {_cell(origin)}"
                           + (f" ({'; '.join(_cell(name) for name in names)})" if names else ""))
    model_lines.append(f"- **{words['created']}**: {_cell(card.created)}")
    parts.append(f"{section} {words['model']}\n\n" + "\n".join(model_lines))
    parts.append(f"{section} {words['classes']}\n\n{_class_counts(card, lang)}")
    if card.data:
        parts.append(f"{section} {words['data']}\n\n" + _key_values(card.data, skip=("counts", "citation", "path")))
    test = _test_metrics(card.metrics, card.labels, words)
    parts.append(f"{section} {words['metrics']}\n\n" + ("\n\n".join(test) if test else words["none"]))
    cv = _cross_validation(card.metrics, words, section)
    if cv:
        parts.append(cv)
    if card.training:
        parts.append(f"{section} {words['training']}\n\n{_training(card.training)}")
    parts.append(f"{section} {words['license']}\n\n{plain(card.license)}")
    citation = card.citation or card.data.get("citation", "")
    if citation:
        parts.append(f"{section} {words['citation']}\n\n{code_block(citation)}")
    limitations = plain(card.limitations) if card.limitations else words["default_limitations"]
    parts.append(f"{section} {words['limitations']}\n\n{limitations}")
    return "\n\n".join(parts) + "\n"
