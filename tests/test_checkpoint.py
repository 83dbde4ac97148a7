"""Contract tests for checkpoints and model cards: round trips, safe loading, clear errors, preprocessing."""

from __future__ import annotations

import dataclasses
import datetime
import json
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import randomize_
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from senet import CheckpointError, ModelCard, create_model, load_checkpoint, read_card, save_checkpoint
from senet.card import IMAGENET_MEAN, IMAGENET_STD

LABELS = ["cat", "dog", "fox"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nn.Module, ModelCard]:
    """A small saved se_resnet18 checkpoint shared by the read-only tests; copy it before damaging it."""
    torch.manual_seed(0)
    model = randomize_(create_model("se_resnet18", num_classes=len(LABELS))).eval()
    card = ModelCard(arch="se_resnet18", labels=LABELS, input_size=(64, 64), title="test model")
    path = tmp_path_factory.mktemp("saved") / "model"
    save_checkpoint(model, card, path)
    return path, model, card


def _copy(saved: tuple[Path, nn.Module, ModelCard], tmp_path: Path) -> Path:
    source = saved[0]
    for suffix in (".safetensors", ".json"):
        shutil.copy(source.with_suffix(suffix), tmp_path / f"model{suffix}")
    return tmp_path / "model"


def _edit_card(path: Path, **changes: object) -> None:
    card_file = path.with_suffix(".json")
    data = json.loads(card_file.read_text())
    data.update(changes)
    card_file.write_text(json.dumps(data))


# --- round trips ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "model_args"), [("se_resnet18", {}), ("se_resnet18", {"se_reduction": 8}), ("se_densenet121", {})]
)
def test_round_trip_gives_identical_outputs(arch: str, model_args: dict[str, object], tmp_path: Path) -> None:
    model = randomize_(create_model(arch, num_classes=3, **model_args)).eval()
    card = ModelCard(arch=arch, labels=LABELS, model_args=model_args, input_size=(32, 32))
    weights = save_checkpoint(model, card, tmp_path / "model")
    assert weights == tmp_path / "model.safetensors"
    assert (tmp_path / "model.json").is_file()

    loaded, loaded_card = load_checkpoint(tmp_path / "model", device="cpu")
    assert not loaded.training
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    num_params = sum(p.numel() for p in model.parameters())
    assert loaded_card == card.replace(num_params=num_params)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    loaded_state = loaded.state_dict()
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded_state[key], tensor), key


