"""Comparing models on one photo (the agreement sentence, parallel runs) and the PDF report (rendered to PNG with
poppler's pdftoppm and checked, in English and Chinese)."""

from __future__ import annotations

import shutil
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from app_server import LABELS, random_model, write_checkpoint
from PIL import Image

import senet
from senet import compare as comparing
from senet.catalog import Catalog, UnknownModel
from senet.pdf_report import accuracy_text, build_report, font_files


def _analysis(top: str, p: float = 0.7) -> senet.Analysis:
    rest = (1 - p) / (len(LABELS) - 1)
    probabilities = {label: (p if label == top else rest) for label in LABELS}
    return senet.Analysis(probabilities, top, top, LABELS.index(top), "gradcam", "layer4",
                          np.zeros((8, 8), np.float32), {}, {}, np.zeros((8, 8, 3), np.float32), {}, "cpu")


def _comparison(*predictions: str | None) -> comparing.Comparison:
    names = ["SE-ResNet-18", "SE-DenseNet-121", "SE-ResNet-50"]
    return comparing.Comparison(tuple(
        comparing.ModelOutcome(f"m{i}", names[i], names[i], "x", None if top is None else _analysis(top),
                               None if top else "broken") for i, top in enumerate(predictions)))


def test_agreement_sentences_in_both_languages() -> None:
    assert _comparison("Monkeypox", "Chickenpox", "Monkeypox").summary() == \
        "2 of 3 models say Monkeypox; SE-DenseNet-121 says Chickenpox."
    assert _comparison("Monkeypox", "Chickenpox", "Monkeypox").summary("zh-CN") == \
        "3 个模型中有 2 个认为是猴痘；SE-DenseNet-121 认为是水痘。"
    assert _comparison("Measles", "Measles", "Measles").summary() == "All 3 models say Measles."
    assert _comparison("Measles", "Measles").summary() == "Both models say Measles."
    assert _comparison("Measles", "HFMD").summary() == \
        "The models disagree: SE-ResNet-18 says Measles, SE-DenseNet-121 says HFMD."
    assert _comparison("Measles", None).summary() == "SE-ResNet-18 says Measles. (SE-DenseNet-121 could not run.)"
    assert _comparison(None, None).summary() == "No model could analyse this photo."
    assert _comparison("Measles", "HFMD").majority() is None


def test_unfamiliar_warning_names_the_models_that_give_it() -> None:
    import dataclasses

    def flagged(comparison: comparing.Comparison, *which: int) -> comparing.Comparison:
        return comparing.Comparison(tuple(
            dataclasses.replace(o, analysis=dataclasses.replace(o.analysis, unfamiliar=True, familiarity=0.0))
            if i in which and o.analysis is not None else o for i, o in enumerate(comparison.outcomes)))

    three = _comparison("Measles", "Measles", "HFMD")
    assert comparing.unfamiliar_sentence(three) == ""  # none flags it (None: no statistics, counts as not flagged)
    assert comparing.unfamiliar_sentence(flagged(three, 1)).startswith(
        "This photo does not look like the skin photos SE-DenseNet-121 was trained on, so its answer")
    assert "SE-ResNet-18 and SE-ResNet-50 were trained on" in comparing.unfamiliar_sentence(flagged(three, 0, 2))
    assert "these models were trained on" in comparing.unfamiliar_sentence(flagged(three, 0, 1, 2))
    assert comparing.unfamiliar_sentence(flagged(three, 0, 1, 2), "zh") == \
        "这张照片不像这些模型训练时见过的皮肤照片，所以它们的答案参考价值很小。"
    alone = flagged(_comparison("Measles", None), 0)  # the only model that answered: named, not "these models"
    assert "SE-ResNet-18 was trained on" in comparing.unfamiliar_sentence(alone)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    directory = tmp_path_factory.mktemp("checkpoints")
    write_checkpoint(directory, "alpha", "se_resnet18", seed=1)
    write_checkpoint(directory, "beta", "se_densenet121", seed=2)
    return Catalog(directory, device="cpu")


