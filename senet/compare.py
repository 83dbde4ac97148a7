"""Several models on one photo: each model's analysis, side by side, and a sentence on whether they agree.

Different models run in parallel threads (each catalog entry has its own lock, so two requests for the same
model still take turns, and two different models do not wait for each other).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image

from .catalog import Catalog, ModelUnavailable, UnknownModel
from .explain import CAM_METHODS, Analysis, analyze
from .registry import display_name as arch_display_name
from .texts import label_name, language

MAX_MODELS = 4  # a comparison of more is unreadable side by side and ties up every model at once


class CompareError(ValueError):
    """A comparison that cannot run (no or too many models); ``str(error)`` is a sentence for a person."""


@dataclass(frozen=True)
class ModelOutcome:
    """One model's part of a comparison: its analysis, or why it could not give one."""

    name: str  # catalog name (checkpoint file stem)
    short_name: str  # e.g. "SE-DenseNet-121", unique within the comparison
    display_name: str  # the picker's name
    arch: str
    analysis: Analysis | None
    error: str | None = None

    @property
    def predicted(self) -> str | None:
        return None if self.analysis is None else self.analysis.predicted


@dataclass(frozen=True)
class Comparison:
    """The outcomes of every compared model, in the order asked for."""

    outcomes: tuple[ModelOutcome, ...]

    @property
    def answered(self) -> list[ModelOutcome]:
        return [outcome for outcome in self.outcomes if outcome.analysis is not None]

    def analyses(self) -> list[tuple[ModelOutcome, Analysis]]:
        """(outcome, analysis) of every model that answered, in order."""
        return [(outcome, outcome.analysis) for outcome in self.outcomes if outcome.analysis is not None]

    def votes(self) -> Counter[str]:
        """Predicted class -> number of models predicting it."""
        return Counter(outcome.predicted for outcome in self.answered if outcome.predicted is not None)

    def majority(self) -> str | None:
        """The class most models predict, or None on a tie for first place (or when no model answered)."""
        ranked = self.votes().most_common()
        if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
            return None
        return ranked[0][0]

    def summary(self, lang: str = "en") -> str:
        """E.g. ``2 of 3 models say Monkeypox; SE-DenseNet-121 says Chickenpox.``"""
        return agreement_sentence(self, lang)

    def unfamiliar(self) -> list[ModelOutcome]:
        """The models that find the photo unlike their training photos (``Analysis.unfamiliar``)."""
        return [outcome for outcome, analysis in self.analyses() if analysis.unfamiliar]


_WORDS = {
    "en": {
        "all": "All {n} models say {label}.", "both": "Both models say {label}.",
        "most": "{k} of {n} models say {label}", "says": "{model} says {label}", "sep": "; ", "end": ".",
        "split": "The models disagree: ", "list": ", ", "none": "No model could analyse this photo.",
        "one": "{model} says {label}.", "failed": " ({failed} could not run.)",
        "strange_all": ("This photo does not look like the skin photos these models were trained on, so their "
                        "answers mean little."),
        "strange_one": ("This photo does not look like the skin photos {models} was trained on, so its answer means "
                        "little."),
        "strange_some": ("This photo does not look like the skin photos {models} were trained on, so their answers "
                         "mean little."),
        "and": " and ",
    },
    "zh": {
        "all": "全部 {n} 个模型都认为是{label}。", "both": "两个模型都认为是{label}。",
        "most": "{n} 个模型中有 {k} 个认为是{label}", "says": "{model} 认为是{label}", "sep": "；", "end": "。",
        "split": "各模型意见不一：", "list": "，", "none": "没有模型能分析这张照片。",
        "one": "{model} 认为是{label}。", "failed": "（{failed} 无法运行。）",
        "strange_all": "这张照片不像这些模型训练时见过的皮肤照片，所以它们的答案参考价值很小。",
        "strange_one": "这张照片不像{models}训练时见过的皮肤照片，所以它的答案参考价值很小。",
        "strange_some": "这张照片不像{models}训练时见过的皮肤照片，所以它们的答案参考价值很小。",
        "and": "和",
    },
}