def test_load_accepts_the_weights_path_too(saved: tuple[Path, nn.Module, ModelCard]) -> None:
    path, model, _ = saved
    loaded, card = load_checkpoint(path.with_suffix(".safetensors"))
    assert card.labels == tuple(LABELS)
    assert read_card(path) == card
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_half_checkpoint_is_smaller_and_close(saved: tuple[Path, nn.Module, ModelCard], tmp_path: Path) -> None:
    path, model, card = saved
    half = save_checkpoint(model, card, tmp_path / "half", half=True)
    assert half.stat().st_size < 0.55 * path.with_suffix(".safetensors").stat().st_size
    stored = load_file(str(half))
    assert stored["fc.weight"].dtype == torch.float16
    assert stored["bn1.num_batches_tracked"].dtype == torch.int64  # integers are kept as they are

    loaded, _ = load_checkpoint(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, got = model(x), loaded(x)
    assert not torch.equal(got, expected)  # really rounded
    torch.testing.assert_close(got, expected, rtol=1e-2, atol=1e-2 * expected.abs().max().item())


# --- loading refuses pickles and reports damage clearly ------------------------------------------------------


class _Payload:
    """Unpickling this creates ``marker``: proof that a loader ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def test_torch_save_file_is_refused_with_a_hint(saved: tuple[Path, nn.Module, ModelCard], tmp_path: Path) -> None:
    path = _copy(saved, tmp_path)
    torch.save(saved[1].state_dict(), path.with_suffix(".safetensors"))
    with pytest.raises(CheckpointError, match=r"pickle.*python -m senet\.convert"):
        load_checkpoint(path)


@pytest.mark.parametrize("writer", ["pickle0", "pickle2", "pickle5", "torch_zip", "torch_legacy"])
def test_loading_never_unpickles(
    writer: str, saved: tuple[Path, nn.Module, ModelCard], tmp_path: Path
) -> None:
    path = _copy(saved, tmp_path)
    marker = tmp_path / "code_ran"
    weights = path.with_suffix(".safetensors")
    if writer.startswith("pickle"):
        weights.write_bytes(pickle.dumps(_Payload(marker), protocol=int(writer[-1])))
    else:
        torch.save(_Payload(marker), weights, _use_new_zipfile_serialization=writer == "torch_zip")
    with pytest.raises(CheckpointError, match=r"pickle|corrupted"):
        load_checkpoint(path)
    assert not marker.exists()

    # The payload is live: an unpickling loader would have created the marker. (torch.load reads a file named
    # .safetensors with safetensors, hence the copy.)
    if writer.startswith("pickle"):
        pickle.loads(weights.read_bytes()).close()
    else:
        torch.load(shutil.copy(weights, tmp_path / "payload.pt"), weights_only=False).close()
    assert marker.exists()


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _random_bytes(data: bytes) -> bytes:
    return b"\x01" + random.Random(0).randbytes(4095)  # not a pickle or zip signature


def _bad_header(data: bytes) -> bytes:
    return data[:8] + b"{" * (len(data) - 8)


@pytest.mark.parametrize(
    "damage",
    [_truncated, _random_bytes, _bad_header, lambda data: b"", lambda data: data[:7], lambda data: data[:-1]],
    ids=["truncated", "random", "bad_header", "empty", "seven_bytes", "one_byte_short"],
)
def test_corrupted_weights_raise_a_clear_error(
    damage: object, saved: tuple[Path, nn.Module, ModelCard], tmp_path: Path
) -> None:
    path = _copy(saved, tmp_path)
    weights = path.with_suffix(".safetensors")
    weights.write_bytes(damage(weights.read_bytes()))  # type: ignore[operator]
    with pytest.raises(CheckpointError, match=r"corrupted or not a safetensors file.*re-download"):
        load_checkpoint(path)


def test_corrupted_card_raises_a_clear_error(saved: tuple[Path, nn.Module, ModelCard], tmp_path: Path) -> None:
    path = _copy(saved, tmp_path)
    path.with_suffix(".json").write_text('{"arch": "se_resnet18", "labels": ["a", "b"')
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)
    path.with_suffix(".json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="JSON object"):
        load_checkpoint(path)


def test_missing_files_are_named(saved: tuple[Path, nn.Module, ModelCard], tmp_path: Path) -> None:
    path = _copy(saved, tmp_path)
    path.with_suffix(".safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors not found"):
        load_checkpoint(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match=r"model card .*model\.json not found"):
        load_checkpoint(path)


def test_label_count_must_match_the_head(saved: tuple[Path, nn.Module, ModelCard], tmp_path: Path) -> None:
    path = _copy(saved, tmp_path)
    _edit_card(path, labels=["a", "b", "c", "d"])
    with pytest.raises(CheckpointError, match=r"4 labels but the head fc\.weight has 3 outputs"):
        load_checkpoint(path)


def test_unknown_arch_is_named(saved: tuple[Path, nn.Module, ModelCard], tmp_path: Path) -> None:
    path = _copy(saved, tmp_path)
    _edit_card(path, arch="se_resnet19")
    with pytest.raises(CheckpointError, match=r"unknown architecture 'se_resnet19'; known: .*se_resnet18"):
        load_checkpoint(path)


def test_wrong_arch_reports_missing_and_unexpected_keys(
    saved: tuple[Path, nn.Module, ModelCard], tmp_path: Path
) -> None:
    path = _copy(saved, tmp_path)
    _edit_card(path, arch="resnet18")
    with pytest.raises(CheckpointError, match=r"0 missing keys.*32 unexpected keys.*layer1\.0\.se\.fc1"):
        load_checkpoint(path)


@pytest.mark.parametrize("change", ["drop", "add"])
def test_missing_or_unexpected_keys_are_refused(
    change: str, saved: tuple[Path, nn.Module, ModelCard], tmp_path: Path
) -> None:
    path = _copy(saved, tmp_path)
    weights = path.with_suffix(".safetensors")
    state = load_file(str(weights))
    if change == "drop":
        del state["layer2.1.bn1.running_var"]
        pattern = r"1 missing keys \['layer2\.1\.bn1\.running_var'\], 0 unexpected"
    else:
        state["extra.weight"] = torch.zeros(2)
        pattern = r"0 missing keys \[\], 1 unexpected keys \['extra\.weight'\]"
    save_file(state, str(weights))
    with pytest.raises(CheckpointError, match=pattern):
        load_checkpoint(path)


def test_wrong_shapes_are_refused(saved: tuple[Path, nn.Module, ModelCard], tmp_path: Path) -> None:
    path = _copy(saved, tmp_path)
    _edit_card(path, model_args={"se_reduction": 8})
    with pytest.raises(CheckpointError, match=r"24 tensors have the wrong shape.*se\.fc1\.weight: file \(4, 64\)"):
        load_checkpoint(path)


def test_model_args_that_do_not_fit_are_refused(saved: tuple[Path, nn.Module, ModelCard], tmp_path: Path) -> None:
    path = _copy(saved, tmp_path)
    _edit_card(path, model_args={"small_inputs": True})
    with pytest.raises(CheckpointError, match=r"model_args \{'small_inputs': True\} do not fit se_resnet18"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [({"colour": "red"}, r"unknown model card fields \['colour'\]"), ({"schema_version": 99}, "newer"),
     ({"labels": ["only"]}, "labels must have at least 2 entries"), ({"labels": ["a", "a"]}, "unique")],
)
def test_invalid_cards_are_refused(
    changes: dict[str, object], pattern: str, saved: tuple[Path, nn.Module, ModelCard], tmp_path: Path
) -> None:
    path = _copy(saved, tmp_path)
    _edit_card(path, **changes)
    with pytest.raises(CheckpointError, match=pattern):
        read_card(path)


# --- the model card ------------------------------------------------------------------------------------------


def test_card_needs_only_arch_and_labels() -> None:
    card = ModelCard(arch="se_resnet18", labels=["a", "b"])
    assert card.labels == ("a", "b") and card.num_classes == 2
    assert card.input_size == (224, 224)
    assert card.mean == IMAGENET_MEAN and card.std == IMAGENET_STD
    assert card.model_args == {} and card.metrics == {} and card.training == {} and card.data == {}
    assert isinstance(card.license, str) and card.license
    assert card.created == datetime.date.today().isoformat()
    assert card.num_params == 0
    assert card.display_name == "se_resnet18 · 2 classes"
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.arch = "resnet18"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [({"labels": ["a"]}, "at least 2"), ({"labels": ["a", "b", "a"]}, "unique"),
     ({"input_size": (16, 224)}, ">= 32"), ({"resize_ratio": 0.0}, "resize_ratio"), ({"arch": ""}, "arch")],
)
def test_card_validates_its_fields(kwargs: dict[str, object], pattern: str) -> None:
    fields: dict[str, object] = {"arch": "se_resnet18", "labels": ["a", "b"], **kwargs}
    with pytest.raises(ValueError, match=pattern):
        ModelCard(**fields)  # type: ignore[arg-type]


def test_card_json_round_trip_is_exact() -> None:
    card = ModelCard(
        arch="se_densenet121", labels=["Chickenpox", "Measles", "Mpox ü"], model_args={"small_inputs": True},
        title="MSLD v2", description="six classes", input_size=(96, 128), resize_ratio=0.875,
        mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), metrics={"accuracy": 0.875, "per_class": {"Measles": [1, 2]}},
        training={"epochs": 30, "lr": 1e-3}, data={"name": "MSLD v2.0", "folds": [1, 2, 3]},
        backbone={"weights": "imagenet"}, class_profiles={"Measles": {"SE_2_1": {"mean": [0.5]}}},
        license="CC BY-NC-SA 4.0", citation="@article{x}", limitations="not a diagnosis", created="2025-01-02",
        num_params=123,
    )
    text = card.to_json()
    again = ModelCard.from_dict(json.loads(text))
    assert again == card
    assert again.to_json() == text
    assert set(json.loads(text)) == {f.name for f in dataclasses.fields(ModelCard)}


def test_card_from_dict_names_missing_required_fields() -> None:
    with pytest.raises(ValueError, match=r"lacks required fields \['labels'\]"):
        ModelCard.from_dict({"arch": "se_resnet18"})


MODES = ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I",
         "I;16", "I;16B", "I;16L", "I;16N", "F"]


@pytest.mark.parametrize("mode", MODES)
def test_card_transforms_give_a_float_chw_tensor_for_every_pil_mode(mode: str) -> None:
    transform = ModelCard(arch="se_resnet18", labels=["a", "b"], input_size=(64, 48), resize_ratio=0.875).transforms()
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 50, 3), dtype=np.uint8))
    image = rgb.convert(mode) if mode not in ("La", "PA") else rgb.convert(mode[0] + "A").convert(mode)
    tensor = transform(image)
    assert tensor.shape == (3, 64, 48)
    assert tensor.dtype == torch.float32
    assert torch.isfinite(tensor).all()


def test_transparency_is_composited_on_white() -> None:
    transform = ModelCard(arch="se_resnet18", labels=["a", "b"], input_size=(32, 32)).transforms()
    white = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    for image in (Image.new("RGBA", (40, 40), (0, 0, 0, 0)), Image.new("LA", (40, 40), (0, 0))):
        torch.testing.assert_close(transform(image), white[:, None, None].expand(3, 32, 32))


def test_16_bit_images_are_scaled_not_clipped() -> None:
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    transform = ModelCard(arch="se_resnet18", labels=["a", "b"], input_size=(64, 64), mean=(0, 0, 0),
                          std=(1, 1, 1)).transforms()
    tensor = transform(Image.fromarray(ramp))
    assert tensor.min() < 0.05 and tensor.max() > 0.95
    assert (tensor < 0.5).float().mean() > 0.4  # clipping at 255 would make almost every pixel white
