"""Temperature scaling, ECE and the per-confidence bins of senet.calibration, and the sentences built on them."""

from __future__ import annotations

import math

import pytest
import torch

from senet import ModelCard, texts
from senet.calibration import (
    calibrated_probabilities,
    calibration_metrics,
    confidence_bin,
    confidence_bins,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    temperature,
)


def _overconfident(n: int, seed: int, true_temperature: float = 2.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose labels are drawn from softmax(logits / T): raw softmax is overconfident by T."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 4, generator=generator, dtype=torch.float64) * 4
    targets = torch.multinomial(torch.softmax(logits / true_temperature, dim=1), 1, generator=generator)[:, 0]
    return logits, targets


def test_fit_temperature_recovers_the_true_temperature() -> None:
    logits, targets = _overconfident(4000, seed=0)
    assert fit_temperature(logits, targets) == pytest.approx(2.5, rel=0.1)


def test_fit_temperature_minimises_nll() -> None:
    logits, targets = _overconfident(500, seed=1)
    best = fit_temperature(logits, targets)

    def nll(t: float) -> float:
        return float(torch.nn.functional.cross_entropy(logits / t, targets))

    assert nll(best) <= min(nll(best * 0.9), nll(best * 1.1)) + 1e-9


def test_calibration_lowers_ece_and_nll_on_held_out_data() -> None:
    valid, test = _overconfident(600, seed=2), _overconfident(600, seed=3)
    result = calibration_metrics(*valid, *test)
    assert result["calibrated"]["ece"] < result["raw"]["ece"]
    assert result["calibrated"]["nll"] < result["raw"]["nll"]
    assert len(result["reliability"]) == 10
    assert sum(row["n"] for row in result["reliability"]) == 600
    assert sum(row["n"] for row in result["confidence_bins"]) == 600


def test_ece_of_a_perfectly_calibrated_bin_is_zero_and_of_a_wrong_one_is_its_confidence() -> None:
    probabilities = torch.tensor([[0.75, 0.25]] * 4, dtype=torch.float64)
    assert expected_calibration_error(probabilities, torch.tensor([0, 0, 0, 1])) == pytest.approx(0.0)
    assert expected_calibration_error(probabilities, torch.tensor([1, 1, 1, 1])) == pytest.approx(0.75)
    table = reliability_bins(probabilities, torch.tensor([0, 0, 0, 1]))
    assert table[7] == {"lo": 0.7, "hi": 0.8, "n": 4, "confidence": 0.75, "accuracy": 0.75}


def test_sparse_confidence_bins_are_merged() -> None:
    confidence = torch.tensor([0.3] * 3 + [0.55] * 10 + [0.95] * 2, dtype=torch.float64)
    probabilities = torch.stack([confidence, 1 - confidence], dim=1)
    rows = confidence_bins(probabilities, torch.zeros(15, dtype=torch.long), min_photos=8)
    assert [row["n"] for row in rows] == [13, 2] or all(row["n"] >= 8 for row in rows)
    assert sum(row["n"] for row in rows) == 15
    assert rows[0]["lo"] == 0.0 and rows[-1]["hi"] == 1.0


def test_calibrated_probabilities_use_the_card_temperature() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    plain = ModelCard(arch="se_resnet18", labels=["a", "b", "c"])
    assert temperature(plain) is None
    assert torch.allclose(calibrated_probabilities(logits, plain), torch.softmax(logits.double(), 1))
    card = plain.replace(metrics={"calibration": {"temperature": 2.0}})
    assert torch.allclose(calibrated_probabilities(logits, card), torch.softmax(logits.double() / 2, 1))
    assert math.isclose(float(calibrated_probabilities(logits, card).sum()), 1.0)


def _calibrated_card() -> ModelCard:
    bins = [{"lo": 0.0, "hi": 0.6, "n": 20, "correct": 9}, {"lo": 0.6, "hi": 0.9, "n": 30, "correct": 24},
            {"lo": 0.9, "hi": 1.0, "n": 24, "correct": 23}]
    return ModelCard(arch="se_resnet18", labels=["Measles", "Chickenpox", "Other"],
                     metrics={"calibration": {"temperature": 1.5, "confidence_bins": bins}})


def test_confidence_sentence_says_how_often_it_was_right() -> None:
    card = _calibrated_card()
    assert confidence_bin(card, 0.75)["n"] == 30
    sentence = texts.confidence_sentence(card, 0.75, "en")
    assert "30 test photos" in sentence and "right 24 times" in sentence and "8 in 10" in sentence
    assert "30 张测试照片" in texts.confidence_sentence(card, 0.75, "zh")
    assert texts.confidence_sentence(ModelCard(arch="se_resnet18", labels=["a", "b"]), 0.75) == ""
    full = texts.prediction_sentence({"Measles": 0.75, "Chickenpox": 0.2, "Other": 0.05}, "en", card=card)
    assert full.startswith("The model thinks this looks most like Measles (75 %)") and "right 24 times" in full


def test_operating_point_sentence_reads_the_positive_class_from_the_card() -> None:
    card = ModelCard(arch="se_resnet18", labels=["Rash", "Pox", "Other"], metrics={
        "test": {"pox_vs_rest": {"positive": "Pox", "sensitivity": 0.5, "specificity": 0.5}},
        "cv": {"folds": 5, "pox_vs_rest.sensitivity": {"mean": 0.712}, "pox_vs_rest.specificity": {"mean": 0.87}}})
    sentence = texts.operating_point_sentence(card, "en")
    assert "finds about 7 of 10 Pox photos" in sentence and "wrongly flags about 1 of 8 others" in sentence
    assert "5 cross-validation folds" in sentence
    assert texts.operating_point_sentence(ModelCard(arch="se_resnet18", labels=["a", "b"])) == ""


def test_model_card_says_how_often_the_warning_caught_held_out_pictures() -> None:
    familiarity = {"valid_pass": 0.95, "method": "m", "flagged": {"valid": 0.05, "test": 0.07}}
    rows = [{"set": "a", "kind": "natural", "photos": 400, "flagged": 0.982},
            {"set": "b", "kind": "natural", "photos": 400, "flagged": 0.972},
            {"set": "c", "kind": "foreign", "photos": 68, "flagged": 0.853},
            {"set": "d", "kind": "foreign", "photos": 88, "flagged": 1.0},
            {"set": "hostile", "kind": "foreign", "photos": True, "flagged": 0.0},  # skipped: not a count
            {"set": "e", "kind": "other", "photos": 5, "flagged": 0.1}, "not a row"]
    card = ModelCard(arch="se_resnet18", labels=["a", "b"], metrics={"familiarity": {**familiarity, "held_out": rows}})
    english = texts.model_card_markdown(card, "en")
    assert "warned on 97–98 % of natural photos (800 photos" in english
    assert "on 85–100 % of other pictures (156:" in english and "No warning does not prove" in english
    assert "自然照片（800 张" in texts.model_card_markdown(card, "zh") and "85–100 % 被警告" in \
        texts.model_card_markdown(card, "zh")
    one_kind = ModelCard(arch="se_resnet18", labels=["a", "b"],
                         metrics={"familiarity": {**familiarity, "held_out": rows[:2]}})
    assert "warned on" not in texts.model_card_markdown(one_kind, "en")  # half a statement would mislead
    assert texts.held_out_rates([{"kind": "natural", "flagged": 0.998, "photos": 400}]) == {"natural": ("99 %", 400)}
    assert "Flagged: 5 % of Valid" in texts.model_card_markdown(one_kind, "en")


def test_an_unfamiliar_photo_gets_no_test_record_in_its_sentence() -> None:
    card = ModelCard(arch="se_resnet18", labels=["a", "b"], metrics={"calibration": {
        "temperature": 1.0, "confidence_bins": [{"lo": 0.5, "hi": 1.0, "n": 30, "correct": 24}]}})
    probabilities = {"a": 0.8, "b": 0.2}
    familiar = texts.prediction_sentence(probabilities, "en", card=card, unfamiliar=False)
    assert "right 24 times" in familiar and "does not apply" not in familiar
    strange = texts.prediction_sentence(probabilities, "en", card=card, unfamiliar=True)
    assert "right 24 times" not in strange and "does not apply here" in strange and "(80 %)" in strange
    assert "不适用" in texts.prediction_sentence(probabilities, "zh", card=card, unfamiliar=True)
    bare = ModelCard(arch="se_resnet18", labels=["a", "b"])  # no record to withhold: nothing to say about it
    assert "does not apply" not in texts.prediction_sentence(probabilities, "en", card=bare, unfamiliar=True)
