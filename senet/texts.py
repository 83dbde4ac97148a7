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
        "sure": (" Of the {n} test photos where it was this sure ({lo}–{hi}), it was right {k} times: "
                 "{about} {a} in {b}."),
        "about": "about",
        "record_not_here": (" Its record on test photos does not apply here: they were skin photos, and this photo "
                            "does not look like one."),
        "unfamiliar": ("This photo does not look like the skin photos this model was trained on, so its answer "
                       "means little."),
        "operating": ("At the app's operating point ({label} when it is the most likely class), it finds about "
                      "{fa} of {fb} {label} photos and wrongly flags about {ga} of {gb} others (sensitivity "
                      "{sens}, specificity {spec}; {source})."),
        "cv_source": "mean over {k} cross-validation folds", "test_source": "on the test part",
    },
    "zh": {
        "top": "模型认为这最像{label}（{p}）",
        "next": "；其次是{label}（{p}）",
        "end": "。",
        "unsure": "模型并不确定：没有任何类别达到 50 %。",
        "positive": "{label}与其他所有类别相比：{label}的概率为 {p}。",
        "disclaimer": "这是研究演示，不是诊断。如果您担心皮疹，请咨询医生或其他医疗专业人员。",
        "sure": "在它同样有把握（{lo}–{hi}）的 {n} 张测试照片中，它答对了 {k} 张：{about}每 {b} 张对 {a} 张。",
        "about": "大约",
        "record_not_here": "它在测试照片上的成绩不适用于这里：那些是皮肤照片，而这张照片看起来不像。",
        "unfamiliar": "这张照片不像该模型训练时见过的皮肤照片，所以它的答案参考价值很小。",
        "operating": ("在本应用的判定标准下（{label}为最可能的类别时），每 {fb} 张{label}照片中它大约能找出 {fa} 张，"
                      "其他照片中大约每 {gb} 张误报 {ga} 张（灵敏度 {sens}，特异度 {spec}；{source}）。"),
        "cv_source": "{k} 折交叉验证的均值", "test_source": "测试集上",
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


def prediction_sentence(probabilities: Mapping[str, float], lang: str = "en", *, positive: str | None = None,
                        card: ModelCard | None = None, unfamiliar: bool | None = None) -> str:
    """E.g. ``The model thinks this looks most like Measles (81 %); the next guess is Chickenpox (12 %).``

    With more than two classes and ``positive`` among them, the "positive vs. everything else" probability
    is added (for the shipped models: the chance of Monkeypox against any other class). Without ``positive``,
    the card's positive class is used; when the card is calibrated the sentence ends with how often the model
    was right on its Test photos at this confidence (see ``confidence_sentence``), unless the photo is
    ``unfamiliar``: then it says that record does not apply (a cat is not "right 7 times in 10").
    """
    if positive is None and card is not None:
        positive = positive_class(card)
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
    if len(ranked) > 2 and positive is not None and positive in probabilities:
        sentence += text["positive"].format(label=label_name(positive, lang), p=percent(probabilities[positive]))
    if card is not None:
        record = confidence_sentence(card, p_top, lang)
        sentence += text["record_not_here"] if record and unfamiliar else record
    return sentence


def confidence_sentence(card: ModelCard, confidence: float, lang: str = "en") -> str:
    """`` Of the 23 test photos where it was this sure (70 %–80 %), it was right 18 times: about 8 in 10.``

    From the card's ``metrics["calibration"]["confidence_bins"]``; empty when the card has none.
    """
    from .calibration import confidence_bin

    row = confidence_bin(card, confidence)
    if row is None or not row["n"]:
        return ""
    text = _TEXT[language(lang)]
    a, b = _about(row["correct"] / row["n"])
    return text["sure"].format(n=row["n"], k=row["correct"], lo=f"{row['lo'] * 100:.0f} %",
                               hi=f"{row['hi'] * 100:.0f} %", about=text["about"], a=a, b=b)


def unfamiliar_sentence(lang: str = "en") -> str:
    """What the app says first when ``Analysis.unfamiliar`` is true."""
    return _TEXT[language(lang)]["unfamiliar"]


def _about(share: float) -> tuple[int, int]:
    """0.78 -> (8, 10); 0.13 -> (1, 8): a share in words a non-specialist reads."""
    if 0 < share < 0.25:
        return 1, max(4, round(1 / share))
    return round(share * 10), 10


def positive_class(card: ModelCard) -> str | None:
    """The card's positive class (``data.positive``, else its "positive vs. rest" Test metrics say which), or None."""
    declared = card.data.get("positive") if isinstance(card.data, Mapping) else None
    if isinstance(declared, str) and declared in card.labels:
        return declared
    test: Mapping[str, Any] = card.metrics["test"] if isinstance(card.metrics.get("test"), Mapping) else {}
    for value in test.values():
        if isinstance(value, Mapping) and isinstance(value.get("positive"), str):
            return value["positive"]
    return None


def operating_point_sentence(card: ModelCard, lang: str = "en") -> str:
    """Positive-vs-rest sensitivity and specificity at the app's operating point (top class), in words.

    Uses the cross-validation means when the card has them, else its Test part; empty without either.
    """
    text = _TEXT[language(lang)]
    test: Mapping[str, Any] = card.metrics["test"] if isinstance(card.metrics.get("test"), Mapping) else {}
    key = next((k for k, v in test.items() if isinstance(v, Mapping) and isinstance(v.get("positive"), str)), None)
    if key is None:
        return ""
    cv: Mapping[str, Any] = card.metrics["cv"] if isinstance(card.metrics.get("cv"), Mapping) else {}
    sens, spec = (cv.get(f"{key}.{name}") for name in ("sensitivity", "specificity"))
    if isinstance(sens, Mapping) and isinstance(spec, Mapping):
        sens, spec, source = float(sens["mean"]), float(spec["mean"]), text["cv_source"].format(k=cv.get("folds"))
    elif isinstance(test[key].get("sensitivity"), float) and isinstance(test[key].get("specificity"), float):
        sens, spec, source = float(test[key]["sensitivity"]), float(test[key]["specificity"]), text["test_source"]
    else:
        return ""
    label = label_name(test[key]["positive"], lang)
    (fa, fb), (ga, gb) = _about(sens), _about(1 - spec)
    return text["operating"].format(label=label, fa=fa, fb=fb, ga=ga, gb=gb, sens=percent(sens), spec=percent(spec),
                                    source=source)


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
        "value": "value", "per_fold": "per fold",
        "setting": "setting", "yes": "yes", "no": "no", "none": "not recorded", "of_fold": "on the test part of {fold}",
        "operating_title": "Operating point", "calibration": "Calibration",
        "calibration_note": ("Probabilities are divided by a temperature of {t:.2f} (fitted on {fit} by negative "
                             "log-likelihood) before the softmax. On {test}: expected calibration error (10 bins) "
                             "{ece0} before, {ece1} after; negative log-likelihood {nll0} before, {nll1} after."),
        "bins_header": "confidence|test photos|right",
        "familiarity_title": "Unfamiliar photos",
        "familiarity_note": ("A photo is flagged as unfamiliar when it looks less like the training photos than "
                             "{pass_} of the Valid photos do ({method}). Flagged: {valid} of Valid, {test} of Test."),
        "familiarity_held_out": ("Tested on pictures never used to set it up, it warned on {natural} of natural photos "
                                 "({n_natural} photos of animals, buildings, vehicles, ...) and on {foreign} of other "
                                 "pictures ({n_foreign}: documents, charts, microscopy, faces, logos, screenshots, "
                                 "...). No warning does not prove that a photo is a skin photo."),
        "default_limitations": (
            "This card records no limitations. The model only knows the classes above, may fail on photos unlike "
            "its training data, and has not been validated clinically: a research demo, not a diagnostic device."),
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
        "value": "数值", "per_fold": "各折",
        "setting": "设置", "yes": "是", "no": "否", "none": "未记录", "of_fold": "{fold} 的测试集",
        "operating_title": "判定标准", "calibration": "校准",
        "calibration_note": ("概率在 softmax 之前先除以温度 {t:.2f}（在 {fit} 上按负对数似然拟合）。"
                             "在 {test} 上：期望校准误差（10 个区间）校准前 {ece0}，校准后 {ece1}；"
                             "负对数似然校准前 {nll0}，校准后 {nll1}。"),
        "bins_header": "置信度|测试照片|答对",
        "familiarity_title": "陌生照片",
        "familiarity_note": ("如果一张照片比 {pass_} 的验证集照片更不像训练照片，就会被标为陌生照片（{method}）。"
                             "被标记的比例：验证集 {valid}，测试集 {test}。"),
        "familiarity_held_out": ("在从未用于设定它的图片上测试：自然照片（{n_natural} 张动物、建筑、车辆等）"
                                 "中有 {natural} 被警告，其他图片（{n_foreign} 张文档、图表、显微图像、人脸、标志、"
                                 "截图等）中有 {foreign} 被警告。没有警告并不能证明照片是皮肤照片。"),
        "default_limitations": (
            "此模型卡未记录局限性。模型只认识上述类别，对与其训练数据不同的照片可能出错，"
            "且未经临床验证：这是研究演示，不是诊断工具。"),
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
            pairs = [(_title(name), inner) for name, inner in value.items() if _is_scalar(inner)]
            if pairs:
                out.append(f"**{_cell(_title(key))}**\n\n" + _table([words["metric"], words["value"]], pairs))
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
    counts = card.data.get("counts")
    parts = {name: part for name, part in counts.items() if isinstance(part, Mapping)} \
        if isinstance(counts, Mapping) else {}
    if not parts:
        return ", ".join(_cell(label_name(label, lang)) for label in card.labels)
    rows = [[label_name(label, lang), *(part.get(label, 0) for part in parts.values())] for label in card.labels]
    return _table([_CARD[language(lang)]["class"], *parts], rows)


def _readable(value: Any, words: Mapping[str, str]) -> str:
    """One recipe value for people: 3 significant digits, yes / no, lists joined (no raw dicts or 1.3333333)."""
    if isinstance(value, bool):
        return words["yes"] if value else words["no"]
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    if isinstance(value, list | tuple):
        return " – ".join(_readable(item, words) for item in value) if len(value) == 2 else \
            ", ".join(_readable(item, words) for item in value)
    return str(value)


def _flat(section: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested settings as (``augment · scale``, value) rows."""
    rows: list[tuple[str, Any]] = []
    for key, value in section.items():
        name = f"{prefix}{_title(key)}"
        if isinstance(value, Mapping):
            rows += _flat(value, f"{name} · ")
        elif value not in (None, "", [], {}):
            rows.append((name, value))
    return rows


def _training(training: Mapping[str, Any], words: Mapping[str, str]) -> str:
    """The recipe and the run's facts as a two-column table; the command that reproduces it as code."""
    command = training.get("command")
    recipe = training.get("recipe")
    recipe = recipe if isinstance(recipe, Mapping) else {}
    facts = {key: value for key, value in training.items() if key not in ("command", "recipe", "history_tail")}
    rows = [(name, _readable(value, words)) for name, value in _flat(recipe) + _flat(facts)]
    lines = []
    if rows:
        lines.append(_table([words["setting"], words["value"]], rows))
    if isinstance(command, str | list) and command:
        lines.append(code_block(command if isinstance(command, str) else " ".join(map(str, command))))
    return "\n\n".join(lines)


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
    # What the model cannot do comes before what it scored: a reader may stop after the first section.
    limitations = plain(card.limitations) if card.limitations else words["default_limitations"]
    parts.append(f"{section} {words['limitations']}\n\n{limitations}")
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
    parts += _trust_sections(card, lang, section)
    if card.training:
        parts.append(f"{section} {words['training']}\n\n{_training(card.training, words)}")
    parts.append(f"{section} {words['license']}\n\n{plain(card.license)}")
    citation = card.citation or card.data.get("citation", "")
    if citation:
        parts.append(f"{section} {words['citation']}\n\n{code_block(citation)}")
    return "\n\n".join(parts) + "\n"


def _trust_sections(card: ModelCard, lang: str, section: str) -> list[str]:
    """Operating point, calibration and unfamiliar-photo sections (only what the card records)."""
    words = _CARD[language(lang)]
    out = []
    operating = operating_point_sentence(card, lang)
    if operating:
        out.append(f"{section} {words['operating_title']}\n\n{operating}")
    calibration = card.metrics.get("calibration")
    if isinstance(calibration, Mapping) and "temperature" in calibration:
        raw, cal = calibration.get("raw", {}), calibration.get("calibrated", {})
        note = words["calibration_note"].format(
            t=float(calibration["temperature"]), fit=calibration.get("fitted_on", "Valid"),
            test=calibration.get("evaluated_on", "Test"), ece0=_cell(raw.get("ece")), ece1=_cell(cal.get("ece")),
            nll0=_cell(raw.get("nll")), nll1=_cell(cal.get("nll")))
        rows = [(f"{row['lo'] * 100:.0f}–{row['hi'] * 100:.0f} %", row["n"], row["correct"])
                for row in calibration.get("confidence_bins", [])]
        table = "\n\n" + _table(words["bins_header"].split("|"), rows) if rows else ""
        out.append(f"{section} {words['calibration']}\n\n{note}{table}")
    familiarity = card.metrics.get("familiarity")
    if isinstance(familiarity, Mapping) and isinstance(familiarity.get("flagged"), Mapping):
        flagged = familiarity["flagged"]
        note = words["familiarity_note"].format(
            pass_=percent(float(familiarity.get("valid_pass", 0.95))), method=familiarity.get("method", ""),
            valid=percent(float(flagged.get("valid", 0))), test=percent(float(flagged.get("test", 0))))
        held_out = held_out_rates(familiarity.get("held_out"))
        if "natural" in held_out and "foreign" in held_out:
            (natural, n_natural), (foreign, n_foreign) = held_out["natural"], held_out["foreign"]
            note += "\n\n" + words["familiarity_held_out"].format(natural=natural, n_natural=n_natural,
                                                               foreign=foreign, n_foreign=n_foreign)
        out.append(f"{section} {words['familiarity_title']}\n\n{note}")
    return out


def held_out_rates(rows: Any) -> dict[str, tuple[str, int]]:
    """``metrics["familiarity"]["held_out"]`` rows -> kind ("natural" / "foreign") -> (the range of the shares
    flagged over its sets, e.g. ``85–98 %``, the photos in all of them). Malformed rows are skipped: a card
    from elsewhere may hold anything."""
    found: dict[str, list[tuple[float, int]]] = {}
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, Mapping) or row.get("kind") not in ("natural", "foreign"):
            continue
        share, photos = row.get("flagged"), row.get("photos")
        if (isinstance(share, (int, float)) and not isinstance(share, bool) and 0 <= share <= 1
                and isinstance(photos, int) and not isinstance(photos, bool) and photos > 0):
            found.setdefault(row["kind"], []).append((float(share), photos))
    def whole(share: float) -> int:  # 100 only when every picture was flagged, 0 only when none was
        return 100 if share == 1 else 0 if share == 0 else min(99, max(1, round(share * 100)))

    out = {}
    for kind, values in found.items():
        low, high = whole(min(v for v, _ in values)), whole(max(v for v, _ in values))
        out[kind] = (f"{low} %" if low == high else f"{low}–{high} %", sum(n for _, n in values))
    return out