def agreement_sentence(comparison: Comparison, lang: str = "en") -> str:
    """One sentence on how far the models agree, in English or Simplified Chinese."""
    lang = language(lang)
    words = _WORDS[lang]
    answered = comparison.answered
    failed = [outcome.short_name for outcome in comparison.outcomes if outcome.analysis is None]
    tail = words["failed"].format(failed=words["list"].join(failed)) if failed and answered else ""
    if not answered:
        return words["none"]

    def says(outcome: ModelOutcome) -> str:
        return words["says"].format(model=outcome.short_name, label=label_name(outcome.predicted or "", lang))

    if len(answered) == 1:
        only = answered[0]
        return words["one"].format(model=only.short_name, label=label_name(only.predicted or "", lang)) + tail
    majority = comparison.majority()
    n = len(answered)
    if majority is None:
        return words["split"] + words["list"].join(says(outcome) for outcome in answered) + words["end"] + tail
    count = comparison.votes()[majority]
    label = label_name(majority, lang)
    if count == n:
        return (words["both"] if n == 2 else words["all"]).format(n=n, label=label) + tail
    others = [says(outcome) for outcome in answered if outcome.predicted != majority]
    return (words["most"].format(k=count, n=n, label=label) + words["sep"] + words["list"].join(others)
            + words["end"] + tail)


def unfamiliar_sentence(comparison: Comparison, lang: str = "en") -> str:
    """The unfamiliar-photo warning for a comparison, naming the models that give it ("" when none does)."""
    words = _WORDS[language(lang)]
    strange = [outcome.short_name for outcome in comparison.unfamiliar()]
    if not strange:
        return ""
    if len(strange) == len(comparison.answered) > 1:
        return words["strange_all"]
    names = words["and"].join([words["list"].join(strange[:-1]), strange[-1]]) if len(strange) > 1 else strange[0]
    return words["strange_one" if len(strange) == 1 else "strange_some"].format(models=names)


def _short_names(catalog: Catalog, names: Sequence[str]) -> dict[str, str]:
    """Architecture names (``SE-ResNet-18``), with the checkpoint's name added where two compared models share
    one (``SE-ResNet-18 (se_resnet18_msld_v2)``)."""
    cards = {name: catalog.entries[name].card for name in names}
    arch = {name: arch_display_name(card.arch) if card else name for name, card in cards.items()}
    counts = Counter(arch.values())
    return {name: arch[name] if counts[arch[name]] == 1 else f"{arch[name]} ({name})" for name in names}


def resolve_names(catalog: Catalog, names: Sequence[str] | None) -> list[str]:
    """The catalog names to compare: ``names`` looked up (file stems or display names), in order, without
    repeats; empty or None means every available model (at most ``MAX_MODELS``).

    Raises:
        UnknownModel: a name is not in the catalog.
        CompareError: nothing to compare, or too many models.
    """
    if not names:
        chosen = catalog.available()[:MAX_MODELS]
        if not chosen:
            raise CompareError("No usable model is installed, so there is nothing to compare.")
        return chosen
    if isinstance(names, str):
        names = [names]
    if len(set(names)) > MAX_MODELS:  # before any lookup: a long list of unknown names gets this answer
        raise CompareError(f"Please pick at most {MAX_MODELS} models to compare (got {len(set(names))}).")
    chosen = list(dict.fromkeys(catalog.entry(name).name for name in names))
    return chosen


def compare(
    catalog: Catalog,
    image: Image.Image,
    names: Sequence[str] | None = None,
    *,
    method: str = "gradcam",
) -> Comparison:
    """Analyse one photo with several models at once.

    Args:
        catalog: where the models come from (loaded once, cached).
        image: an already checked RGB photo (``senet.image_io.load_image``).
        names: catalog names or display names; empty for every available model.
        method: CAM method for every model (a key of ``CAM_METHODS``), so the heatmaps are comparable.

    Returns:
        One outcome per model in the order asked for; a model that cannot run (unavailable checkpoint) has
        ``error`` set and the others still answer.

    Raises:
        UnknownModel / CompareError: see :func:`resolve_names`.
        ValueError: unknown CAM method.
    """
    chosen = resolve_names(catalog, names)
    short = _short_names(catalog, chosen)

    def run(name: str) -> ModelOutcome:
        entry = catalog.entry(name)
        arch = entry.card.arch if entry.card else ""
        try:
            model, card, entry = catalog.load(name)
            analysis = analyze(model, card, image, method=method)  # each model's last stage (analyze locks it)
        except (ModelUnavailable, UnknownModel) as error:
            return ModelOutcome(name, short[name], entry.display_name, arch, None, str(error))
        return ModelOutcome(name, short[name], entry.display_name, arch, analysis)

    if method not in CAM_METHODS:
        raise ValueError(f"unknown CAM method {method!r}; choose one of {list(CAM_METHODS)}")
    with ThreadPoolExecutor(max_workers=len(chosen), thread_name_prefix="compare") as pool:
        outcomes = tuple(pool.map(run, chosen))
    return Comparison(outcomes)


__all__ = ["MAX_MODELS", "CompareError", "Comparison", "ModelOutcome", "agreement_sentence", "compare",
           "resolve_names", "unfamiliar_sentence"]
