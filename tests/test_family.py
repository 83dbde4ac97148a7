"""The family contract: every registered family answers what the rest of the library asks it, the same way.

Parametrised over the registry, so a new family is checked without editing this file.
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import senet
from senet import FamilyModel, OptionError, create_model, list_models, registry, se_blocks
from senet.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

FAMILIES = sorted({registry.model_family(name) for name in list_models()})


def _smallest(names: list[str]) -> str:
    """The shallowest of ``names`` (builder names carry the depth: se_resnet18, densenet121, ...)."""
    return min(names, key=lambda name: int(re.findall(r"\d+", name)[0]))


def _se_name(family: str) -> str:
    return _smallest([n for n in list_models(family) if n.startswith("se_")])


def test_every_registered_name_has_a_family_and_a_display_name() -> None:
    assert {"resnet", "densenet"} <= set(FAMILIES)
    assert sorted(n for f in FAMILIES for n in list_models(f)) == list_models()
    for name in list_models():
        cls = registry.model_class(name)
        assert issubclass(cls, FamilyModel) and cls.family == registry.model_family(name)
        shown = registry.display_name(name)
        assert shown.startswith(("SE-" if name.startswith("se_") else "") + cls.family_display + "-")
    assert registry.display_name("se_resnet18") == "SE-ResNet-18"
    assert registry.display_name("densenet161") == "DenseNet-161"
    assert registry.display_name("not_a_model") == "not_a_model"
    with pytest.raises(ValueError, match="unknown model"):
        registry.model_family("not_a_model")


def test_a_builder_must_say_which_family_it_builds() -> None:
    def family_less_model(*, num_classes: int = 1000) -> nn.Module:
        return nn.Linear(1, num_classes)

    before = list_models()
    with pytest.raises(TypeError, match="FamilyModel"):
        registry.register_model(family_less_model)
    assert list_models() == before


@pytest.mark.parametrize("family", FAMILIES)
def test_classifier_can_be_read_and_reset(family: str) -> None:
    model = create_model(_se_name(family), num_classes=3).eval()
    head = model.get_classifier()
    assert isinstance(head, nn.Linear) and head is getattr(model, model.classifier_name)
    assert head.out_features == 3
    model.reset_classifier(5)
    assert model.get_classifier().out_features == 5 and model.get_classifier().in_features == head.in_features
    assert f"{model.classifier_name}.weight" in model.state_dict()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 5)


@pytest.mark.parametrize("family", FAMILIES)
def test_stages_se_names_and_cam_layers_agree(family: str) -> None:
    name = _se_name(family)
    model = create_model(name, num_classes=3).eval()
    stages = model.stage_names()
    assert len(stages) == 4
    blocks = se_blocks(model)
    assert blocks, f"{name} has no SE blocks"
    assert len({b.name for b in blocks}) == len(blocks)
    for info in blocks:
        assert info.name == f"SE_{info.stage}_{info.index}" and 2 <= info.stage <= 5 and info.index >= 1
        assert info.path.startswith(stages[info.stage - 2] + ".")
        assert model.se_block_position(info.path) == (info.stage, info.index)
    assert [b.stage for b in blocks] == sorted(b.stage for b in blocks)
    assert model.se_block_position(model.classifier_name) is None
    assert model.se_block_position("") is None

    layers = model.cam_layers()
    assert layers and all(isinstance(text, str) and text for text in layers.values())
    assert senet.cam_layers(model) == layers
    modules = {id(m) for m in model.modules()}
    for key in layers:
        assert id(model.cam_layer(key)) in modules
    with pytest.raises(OptionError, match="This model has no CAM layer 'nope'; choose one of: "):
        model.cam_layer("nope")


@pytest.mark.parametrize("family", FAMILIES)
def test_plain_variants_have_no_se_blocks(family: str) -> None:
    plain = [n for n in list_models(family) if not n.startswith("se_")]
    assert plain, f"family {family} has no plain baseline"
    with torch.device("meta"):
        assert se_blocks(create_model(_smallest(plain))) == []


@pytest.mark.parametrize("family", FAMILIES)
def test_checkpoint_head_check_asks_the_family(family: str, tmp_path) -> None:
    name = _se_name(family)
    model = create_model(name, num_classes=3)
    path = save_checkpoint(model, senet.ModelCard(arch=name, labels=["a", "b", "c"], input_size=(32, 32)),
                           tmp_path / "m")
    load_checkpoint(path)
    card_file = path.with_suffix(".json")
    card_file.write_text(card_file.read_text().replace('"c"', '"c", "d"'))
    with pytest.raises(CheckpointError, match=f"head {model.classifier_name}.weight has 3 outputs"):
        load_checkpoint(path)


def test_non_family_models_are_refused_with_a_sentence() -> None:
    with pytest.raises(ValueError, match="not a model of a registered family"):
        se_blocks(nn.Linear(2, 2))
