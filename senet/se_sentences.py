"""Plain sentences (English / Chinese) for the SE views: the takeaway, interventions, faithfulness, and what
to do when a checkpoint has no class profiles. Data comes from ``se_analysis``, ``interventions`` and
``faithfulness``; words live here so every front end says the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence

from .faithfulness import Faithfulness
from .interventions import Intervention
from .se_analysis import BlockSpecificity, Takeaway
from .texts import label_name, language, percent

_TEXT = {
    "en": {
        "takeaway": "In {block} this photo's channel weights are closest to the average {label} photo (r = {r}).",
        "no_profiles": ("This checkpoint has no class profiles, so there are no class averages to compare with. "
                        "Add them from labelled photos (one folder per class): `python -m senet.add_profiles "
                        "--checkpoint {name}.safetensors --folder PHOTOS/`."),
        "lowers": "lowers", "raises": "raises", "keeps": "keeps",
        "faith": ("Hiding the {pct} most highlighted area {verb} {label} from {before} to {after} "
                  "(hiding the {pct} least highlighted area: {control})."),
        "faith_verdict_good": " The heatmap points at what the model uses.",
        "faith_verdict_bad": (" Hiding the highlighted area hurts no more than hiding the rest: read this map "
                              "with care."),
        "keeps_prediction": "The prediction stays {label}: {before} → {after}.",
        "changes_prediction": "The prediction changes from {old} ({old_before} → {old_after}) to {new} ({new_after}).",
        "specificity": ("In this model the most class-specific block is {top} ({value}) and the most saturated is "
                        "{sat} ({share} of its channels average above 0.9)."),
        "densenet_note": ("The SE paper studied SE blocks in ResNet-style networks only; SE-DenseNet puts one on "
                          "every dense layer's new features, a placement it never analysed."),
    },
    "zh": {
        "takeaway": "在 {block} 中，这张照片的通道权重最接近{label}照片的平均值（r = {r}）。",
        "no_profiles": ("此检查点没有类别平均值（class profiles），因此无法与各类别比较。"
                        "可用带标签的照片（每个类别一个文件夹）"
                        "添加：`python -m senet.add_profiles --checkpoint {name}.safetensors --folder PHOTOS/`。"),
        "lowers": "降低", "raises": "提高", "keeps": "保持",
        "faith": ("遮住热图最突出的 {pct} 区域后，{label}的概率从 {before} {verb}到 {after}"
                  "（遮住最不突出的 {pct} 区域：{control}）。"),
        "faith_verdict_good": "热图指向的正是模型所依赖的区域。",
        "faith_verdict_bad": "遮住突出区域的影响并不比遮住其他区域大：请谨慎解读这张热图。",
        "keeps_prediction": "预测仍为{label}：{before} → {after}。",
        "changes_prediction": "预测从{old}（{old_before} → {old_after}）变为{new}（{new_after}）。",
        "specificity": ("在这个模型中，类别特异性最强的模块是 {top}（{value}），"
                        "最饱和的是 {sat}（{share} 的通道平均权重高于 0.9）。"),
        "densenet_note": ("SE 论文只研究了 ResNet 类网络中的 SE 模块；"
                          "SE-DenseNet 在每个密集层的新特征上放一个 SE 模块，"
                          "论文从未分析过这种放置方式。"),
    },
}
_FAITHFUL = 0.02  # ROAD score (probability units) above which the map counts as pointing at what matters


def takeaway_sentence(takeaway: Takeaway, lang: str = "en") -> str:
    """E.g. ``In SE_5_2 this photo's channel weights are closest to the average Measles photo (r = 0.95).``"""
    return _TEXT[language(lang)]["takeaway"].format(
        block=takeaway.block, label=label_name(takeaway.label, lang), r=f"{takeaway.r:.2f}")


def no_profiles_sentence(checkpoint: str, lang: str = "en") -> str:
    """What to do when a checkpoint (e.g. a converted one) has no class profiles."""
    return _TEXT[language(lang)]["no_profiles"].format(name=checkpoint)


def specificity_sentence(specificity: Sequence[BlockSpecificity], lang: str = "en") -> str:
    """Where this model's class averages differ most, and which block saturates most (empty without data)."""
    if not specificity:
        return ""
    top = max(specificity, key=lambda s: s.specificity)
    saturated = max(specificity, key=lambda s: s.saturated)
    return _TEXT[language(lang)]["specificity"].format(
        top=top.block, value=f"{top.specificity:.3f}", sat=saturated.block, share=f"{saturated.saturated * 100:.0f} %")


def densenet_note(lang: str = "en") -> str:
    """Why SE-DenseNet's specificity chart cannot be read against the paper."""
    return _TEXT[language(lang)]["densenet_note"]


def faithfulness_sentence(result: Faithfulness, lang: str = "en") -> str:
    """E.g. ``Hiding the 20 % most highlighted area lowers Monkeypox from 71 % to 23 % (...: 68 %).``"""
    text = _TEXT[language(lang)]
    change = result.after_most - result.before
    verb = text["keeps"] if abs(change) < 0.005 else text["lowers"] if change < 0 else text["raises"]
    sentence = text["faith"].format(pct=f"{result.fraction * 100:.0f} %", verb=verb,
                                    label=label_name(result.target, lang), before=percent(result.before),
                                    after=percent(result.after_most), control=percent(result.after_least))
    return sentence + text["faith_verdict_good" if result.score > _FAITHFUL else "faith_verdict_bad"]


def intervention_sentence(result: Intervention, lang: str = "en") -> str:
    """Whether the top class survives the intervention, with its probability before → after."""
    text = _TEXT[language(lang)]
    old, new = result.baseline_predicted, result.predicted
    if old == new:
        return text["keeps_prediction"].format(label=label_name(old, lang), before=percent(result.baseline[old]),
                                               after=percent(result.probabilities[old]))
    return text["changes_prediction"].format(
        old=label_name(old, lang), old_before=percent(result.baseline[old]),
        old_after=percent(result.probabilities[old]), new=label_name(new, lang),
        new_after=percent(result.probabilities[new]))
