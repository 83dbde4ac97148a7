"""Familiarity statistics: fitting, storage in the checkpoint, the one-pass analysis and the trust CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_helpers import make_dataset
from model_helpers import random_model
from PIL import Image
from safetensors.torch import load_file, save_file

import senet
from senet import CheckpointError, ModelCard, analyze, load_checkpoint, save_checkpoint
from senet.checkpoint import write_statistics
from senet.data import Sample
from senet.familiarity import (
    FamiliarityStatistics,
    FeatureRecorder,
    attach,
    fit_statistics,
    stage_sites,
    statistics_for,
)
from senet.hooks import hook_count
from senet.trust import augmented_copy, augmented_samples, card_fold, familiarity_sites, features_and_logits
from senet.trust import main as trust_main

LABELS = ["Monkeypox", "Healthy", "Measles"]


def _gaussian_sites(n: int, shift: float, seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    targets = torch.arange(n) % 3
    centres = torch.tensor([[3.0] * 6, [-3.0] * 6, [3.0, -3.0] * 3])
    offset = torch.tensor([shift, 0, 0, 0, 0, 0])  # away from every class centre
    sites = {name: torch.randn(n, 6, generator=generator) + centres[targets] + offset for name in ("SE_2_1", "SE_3_1")}
    return sites, targets


def test_fitted_statistics_pass_in_distribution_and_flag_shifted_features() -> None:
    train, train_y = _gaussian_sites(300, 0.0, seed=0)
    valid, _ = _gaussian_sites(200, 0.0, seed=1)
    statistics = fit_statistics(train, train_y, valid, 3, components=3, valid_pass=0.95)
    held_out, _ = _gaussian_sites(400, 0.0, seed=2)
    shifted, _ = _gaussian_sites(400, 8.0, seed=3)
    threshold = float(statistics.threshold)
    flagged_in = float((statistics.familiarity(statistics.score(held_out)) < threshold).double().mean())
    flagged_out = float((statistics.familiarity(statistics.score(shifted)) < threshold).double().mean())
    assert flagged_in < 0.12
    assert flagged_out > 0.95
    valid_familiarity = statistics.familiarity(statistics.score(valid))
    assert 0.03 <= float((valid_familiarity < threshold).double().mean()) <= 0.06
    assert float(valid_familiarity.min()) >= 0 and float(valid_familiarity.max()) <= 1


def test_sites_are_standardised_on_train_and_valid_only_sets_the_threshold() -> None:
    train, train_y = _gaussian_sites(120, 0.0, seed=0)
    near = fit_statistics(train, train_y, _gaussian_sites(60, 0.0, seed=1)[0], 3, components=3)
    far = fit_statistics(train, train_y, _gaussian_sites(60, 2.0, seed=1)[0], 3, components=3)
    for name, site in near.sites.items():  # the scale comes from out-of-fold Train distances, not from Valid
        assert torch.equal(site.location, far.sites[name].location) and torch.equal(site.scale, far.sites[name].scale)
        # out-of-fold Train photos look about as strange as new in-distribution photos: z near 0, not far below
        new = (site.log_distance(_gaussian_sites(300, 0.0, seed=5)[0][name]) - site.location) / site.scale
        assert abs(float(new.mean())) < 0.5
    assert float(far.valid_scores.median()) > float(near.valid_scores.median()) + 0.5


def test_statistics_round_trip_through_tensors_and_refuse_strays() -> None:
    train, train_y = _gaussian_sites(60, 0.0, seed=0)
    statistics = fit_statistics(train, train_y, _gaussian_sites(30, 0.0, seed=1)[0], 3, components=2)
    tensors = statistics.to_tensors()
    assert all(key.startswith("familiarity.") and value.dtype == torch.float32 for key, value in tensors.items())
    again = FamiliarityStatistics.from_tensors(tensors)
    probe = _gaussian_sites(5, 1.0, seed=4)[0]
    assert torch.allclose(again.score(probe), statistics.score(probe), atol=1e-4)
    with pytest.raises(ValueError, match="unknown familiarity tensors"):
        FamiliarityStatistics.from_tensors({**tensors, "familiarity.bogus": torch.zeros(1)})
    with pytest.raises(ValueError, match="lack"):
        FamiliarityStatistics.from_tensors({k: v for k, v in tensors.items() if not k.endswith("threshold")})


def _near_miss_sites(n: int, *, outlier: bool, seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Three broad classes; outliers sit one standard deviation off along every axis at once: a small Mahalanobis
    distance (no axis is unusual) but linearly separable from the classes along the diagonal."""
    generator = torch.Generator().manual_seed(seed)
    targets = torch.arange(n) % 3
    centres = torch.tensor([[0.0] * 6, [1.0, -1.0] * 3, [-1.0, 1.0] * 3])
    if outlier:
        points = centres[targets] + 3.0 + 0.2 * torch.randn(n, 6, generator=generator)
    else:
        points = centres[targets] + 3.0 * torch.randn(n, 6, generator=generator)
    return {"stage:a": points[:, :4], "stage:b": points[:, 4:]}, targets


