"""SE-ResNeXt / ResNeXt (seed 001): exact sizes, torchvision compatibility, and every feature the other families
have (analysis with every CAM method and layer, class profiles, training, the catalog). Tiny inputs (32 px)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from dataset_helpers import make_dataset
from model_helpers import random_model, randomize_
from PIL import Image
from torch import nn
from torchvision.models.resnet import Bottleneck as TorchvisionBottleneck
from torchvision.models.resnet import ResNet as TorchvisionResNet

import senet
from senet.catalog import Catalog
from senet.hooks import hook_count

NAMES = ["resnext101_32x4d", "resnext50_32x4d", "se_resnext101_32x4d", "se_resnext50_32x4d"]
LABELS = ("cat", "dog")


def _meta(name: str) -> nn.Module:
    with torch.device("meta"):
        return senet.create_model(name)


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _se_params(model: nn.Module) -> int:
    """What SE blocks of reduction 16 with biases add: 2 C C/16 weights, C/16 + C biases per block."""
    return sum(2 * b.channels * (b.channels // 16) + b.channels // 16 + b.channels for b in senet.se_blocks(model))


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return random_model("se_resnext50_32x4d", seed=0, num_classes=len(LABELS))


def _card(size: int = 32) -> senet.ModelCard:
    return senet.ModelCard(arch="se_resnext50_32x4d", labels=LABELS, input_size=(size, size))


def _image(seed: int) -> Image.Image:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (40, 36, 3), generator=generator, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


def test_registry_lists_the_family_with_readable_names() -> None:
    assert senet.list_models("resnext") == NAMES
    assert {senet.model_family(name) for name in NAMES} == {"resnext"}
    assert senet.display_name("se_resnext50_32x4d") == "SE-ResNeXt-50 (32x4d)"
    assert senet.display_name("resnext101_32x4d") == "ResNeXt-101 (32x4d)"


def test_parameter_counts_are_exact() -> None:
    assert _num_params(_meta("resnext50_32x4d")) == 25_028_904  # torchvision
    assert _num_params(_meta("se_resnext50_32x4d")) == 27_559_896  # SE paper / timm
    with torch.device("meta"):
        reference = TorchvisionResNet(TorchvisionBottleneck, [3, 4, 23, 3], groups=32, width_per_group=4)
    assert _num_params(_meta("resnext101_32x4d")) == _num_params(reference) == 44_177_704
    se101 = _meta("se_resnext101_32x4d")
    assert _num_params(se101) == 44_177_704 + _se_params(se101) == 48_955_416


def test_plain_resnext_loads_torchvision_state_dicts_and_computes_the_same() -> None:
    theirs = randomize_(torchvision.models.resnext50_32x4d(weights=None, num_classes=3)).eval()
    ours = senet.create_model("resnext50_32x4d", num_classes=3).eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


def test_sixteen_se_blocks_named_as_in_the_paper() -> None:
    blocks = senet.se_blocks(_meta("se_resnext50_32x4d"))
    expected = [f"SE_{stage}_{i}" for stage, count in zip((2, 3, 4, 5), (3, 4, 6, 3)) for i in range(1, count + 1)]
    assert [b.name for b in blocks] == expected and len(blocks) == 16
    assert [b.channels for b in blocks if b.index == 1] == [256, 512, 1024, 2048]
    assert blocks[-1].path == "layer4.2.se"
    assert senet.se_blocks(_meta("resnext50_32x4d")) == []


@pytest.mark.parametrize("method", [key for key, spec in senet.CAM_METHODS.items() if not spec.slow])
def test_every_fast_method_on_every_layer(model: nn.Module, method: str) -> None:
    card, image = _card(), _image(1)
    for layer in senet.cam_layers(model):
        result = senet.analyze(model, card, image, method=method, layer=layer)
        assert result.cam.shape == (32, 32) and 0 <= result.cam.min() and result.cam.max() <= 1
        assert list(result.excitations) == [b.name for b in senet.se_blocks(model)]
        assert abs(sum(result.probabilities.values()) - 1) < 1e-6
    assert hook_count(model) == 0


@pytest.mark.slow
@pytest.mark.parametrize("method", [key for key, spec in senet.CAM_METHODS.items() if spec.slow])
def test_slow_methods(model: nn.Module, method: str) -> None:
    result = senet.analyze(model, _card(), _image(2), method=method, layer="layer1")  # 256 channels: the fewest
    assert result.cam.shape == (32, 32) and 0 <= result.cam.min() and result.cam.max() <= 1
    assert hook_count(model) == 0


def test_channel_map_and_class_profiles(model: nn.Module) -> None:
    card = _card()
    heat = senet.channel_map(model, card, _image(3), "SE_5_3", 7)
    assert heat.shape == (32, 32)
    images = torch.stack([card.transforms()(_image(seed)) for seed in range(4)])
    profiles = senet.class_profiles(model, [(images, torch.tensor([0, 1, 0, 1]))], LABELS)
    assert set(profiles["classes"]) == set(LABELS)
    assert hook_count(model) == 0


def test_a_random_checkpoint_appears_in_the_catalog(model: nn.Module, tmp_path: Path) -> None:
    senet.save_checkpoint(model, _card(), tmp_path / "tiny_resnext")
    catalog = Catalog(tmp_path, device="cpu")
    assert catalog.choices() == [("SE-ResNeXt-50 (32x4d)", "tiny_resnext")]
    loaded, card, _ = catalog.load("tiny_resnext")
    assert senet.analyze(loaded, card, _image(4)).predicted in LABELS


@pytest.mark.slow
def test_training_a_tiny_run(tmp_path: Path) -> None:
    from senet.train import main as train_main

    data = make_dataset(tmp_path / "data", per_class=4)
    out = tmp_path / "run" / "model"
    args = ["--img-size", "32", "--batch-size", "6", "--epochs", "1", "--warmup-epochs", "0", "--workers", "1",
            "--device", "cpu", "--seed", "0"]
    assert train_main(["--data", str(data), "--arch", "se_resnext50_32x4d", "--fold", "1", "--out", str(out),
                       *args]) == 0
    model, card = senet.load_checkpoint(out.with_suffix(".safetensors"))
    assert card.arch == "se_resnext50_32x4d" and senet.model_family(card.arch) == "resnext"
    assert set(card.class_profiles["classes"]) == set(card.labels)  # class profiles were computed


def test_a_seed_style_state_dict_converts(model: nn.Module) -> None:
    from senet.convert import convert_state_dict

    # The seeds' SE block: nn.Sequential(Linear, ReLU, Linear, Sigmoid) named se.fc, so se.fc.0 / se.fc.2.
    seed = {key.replace(".se.fc1.", ".se.fc.0.").replace(".se.fc2.", ".se.fc.2."): value
            for key, value in model.state_dict().items()}
    assert any(".se.fc.0." in key for key in seed)
    converted = senet.create_model("se_resnext50_32x4d", num_classes=len(LABELS)).eval()
    converted.load_state_dict(convert_state_dict(seed, "se_resnext50_32x4d", num_classes=len(LABELS)), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(converted(x), model(x), rtol=0, atol=0)
