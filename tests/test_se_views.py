"""Contract tests of the SE views' library: interventions, the SE paper's analysis, faithfulness, sentences."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
import torch
from model_helpers import random_model
from PIL import Image

import senet
from senet import se_analysis, se_sentences
from senet.faithfulness import faithfulness
from senet.hooks import hook_count
from senet.interventions import stage_blocks

LABELS = ("melanoma", "nevus", "keratosis")


@pytest.fixture(scope="module")
def resnet() -> torch.nn.Module:
    return random_model("se_resnet18", 0, len(LABELS))


@pytest.fixture(scope="module")
def densenet() -> torch.nn.Module:
    return random_model("se_densenet121", 1, len(LABELS))


def _card(arch: str, size: int = 64) -> senet.ModelCard:
    return senet.ModelCard(arch=arch, labels=LABELS, input_size=(size, size))


def _photo(seed: int = 0, size: int = 80) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size + 10, 3), dtype=np.uint8))


def _gate_replaced(model: torch.nn.Module, card: senet.ModelCard, image: Image.Image,
                   bypass: list[str], mute: dict[str, list[int]]) -> np.ndarray:
    """Independent reference: hooks on the sigmoid gates replace their (B, C) output, batch of one."""
    infos = {info.name: info for info in senet.se_blocks(model)}

    def replace(name: str, module: torch.nn.Module, inputs: object, output: torch.Tensor) -> torch.Tensor:
        gate = torch.ones_like(output) if name in bypass else output.clone()
        gate[:, mute.get(name, [])] = 0
        return gate

    handles = [infos[name].module.gate.register_forward_hook(partial(replace, name)) for name in {*bypass, *mute}]
    try:
        with torch.no_grad():
            logits = model(card.transforms()(image)[None])
    finally:
        for handle in handles:
            handle.remove()
    return torch.softmax(logits.double(), dim=1)[0].numpy()


@pytest.mark.parametrize("arch", ["se_resnet18", "se_densenet121"])
def test_intervene_agrees_with_gate_hooks(arch: str, resnet: torch.nn.Module, densenet: torch.nn.Module) -> None:
    model = resnet if arch == "se_resnet18" else densenet
    card = _card(arch)
    image = _photo(1)
    names = [info.name for info in senet.se_blocks(model)]
    cases = [
        ([names[-1]], {}),
        (stage_blocks(model, 5), {}),
        ([], {names[0]: [0, 3, 5], names[-2]: [1]}),
        ([names[2]], {names[2]: [0], names[-1]: [2, 4]}),  # bypass and mute in one block: muted channels stay 0
    ]
    for bypass, mute in cases:
        result = senet.intervene(model, card, image, bypass=bypass, mute=mute)
        expected = _gate_replaced(model, card, image, bypass, mute)
        got = np.array([result.probabilities[label] for label in LABELS])
        assert np.abs(got - expected).max() < 1e-3, (bypass, mute)
        assert abs(sum(result.probabilities.values()) - 1) < 1e-6


def test_intervene_baseline_is_analyze(resnet: torch.nn.Module) -> None:
    card = _card("se_resnet18")
    image = _photo(2)
    analysis = senet.analyze(resnet, card, image)
    result = senet.intervene(resnet, card, image, bypass=["SE_5_2"])
    for label in LABELS:
        assert result.baseline[label] == pytest.approx(analysis.probabilities[label], abs=1e-5)
    assert result.baseline_predicted == analysis.predicted
    # The intervention changes something: a random network's last SE block is not the identity.
    assert max(abs(v) for v in result.changes().values()) > 1e-6


def test_intervene_leaves_model_as_found(resnet: torch.nn.Module) -> None:
    resnet.train()
    resnet.layer1.requires_grad_(False)
    before = {k: v.clone() for k, v in resnet.state_dict().items()}
    try:
        senet.intervene(resnet, _card("se_resnet18"), _photo(3), bypass=["SE_2_1"], mute={"SE_5_2": [0]})
        assert resnet.training and all(m.training for m in resnet.modules())
        assert not any(p.requires_grad for p in resnet.layer1.parameters())
        assert all(p.grad is None for p in resnet.parameters())
        assert hook_count(resnet) == 0
        after = resnet.state_dict()  # BN running stats untouched even though the model was in train mode
        assert all(torch.equal(before[k], after[k]) for k in before)
        with pytest.raises(senet.InterventionError):
            senet.intervene(resnet, _card("se_resnet18"), _photo(3), mute={"SE_5_2": [9999]})
        assert hook_count(resnet) == 0
    finally:
        resnet.requires_grad_(True)
        resnet.eval()


@pytest.mark.parametrize("kwargs, words", [
    ({"bypass": ["SE_9_9"]}, "no SE block"),
    ({"mute": {"SE_2_1": [64]}}, "channels 0 to 63"),
    ({"mute": {"SE_2_1": [-1]}}, "channels 0 to 63"),
    ({"mute": {"SE_2_1": ["a"]}}, "whole numbers"),
    ({"mute": {"SE_2_1": []}}, "no channels"),
    ({}, "nothing to change"),
])
def test_intervene_refusals(resnet: torch.nn.Module, kwargs: dict, words: str) -> None:
    with pytest.raises(senet.InterventionError, match=words):
        senet.intervene(resnet, _card("se_resnet18"), _photo(), **kwargs)


def test_intervene_accepts_paths_and_a_single_name(resnet: torch.nn.Module) -> None:
    card, image = _card("se_resnet18"), _photo(4)
    by_name = senet.intervene(resnet, card, image, bypass="SE_5_2")
    by_path = senet.intervene(resnet, card, image, bypass=["layer4.1.se"])
    assert by_name.bypass == by_path.bypass == ("SE_5_2",)
    assert by_name.probabilities == pytest.approx(by_path.probabilities)


# --- the SE paper's analysis --------------------------------------------------------------------------------


def test_paper_blocks() -> None:
    resnet50 = [f"SE_{s}_{b}" for s, n in ((2, 3), (3, 4), (4, 6), (5, 3)) for b in range(1, n + 1)]
    assert se_analysis.paper_blocks(resnet50) == ["SE_2_3", "SE_3_4", "SE_4_6", "SE_5_1", "SE_5_2", "SE_5_3"]
    resnet18 = [f"SE_{s}_{b}" for s in range(2, 6) for b in (1, 2)]
    assert se_analysis.paper_blocks(resnet18) == ["SE_2_2", "SE_3_2", "SE_4_2", "SE_5_1", "SE_5_2"]
    assert se_analysis.paper_blocks(["SE_2_10", "SE_2_9", "SE_3_1"]) == ["SE_2_10", "SE_3_1"]  # numeric order


def test_channel_subset_is_fixed_and_sorted() -> None:
    first = se_analysis.channel_subset(512)
    assert first.shape == (50,) and np.all(np.diff(first) > 0) and first.max() < 512
    assert np.array_equal(first, se_analysis.channel_subset(512))
    assert not np.array_equal(first, se_analysis.channel_subset(512, seed=1))
    assert np.array_equal(se_analysis.channel_subset(32), np.arange(32))
    assert np.array_equal(se_analysis.channel_subset(512, None), np.arange(512))


def _profiles(spreads: dict[str, float], channels: int = 8) -> dict:
    """Synthetic profiles: per block, class means that differ by ``spread`` around 0.5, std 0.1."""
    rng = np.random.default_rng(0)
    classes = {label: {"count": 10 + i, "mean": [], "std": []} for i, label in enumerate(LABELS)}
    for spread in spreads.values():
        base = rng.uniform(0.3, 0.7, channels)
        for i, label in enumerate(LABELS):
            classes[label]["mean"].append(list(base + spread * (i - 1)))
            classes[label]["std"].append([0.1] * channels)
    return {"blocks": list(spreads), "channels": [channels] * len(spreads), "classes": classes}


def test_class_specificity_ranks_blocks() -> None:
    profiles = _profiles({"SE_2_1": 0.0, "SE_3_1": 0.05, "SE_4_1": 0.2})
    result = se_analysis.class_specificity(profiles)
    assert [r.block for r in result] == ["SE_2_1", "SE_3_1", "SE_4_1"]
    assert [r.stage for r in result] == [2, 3, 4]
    assert result[0].specificity == pytest.approx(0.0, abs=1e-12)
    # 3 classes at -s, 0, +s: the population std is s * sqrt(2/3)
    assert result[2].specificity == pytest.approx(0.2 * np.sqrt(2 / 3))
    assert result[1].specificity < result[2].specificity
    assert se_analysis.class_specificity({}) == []


def test_block_profiles_and_paper_view() -> None:
    profiles = _profiles({"SE_2_1": 0.1, "SE_5_1": 0.1}, channels=64)
    excitations = {"SE_2_1": np.linspace(0, 1, 64), "SE_5_1": np.linspace(1, 0, 64)}
    panels = se_analysis.paper_view(excitations, profiles)
    assert [p.block for p in panels] == ["SE_2_1", "SE_5_1"]
    panel = panels[0]
    assert panel.channels.shape == (50,) and panel.photo.shape == (50,)
    assert np.allclose(panel.photo, excitations["SE_2_1"][panel.channels])
    assert set(panel.means) == set(LABELS) and panel.counts["melanoma"] == 10
    weights = np.array([10, 11, 12])
    full = np.array([np.asarray(profiles["classes"][label]["mean"][0]) for label in LABELS])
    assert np.allclose(panel.overall, (weights[:, None] * full).sum(0)[panel.channels] / weights.sum())
    bare = se_analysis.paper_view(excitations, {}, channels=None)
    assert bare[0].means == {} and bare[0].overall is None and bare[0].channels.shape == (64,)


def test_nearest_class_and_distinctive_channels() -> None:
    profiles = _profiles({"SE_5_2": 0.1}, channels=16)
    target = np.asarray(profiles["classes"]["nevus"]["mean"][0])
    photo = target * 0.5 + 0.1  # same shape as the nevus average, another level: r = 1
    takeaway = se_analysis.nearest_class(photo, profiles, "SE_5_2")
    assert takeaway.label in LABELS and takeaway.r == pytest.approx(1.0)
    assert se_analysis.nearest_class(np.full(16, 0.5), profiles, "SE_5_2") is None  # constant photo: undefined
    assert se_analysis.nearest_class(photo, {}, "SE_5_2") is None
    reference = np.full(6, 0.5)
    weights = np.array([1.0, 1.0, 0.5, 0.1, 0.6, 1.0])
    assert se_analysis.distinctive_channels(weights, reference) == [0, 1, 5, 3, 4, 2]
    assert se_analysis.distinctive_channels(weights, None, 2) == [0, 1]


def test_shipped_cards_give_a_specificity_per_block() -> None:
    card = json.load(open("checkpoints/se_resnet18_msld_v2.json", encoding="utf-8"))
    result = se_analysis.class_specificity(card["class_profiles"])
    assert [r.block for r in result] == card["class_profiles"]["blocks"]
    assert all(0 <= r.specificity <= 0.5 and 0 <= r.saturated <= 1 for r in result)


# --- faithfulness and sentences -------------------------------------------------------------------------------


def test_faithfulness_runs_the_road_metric(resnet: torch.nn.Module) -> None:
    card, image = _card("se_resnet18"), _photo(5)
    analysis = senet.analyze(resnet, card, image)
    result = faithfulness(resnet, card, image, analysis.cam, analysis.target)
    assert result.before == pytest.approx(analysis.probabilities[analysis.target], abs=1e-5)
    assert 0 <= result.after_most <= 1 and 0 <= result.after_least <= 1
    assert result.score == pytest.approx((result.after_least - result.after_most) / 2)
    again = faithfulness(resnet, card, image, analysis.cam, analysis.target)
    assert (again.after_most, again.after_least) == (result.after_most, result.after_least)  # seeded noise
    # A map that highlights a different area gives a different score: the map matters.
    flipped = faithfulness(resnet, card, image, 1 - analysis.cam, analysis.target)
    assert flipped.after_most != result.after_most
    assert hook_count(resnet) == 0
    with pytest.raises(ValueError):
        faithfulness(resnet, card, image, analysis.cam[:10], analysis.target)


def test_sentences_in_both_languages() -> None:
    takeaway = se_analysis.Takeaway("SE_5_2", "Measles", 0.951, {"Measles": 0.951})
    assert se_sentences.takeaway_sentence(takeaway) == (
        "In SE_5_2 this photo's channel weights are closest to the average Measles photo (r = 0.95).")
    assert "麻疹" in se_sentences.takeaway_sentence(takeaway, "zh")
    result = senet.faithfulness.Faithfulness("Monkeypox", 0.2, 0.71, 0.23, 0.68, 10.0)
    assert se_sentences.faithfulness_sentence(result).startswith(
        "Hiding the 20 % most highlighted area lowers Monkeypox from 71 % to 23 %")
    assert "猴痘" in se_sentences.faithfulness_sentence(result, "zh")
    change = senet.Intervention({"a": 0.3, "b": 0.7}, {"a": 0.8, "b": 0.2}, ("SE_5_1",))
    assert se_sentences.intervention_sentence(change) == "The prediction changes from a (80 % → 30 %) to b (70 %)."
    assert "add_profiles" in se_sentences.no_profiles_sentence("converted", "zh")


def test_specificity_sentence() -> None:
    specs = [se_analysis.BlockSpecificity("SE_2_1", 2, 0.01, 0.5, 0.0),
             se_analysis.BlockSpecificity("SE_4_1", 4, 0.03, 0.9, 0.8),
             se_analysis.BlockSpecificity("SE_5_2", 5, 0.2, 0.6, 0.2)]
    assert se_sentences.specificity_sentence(specs) == (
        "In this model the most class-specific block is SE_5_2 (0.200) and the most saturated is SE_4_1 "
        "(80 % of its channels average above 0.9).")
    assert se_sentences.specificity_sentence([]) == ""


def test_intervention_baseline_equals_the_calibrated_analysis_of_a_shipped_checkpoint() -> None:
    """The shipped cards carry a temperature: "before" must be the probabilities the app shows."""
    from pathlib import Path

    from senet.image_io import load_image

    root = Path(__file__).resolve().parent.parent
    model, card = senet.load_checkpoint(root / "checkpoints" / "se_resnet18_msld_v2.safetensors")
    assert card.metrics["calibration"]["temperature"] != 1
    image = load_image(str(root / "examples" / "Measles_1.jpg"))
    shown = senet.analyze(model, card, image).probabilities
    baseline = senet.intervene(model, card, image, bypass=("SE_5_2",)).baseline
    assert max(abs(shown[label] - baseline[label]) for label in card.labels) < 1e-6