def test_outlier_head_flags_what_the_mahalanobis_distance_misses() -> None:
    train, train_y = _near_miss_sites(600, outlier=False, seed=0)
    valid = _near_miss_sites(300, outlier=False, seed=1)[0]
    held_in, held_out = _near_miss_sites(400, outlier=False, seed=2)[0], _near_miss_sites(200, outlier=True, seed=3)[0]
    auxiliary = _near_miss_sites(200, outlier=True, seed=4)[0]

    def flagged(statistics: FamiliarityStatistics, features: dict[str, torch.Tensor]) -> float:
        return float((statistics.familiarity(statistics.score(features)) < statistics.threshold).double().mean())

    plain = fit_statistics(train, train_y, valid, 3, components=3)
    exposed = fit_statistics(train, train_y, valid, 3, components=3, outliers=auxiliary)
    assert plain.outlier is None and exposed.outlier is not None
    assert flagged(plain, held_out) < 0.3  # the distance alone misses them
    assert flagged(exposed, held_out) > 0.95
    assert flagged(exposed, held_in) < 0.15 and 0.08 <= flagged(exposed, valid) <= 0.11
    again = FamiliarityStatistics.from_tensors(exposed.to_tensors())  # the head survives storage...
    assert torch.allclose(again.score(held_out), exposed.score(held_out), atol=1e-4)
    assert flagged(again, held_out) > 0.95
    ignored = FamiliarityStatistics.from_tensors({k: v for k, v in exposed.to_tensors().items()
                                                  if not k.startswith("familiarity.outlier.")})
    assert flagged(ignored, held_out) < 0.3  # ...and is what flags them
    tensors = exposed.to_tensors()
    with pytest.raises(ValueError, match="lack"):
        FamiliarityStatistics.from_tensors({k: v for k, v in tensors.items() if not k.endswith("outlier.bias")})
    with pytest.raises(ValueError, match="do not fit"):
        FamiliarityStatistics.from_tensors({**tensors, "familiarity.outlier.weight.stage:a": torch.zeros(3)})
    with pytest.raises(ValueError, match="unknown sites"):
        FamiliarityStatistics.from_tensors({**tensors, "familiarity.outlier.weight.stage:z": torch.zeros(3)})


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random SE-ResNet-18 saved in float16 with statistics fitted on random features of its own."""
    model = random_model("se_resnet18", seed=0, num_classes=3)
    card = ModelCard(arch="se_resnet18", labels=LABELS, input_size=(64, 64))
    path = tmp_path_factory.mktemp("familiar") / "model"
    save_checkpoint(model, card, path, half=True)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(24)]
    batch = torch.stack([card.transforms()(image) for image in images])
    with FeatureRecorder(model) as recorder, torch.no_grad():
        model(batch)
    features = dict(recorder.values)
    targets = torch.arange(24) % 3
    statistics = fit_statistics({k: v[:16] for k, v in features.items()}, targets[:16],
                                {k: v[16:] for k, v in features.items()}, 3, components=4)
    write_statistics(path, statistics)
    return path


def test_augmented_copies_are_seeded_and_vary() -> None:
    photo = Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    first, again, other = augmented_copy(photo, 7), augmented_copy(photo, 7), augmented_copy(photo, 8)
    assert first.size == (256, 256) and np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))
    samples = [Sample(Path(f"{i}.jpg"), "a") for i in range(3)]
    copied, seeds = augmented_samples(samples, 2)
    assert [s.path.name for s in copied] == ["0.jpg", "0.jpg", "1.jpg", "1.jpg", "2.jpg", "2.jpg"]
    assert seeds == [0, 1, 1000, 1001, 2000, 2001]


def test_recorder_pools_every_stage_and_reads_every_se_squeeze() -> None:
    model = random_model("se_resnet18", seed=0, num_classes=3)
    batch = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    outputs = {}
    handles = [getattr(model, name).register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o))
               for name in ("maxpool", "layer1", "layer2", "layer3", "layer4")]
    try:
        with FeatureRecorder(model) as recorder, torch.no_grad():
            model(batch)
    finally:
        for handle in handles:
            handle.remove()
    assert set(recorder.values) == {info.name for info in senet.se_blocks(model)} | set(stage_sites(model))
    for name, output in outputs.items():
        assert torch.allclose(recorder.values[f"stage:{name}"], output.mean(dim=(2, 3)), atol=1e-6)
    assert hook_count(model) == 0
    densenet = random_model("se_densenet121", seed=0, num_classes=3)
    with FeatureRecorder(densenet, ["SE_5_16", "stage:features.denseblock4"]) as recorder, torch.no_grad():
        densenet(batch)
    assert recorder.values["stage:features.denseblock4"].shape == (2, 1024)
    assert recorder.values["SE_5_16"].shape == (2, 32)
    with pytest.raises(ValueError, match="no module"):
        FeatureRecorder(model, ["stage:layer9"])


def test_statistics_live_in_the_safetensors_file_and_weights_stay_float16(checkpoint: Path) -> None:
    stored = load_file(str(checkpoint.with_suffix(".safetensors")))
    extra = [key for key in stored if key.startswith("familiarity.")]
    assert extra and all(stored[key].dtype == torch.float32 for key in extra)
    weights = [value for key, value in stored.items() if not key.startswith("familiarity.")]
    assert all(value.dtype == torch.float16 for value in weights if value.is_floating_point())


def test_analyze_reports_familiarity_in_the_same_pass(checkpoint: Path) -> None:
    model, card = load_checkpoint(checkpoint)
    assert statistics_for(model) is not None
    photo = Image.fromarray(np.random.default_rng(1).integers(0, 256, (80, 90, 3), dtype=np.uint8))
    forwards = []
    handle = model.register_forward_hook(lambda *_: forwards.append(1))
    try:
        analysis = analyze(model, card, photo)
    finally:
        handle.remove()
    assert len(forwards) == 1
    assert 0.0 <= analysis.familiarity <= 1.0
    assert analysis.unfamiliar == (analysis.familiarity < float(statistics_for(model).threshold))
    assert hook_count(model) == 0
    blank = analyze(model, card, Image.new("RGB", (64, 64), "white"))
    plain_gray = analyze(model, card, Image.new("RGB", (64, 64), (128, 128, 128)))
    assert blank.familiarity is not None and plain_gray.familiarity is not None


def test_statistics_of_se_squeezes_only_still_work(checkpoint: Path, tmp_path: Path) -> None:
    """Checkpoints written before the stage sites existed hold SE sites only: they load and score as before."""
    for suffix in (".safetensors", ".json"):
        shutil.copy(checkpoint.with_suffix(suffix), tmp_path / f"old{suffix}")
    target = tmp_path / "old.safetensors"
    state = load_file(str(target))
    assert any(key.startswith("familiarity.site.stage:") for key in state)
    save_file({key: value for key, value in state.items() if not key.startswith("familiarity.site.stage:")},
              str(target))
    model, card = load_checkpoint(target)
    assert statistics_for(model).blocks == {info.name for info in senet.se_blocks(model)}
    analysis = analyze(model, card, Image.new("RGB", (64, 64), "white"))
    assert 0.0 <= analysis.familiarity <= 1.0 and hook_count(model) == 0


def test_models_without_statistics_say_nothing(checkpoint: Path, tmp_path: Path) -> None:
    model, card = load_checkpoint(checkpoint)
    attach(model, None)
    analysis = analyze(model, card, Image.new("RGB", (64, 64), "red"))
    assert analysis.familiarity is None and analysis.unfamiliar is None
    fresh = senet.create_model("se_resnet18", num_classes=3).eval()
    assert analyze(fresh, card, Image.new("RGB", (64, 64), "red")).familiarity is None


def test_load_accepts_exactly_the_familiarity_keys(checkpoint: Path, tmp_path: Path) -> None:
    for suffix in (".safetensors", ".json"):
        shutil.copy(checkpoint.with_suffix(suffix), tmp_path / f"m{suffix}")
    target = tmp_path / "m.safetensors"
    state = load_file(str(target))
    save_file({**state, "familiarity.site.SE_9_9.means": torch.zeros(1, 1)}, str(target))
    with pytest.raises(CheckpointError, match="familiarity"):
        load_checkpoint(target)
    save_file({**state, "extra.weight": torch.zeros(1)}, str(target))
    with pytest.raises(CheckpointError, match="unexpected keys"):
        load_checkpoint(target)
    save_file(state, str(target))
    write_statistics(target, None)
    model, _ = load_checkpoint(target)
    assert statistics_for(model) is None


def test_signature_sites_are_the_stem_and_every_stage() -> None:
    resnet = senet.create_model("se_resnet18", num_classes=3)
    assert familiarity_sites(resnet) == ["stage:maxpool", "stage:layer1", "stage:layer2", "stage:layer3",
                                         "stage:layer4"]
    densenet = senet.create_model("se_densenet121", num_classes=3)
    assert familiarity_sites(densenet) == ["stage:features.pool0"] + [f"stage:features.denseblock{k}"
                                                                      for k in range(1, 5)]
    assert familiarity_sites(senet.create_model("resnet18", num_classes=3)) == stage_sites(resnet)  # no SE needed
    assert familiarity_sites(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))) == []  # outside the families


@pytest.mark.slow
def test_trust_cli_adds_statistics_and_calibration_without_touching_weights(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", per_class=8, folds=2)
    model = random_model("se_resnet18", seed=0, num_classes=3)
    labels = sorted(LABELS)
    # a multi-class card that names its positive class (as the shipped ones do) must not be binarised
    stale = {"held_out": [{"set": "s", "kind": "natural", "photos": 4, "flagged": 1.0}]}  # of older statistics
    card = ModelCard(arch="se_resnet18", labels=labels, input_size=(32, 32),
                     metrics={"fold": "fold2", "familiarity": stale}, data={"positive": "Monkeypox"})
    path = save_checkpoint(model, card, tmp_path / "ck", half=True)
    before = {k: v.clone() for k, v in load_file(str(path)).items()}
    assert trust_main(["--checkpoint", str(path), "--data", str(data), "--components", "4"]) == 0
    after = load_file(str(path))
    assert all(torch.equal(after[key], value) and after[key].dtype == value.dtype for key, value in before.items())
    loaded, new_card = load_checkpoint(path)
    assert card_fold(new_card) == 2
    assert statistics_for(loaded) is not None
    calibration = new_card.metrics["calibration"]
    assert calibration["temperature"] > 0 and len(calibration["reliability"]) == 10
    assert new_card.metrics["familiarity"]["fitted_on"].startswith("fold2 Train")
    assert "held_out" not in new_card.metrics["familiarity"]  # rates measured on other statistics are dropped
    sites = set(new_card.metrics["familiarity"]["sites"])
    assert statistics_for(loaded).blocks == sites == set(familiarity_sites(loaded))
    assert (tmp_path / "ck.md").read_text().count("Calibration") >= 1
    features, logits = features_and_logits(loaded, new_card, [], familiarity_sites(loaded))
    assert features == {} and logits.shape == (0, 3)
    assert statistics_for(loaded).outlier is None  # no --outliers: Train-only statistics
    rng = np.random.default_rng(5)
    outliers = tmp_path / "outliers"
    (outliers / "nested").mkdir(parents=True)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(outliers / "nested" / f"{i}.png")
    assert trust_main(["--checkpoint", str(path), "--data", str(data), "--components", "4",
                       "--outliers", str(outliers)]) == 0
    after = load_file(str(path))
    assert all(torch.equal(after[key], value) and after[key].dtype == value.dtype for key, value in before.items())
    loaded, new_card = load_checkpoint(path)
    head = statistics_for(loaded).outlier
    assert head is not None and set(head.weights) == set(familiarity_sites(loaded))
    summary = new_card.metrics["familiarity"]
    assert summary["outliers"]["photos"] == 6 and summary["outliers"]["augmented_copies"] == 2
    assert summary["valid_pass"] == 0.95  # with outliers the threshold lets 95 % of Valid pass (90 % without)
    (outliers / "empty").mkdir()
    with pytest.raises(SystemExit, match="has no photos"):
        trust_main(["--checkpoint", str(path), "--data", str(data), "--outliers", str(outliers / "empty")])