def test_compare_runs_each_model_once_in_parallel(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 96, 3), dtype=np.uint8))
    threads: set[str] = set()
    real = comparing.analyze

    def spy(*args, **kwargs):
        threads.add(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(comparing, "analyze", spy)
    result = comparing.compare(catalog, photo, ["alpha", "beta", "alpha"], method="gradcam++")
    assert [o.name for o in result.outcomes] == ["alpha", "beta"]  # repeats dropped, order kept
    assert [o.short_name for o in result.outcomes] == ["SE-ResNet-18", "SE-DenseNet-121"]
    assert len(threads) == 2  # one worker thread per model
    for outcome in result.outcomes:
        assert outcome.error is None and outcome.analysis.method == "gradcam++"
        assert outcome.analysis.cam.shape == (64, 64) and outcome.predicted in LABELS
        want = senet.analyze(*catalog.load(outcome.name)[:2], photo, method="gradcam++")
        assert np.allclose(outcome.analysis.cam, want.cam, atol=1e-5)
    assert result.summary() and result.summary("zh")
    assert [o.name for o in comparing.compare(catalog, photo).outcomes] == catalog.available()
    with pytest.raises(UnknownModel):
        comparing.compare(catalog, photo, ["../../etc/passwd"])
    with pytest.raises(comparing.CompareError, match="at most"):
        comparing.resolve_names(catalog, list("abcdef"))


def test_accuracy_text_prefers_the_cross_validation() -> None:
    cv = {"cv": {"folds": 5, "accuracy": {"mean": 0.7687, "std": 0.0525}}}
    card = senet.ModelCard(arch="se_resnet18", labels=LABELS, metrics=cv)
    assert accuracy_text(card) == "76.9 % ± 5.2 % (mean of 5-fold cross-validation)"
    assert accuracy_text(card, "zh") == "76.9 % ± 5.2 %（5 折交叉验证的均值）"
    incomplete = {"cv": {"folds": 2, "incomplete": "stopped", "accuracy": {"mean": 0.68, "std": 0.03}}}
    assert "incomplete" in accuracy_text(card.replace(metrics=incomplete))
    assert accuracy_text(card.replace(metrics={"test": {"accuracy": 0.75}})) == "75.0 % on its test part"
    assert accuracy_text(card.replace(metrics={})) == "not recorded"


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout


@pytest.mark.skipif(not shutil.which("pdftoppm"), reason="poppler-utils (pdftoppm) is not installed")
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_report_renders_with_photo_heatmap_chart_and_words(tmp_path: Path, lang: str) -> None:
    model = random_model("se_resnet18", seed=3)
    card = senet.ModelCard(arch="se_resnet18", labels=LABELS, input_size=(64, 64), data={"name": "msld_v2"},
                           metrics={"cv": {"folds": 5, "accuracy": {"mean": 0.7687, "std": 0.0525}}})
    card = card.replace(class_profiles=senet.class_profiles(model, [(torch.rand(12, 3, 64, 64),
                                                                     torch.arange(12) % 6)], LABELS))
    photo = Image.new("RGB", (300, 200), (40, 160, 60))  # green: no colour of the heatmap is plain green
    analysis = senet.analyze(model, card, photo, target="Monkeypox")
    pdf = tmp_path / f"report_{lang}.pdf"
    pdf.write_bytes(build_report(photo, analysis, card, model_name="Test model", lang=lang,
                                 when=datetime(2026, 11, 30, 4, 0, tzinfo=UTC)))
    assert pdf.read_bytes().startswith(b"%PDF")
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 2
    first = np.asarray(Image.open(pages[0]).convert("RGB")).astype(int)
    assert first.shape[:2] == (468, 331)  # A4 at 40 dpi
    # The photo (plain green) and the heatmap (inferno colours) are on page 1.
    green = (first[..., 1] > 140) & (first[..., 0] < 60) & (first[..., 2] < 80)
    # inferno: the hot end is orange to yellow (much red, little blue), the cold end near-black purple
    hot = (first[..., 0] > 180) & (first[..., 2] < 100)
    assert green.sum() > 1500 and hot.sum() > 200
    second = np.asarray(Image.open(pages[1]).convert("L"))
    assert (second < 200).mean() > 0.05  # the SE chart's bars and lines
    text = _pdf_text(pdf)
    if lang == "en":
        for phrase in ("analysis report", "The model thinks this looks most like", "Monkeypox", "2026-11-30",
                       "Test model", "76.9 % ± 5.2 %", "Research demo, not a diagnosis", "Grad-CAM", "low", "high"):
            assert phrase in text, phrase
    else:
        for phrase in ("分析报告", "模型认为这最像", "猴痘", "2026-11-30", "76.9 % ± 5.2 %", "这是研究演示，不是诊断",
                       "热力图"):
            assert phrase in text.replace("\n", ""), phrase
    assert "Page 2 of 2" in text or "第 2 页，共 2 页" in text


def test_report_fonts_ship_with_python_packages() -> None:
    import site
    import sysconfig

    packages = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    for path in font_files().values():
        assert path.is_file() and path.stat().st_size > 100_000
        assert any(str(path).startswith(root) for root in packages), path  # never a system font


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_report_of_an_unfamiliar_photo_warns_first(tmp_path: Path, lang: str) -> None:
    import dataclasses

    from senet import texts

    model = random_model("se_resnet18", seed=3)
    card = senet.ModelCard(arch="se_resnet18", labels=LABELS, input_size=(64, 64), data={"name": "msld_v2"})
    photo = Image.new("RGB", (300, 200), (40, 160, 60))
    analysis = dataclasses.replace(senet.analyze(model, card, photo), familiarity=0.01, unfamiliar=True)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(build_report(photo, analysis, card, model_name="Test model", lang=lang))
    text = _pdf_text(pdf).replace("\n", "").replace(" ", "")
    warning = texts.unfamiliar_sentence(lang).replace(" ", "")
    assert warning in text and text.index(warning) < text.index(texts.prediction_sentence(
        analysis.probabilities, lang, card=card, unfamiliar=True).replace(" ", "")[:12])
    assert "Page2of2" in text or "第2页，共2页" in text
