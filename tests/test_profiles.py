"""Class reference profiles: per class, per SE block mean/std excitation, on a tiny generated image folder."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import senet
from senet.hooks import hook_count

LABELS = ("cat", "dog", "fox")


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return senet.create_model("se_resnet18", num_classes=len(LABELS))


@pytest.fixture(scope="module")
def card() -> senet.ModelCard:
    return senet.ModelCard(arch="se_resnet18", labels=LABELS, input_size=(64, 64))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory):
    """cat: 3 images, dog: 2 images, fox: none (folder missing); varied sizes and modes."""
    root = tmp_path_factory.mktemp("profiles")
    rng = np.random.default_rng(0)
    for label, count in (("cat", 3), ("dog", 2)):
        (root / label).mkdir()
        for i in range(count):
            pixels = rng.integers(0, 256, size=(48 + 8 * i, 80, 3), dtype=np.uint8)
            image = Image.fromarray(pixels)
            if i == 1:
                image = image.convert("L")
            image.save(root / label / f"{i}.{'png' if i == 2 else 'jpg'}")
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


def _reference(model: torch.nn.Module, card: senet.ModelCard, folder) -> dict[str, list[np.ndarray]]:
    """Per-image excitations computed independently: own hooks, one image at a time."""
    blocks = senet.se_blocks(model)
    transform = card.transforms()
    model.eval()
    per_class: dict[str, list[np.ndarray]] = {}
    for label in ("cat", "dog"):
        rows = []
        for path in sorted((folder / label).glob("*")):
            if path.suffix == ".txt":
                continue
            seen: list[np.ndarray] = []
            def save(module, inputs, output, seen=seen) -> None:
                seen.append(output[0].numpy())

            handles = [b.module.gate.register_forward_hook(save) for b in blocks]
            try:
                with torch.no_grad(), Image.open(path) as image:
                    model(transform(image)[None])
            finally:
                for handle in handles:
                    handle.remove()
            rows.append(seen)
        per_class[label] = rows
    return per_class


def test_profiles_from_folder_match_independent_computation(model, card, folder) -> None:
    model.train()  # the state to be restored
    profiles = senet.class_profiles_from_folder(model, card, folder, batch_size=2)
    assert model.training and all(m.training for m in model.modules())
    assert hook_count(model) == 0

    blocks = senet.se_blocks(model)
    assert profiles["blocks"] == [b.name for b in blocks] and len(blocks) == 8
    assert profiles["channels"] == [b.channels for b in blocks]
    assert list(profiles["classes"]) == ["cat", "dog"]  # fox has no images: left out
    assert json.loads(json.dumps(profiles)) == profiles

    reference = _reference(model, card, folder)
    model.train()
    for label, count in (("cat", 3), ("dog", 2)):
        entry = profiles["classes"][label]
        assert entry["count"] == count
        assert len(entry["mean"]) == len(entry["std"]) == 8
        for b, block in enumerate(blocks):
            values = np.stack([image[b] for image in reference[label]])  # (count, C)
            assert len(entry["mean"][b]) == block.channels
            np.testing.assert_allclose(entry["mean"][b], values.mean(0), atol=2e-4)
            np.testing.assert_allclose(entry["std"][b], values.std(0), atol=2e-4)
            assert all(0 <= v <= 1 for v in entry["mean"][b])
            assert all(v == round(v, 4) for v in entry["mean"][b] + entry["std"][b])


def test_batch_size_does_not_change_profiles(model, card, folder) -> None:
    one = senet.class_profiles_from_folder(model, card, folder, batch_size=1)
    many = senet.class_profiles_from_folder(model, card, folder, batch_size=16)
    for label in one["classes"]:
        np.testing.assert_allclose(
            np.concatenate(one["classes"][label]["mean"]), np.concatenate(many["classes"][label]["mean"]), atol=2e-4
        )


def test_class_profiles_from_batches_under_no_grad_and_with_frozen_model(model) -> None:
    torch.manual_seed(1)
    images = torch.randn(5, 3, 64, 64)
    targets = torch.tensor([2, 0, 2, 2, 0])
    for param in model.parameters():
        param.requires_grad_(False)
    try:
        with torch.no_grad():
            profiles = senet.class_profiles(model, [(images[:2], targets[:2]), (images[2:], targets[2:])], LABELS)
        assert [p.requires_grad for p in model.parameters()] == [False] * len(list(model.parameters()))
    finally:
        for param in model.parameters():
            param.requires_grad_(True)
    assert {label: entry["count"] for label, entry in profiles["classes"].items()} == {"cat": 2, "fox": 3}
    assert all(p.grad is None for p in model.parameters())


def test_errors_are_clear_and_leave_no_hooks(model, card, tmp_path) -> None:
    with pytest.raises(ValueError, match="out of range"):
        senet.class_profiles(model, [(torch.randn(1, 3, 64, 64), torch.tensor([3]))], LABELS)
    assert hook_count(model) == 0
    (tmp_path / "wolf").mkdir()
    with pytest.raises(ValueError, match="wolf"):
        senet.class_profiles_from_folder(model, card, tmp_path)
    with pytest.raises(ValueError, match="no SE blocks"):
        senet.class_profiles(senet.create_model("resnet18", num_classes=3), [], LABELS)


@pytest.mark.slow  # a fresh interpreter imports torch
def test_profiles_module_does_not_import_grad_cam() -> None:
    # The training machine lacks grad-cam: importing the profiles path must not pull it in.
    import subprocess

    code = (
        "import sys, senet.profiles, senet.hooks\n"
        "assert not any(m.startswith('pytorch_grad_cam') for m in sys.modules), 'grad-cam imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_add_profiles_data_stores_the_folds_test_photos(tmp_path, capsys) -> None:
    import shutil

    from dataset_helpers import make_dataset

    from senet import add_profiles, se_analysis

    data = make_dataset(tmp_path / "data", per_class=8, folds=2)  # fold2: 2 Test photos per class
    labels = ("Healthy", "Measles", "Monkeypox")
    torch.manual_seed(0)
    model = senet.create_model("se_resnet18", num_classes=3)
    card = senet.ModelCard(arch="se_resnet18", labels=labels, input_size=(64, 64),
                           data={"split": "folds.csv fold2 (official)", "positive": "Monkeypox"})
    weights = senet.save_checkpoint(model, card, tmp_path / "ckpt" / "model")
    before = weights.read_bytes()

    assert add_profiles.main(["--checkpoint", str(weights), "--data", str(data)]) == 0
    profiles = senet.read_card(weights).class_profiles
    assert {label: e["count"] for label, e in profiles["classes"].items()} == dict.fromkeys(labels, 6)  # Train+Valid
    assert {label: e["count"] for label, e in profiles["test"]["classes"].items()} == dict.fromkeys(labels, 2)
    assert "fold2" in profiles["test"]["split"] and "Test" in profiles["test"]["split"]
    assert weights.read_bytes() == before  # only the card changed

    # The Test part equals profiles computed independently on a folder of exactly the fold's Test photos.
    folder = tmp_path / "test_only"
    for row in (data / "folds.csv").read_text().splitlines()[1:]:
        name, label, _, fold2 = row.split(",")
        if fold2 == "Test":
            (folder / label).mkdir(parents=True, exist_ok=True)
            shutil.copy(data / label / name, folder / label / name)
    reference = senet.class_profiles_from_folder(model, card, folder)
    for label in labels:
        np.testing.assert_allclose(profiles["test"]["classes"][label]["mean"][-1],
                                   reference["classes"][label]["mean"][-1], atol=2e-4)
    test = se_analysis.test_part_profiles(profiles)
    assert test["blocks"] == profiles["blocks"] and test["classes"] == profiles["test"]["classes"]
    assert se_analysis.test_part_profiles({k: v for k, v in profiles.items() if k != "test"}) is None

    # A second run keeps the Train+Valid profiles as they are.
    assert add_profiles.main(["--checkpoint", str(weights), "--data", str(data)]) == 0
    assert senet.read_card(weights).class_profiles["classes"] == profiles["classes"]

    # A dataset without folds.csv: one sentence, card untouched.
    (tmp_path / "plain").mkdir()
    assert add_profiles.main(["--checkpoint", str(weights), "--data", str(tmp_path / "plain")]) == 2
    assert "has no folds.csv" in capsys.readouterr().err
