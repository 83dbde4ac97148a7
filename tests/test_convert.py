"""Contract tests for ``python -m senet.convert``: seed-code state dicts become identical models in our format."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from senet import create_model, load_checkpoint
from senet.convert import (
    ConversionError,
    build_model,
    convert_file,
    convert_state_dict,
    load_state_dict_file,
    main,
    rename_key,
)

REPO = Path(__file__).resolve().parents[1]
LABELS = ["cat", "dog", "fox"]
_SE_BIAS = re.compile(r"\.se\.fc[12]\.bias$")


def _seed_model(arch: str, *, se_bias: bool, **kwargs: object) -> nn.Module:
    """Our model with random statistics; seeds without SE bias correspond to zero biases in ours."""
    model = create_model(arch, num_classes=len(LABELS), **kwargs)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
            elif isinstance(module, nn.Linear):
                if se_bias or not name.endswith((".se.fc1", ".se.fc2")):
                    module.bias.uniform_(-0.2, 0.2)
                else:
                    module.bias.zero_()
    return model.eval()


# Our state dict renamed back to each seed's key names (see ../shared/seeds/).


def _seed_000(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Seed 000 SE-ResNet: SE linears (with bias) directly on the block, layerX.Y.fc1 / fc2."""
    return {re.sub(r"^(layer\d+\.\d+)\.se\.fc([12])\.", r"\1.fc\2.", key): value for key, value in state.items()}


def _seed_003(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Seed 003 SE-ResNet: se.fc = Sequential(Linear, ReLU, Linear, Sigmoid) without bias; an old PyTorch
    without num_batches_tracked."""
    return {
        key.replace(".se.fc1.", ".se.fc.0.").replace(".se.fc2.", ".se.fc.2."): value
        for key, value in state.items() if not _SE_BIAS.search(key) and not key.endswith("num_batches_tracked")
    }


def _seed_002(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Seed 002 SE-DenseNet: SE_Block.fc.0 / fc.2 without bias, final norm named norm_final."""
    return {
        key.replace(".se.fc1.", ".SE_Block.fc.0.").replace(".se.fc2.", ".SE_Block.fc.2.")
        .replace("features.norm5.", "features.norm_final."): value
        for key, value in state.items() if not _SE_BIAS.search(key)
    }


def _outputs(model: nn.Module, size: int) -> Tensor:
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        return model.eval()(torch.randn(2, 3, size, size, generator=generator))


@pytest.mark.parametrize(
    ("seed_key", "ours"),
    [("layer1.0.fc1.weight", "layer1.0.se.fc1.weight"), ("layer4.2.fc2.bias", "layer4.2.se.fc2.bias"),
     ("layer2.3.se.fc.0.weight", "layer2.3.se.fc1.weight"), ("layer2.3.se.fc.2.weight", "layer2.3.se.fc2.weight"),
     ("features.denseblock3.denselayer24.SE_Block.fc.0.weight", "features.denseblock3.denselayer24.se.fc1.weight"),
     ("features.denseblock1.denselayer1.SE_Block.fc.2.weight", "features.denseblock1.denselayer1.se.fc2.weight"),
     ("features.norm_final.running_var", "features.norm5.running_var"),
     # already ours, or names the seeds share with us: unchanged
     ("fc.weight", "fc.weight"), ("classifier.bias", "classifier.bias"),
     ("layer1.0.se.fc1.weight", "layer1.0.se.fc1.weight"),
     ("layer1.0.downsample.0.weight", "layer1.0.downsample.0.weight"),
     ("features.norm5.weight", "features.norm5.weight")],
)
def test_rename_key(seed_key: str, ours: str) -> None:
    assert rename_key(seed_key) == ours


@pytest.mark.parametrize(
    ("arch", "kwargs", "se_bias", "to_seed", "wrap", "size"),
    [
        ("se_resnet18", {}, True, _seed_000, lambda s: {"state_dict": s, "epoch": 7, "best_acc": 0.9}, 32),
        ("se_resnet50", {}, False, _seed_003, lambda s: s, 32),
        ("se_densenet121", {"small_inputs": True}, False, _seed_002, lambda s: {"model": s, "optimizer": {}}, 16),
        ("se_densenet121", {}, False, _seed_002, lambda s: {"model_state_dict": s}, 32),
        ("resnet18", {}, True, lambda s: s, lambda s: s, 32),
    ],
    ids=["seed000-se_resnet18", "seed003-se_resnet50", "seed002-small", "seed002-standard", "plain-resnet18"],
)
def test_seed_state_dict_converts_to_an_identical_model(
    arch: str, kwargs: dict[str, object], se_bias: bool, to_seed: Callable[[dict[str, Tensor]], dict[str, Tensor]],
    wrap: Callable[[dict[str, Tensor]], object], size: int, tmp_path: Path,
) -> None:
    original = _seed_model(arch, se_bias=se_bias, **kwargs)
    seed_state = to_seed(original.state_dict())
    assert seed_state.keys() != original.state_dict().keys() or arch == "resnet18"
    source = tmp_path / "seed.pth"
    torch.save(wrap(seed_state), source)

    converted = build_model(load_state_dict_file(source), arch, num_classes=len(LABELS), model_args=kwargs)
    assert torch.equal(_outputs(converted, size), _outputs(original, size))
    converted_state = converted.state_dict()
    for key, tensor in original.state_dict().items():
        assert torch.equal(converted_state[key], tensor), key


def test_missing_se_bias_and_bn_counters_are_filled_with_zeros() -> None:
    original = _seed_model("se_resnet50", se_bias=False)
    converted = convert_state_dict(_seed_003(original.state_dict()), "se_resnet50", num_classes=len(LABELS))
    assert list(converted) == list(original.state_dict())
    assert torch.equal(converted["layer3.5.se.fc1.bias"], torch.zeros(64))
    assert torch.equal(converted["layer3.5.se.fc2.bias"], torch.zeros(1024))
    assert converted["layer1.0.bn1.num_batches_tracked"].dtype == torch.int64
    assert converted["layer1.0.bn1.num_batches_tracked"].item() == 0


def test_data_parallel_prefix_is_stripped(tmp_path: Path) -> None:
    original = _seed_model("se_resnet18", se_bias=True)
    torch.save({"state_dict": {f"module.{k}": v for k, v in _seed_000(original.state_dict()).items()}},
               tmp_path / "dp.pth")
    state = load_state_dict_file(tmp_path / "dp.pth")
    assert not any(key.startswith("module.") for key in state)
    converted = build_model(state, "se_resnet18", num_classes=len(LABELS))
    assert torch.equal(_outputs(converted, 32), _outputs(original, 32))


def test_cli_writes_a_checkpoint_that_loads_to_the_same_model(tmp_path: Path) -> None:
    original = _seed_model("se_resnet18", se_bias=True)
    source = tmp_path / "seed_se_resnet18.pth"
    torch.save(_seed_000(original.state_dict()), source)
    out = tmp_path / "converted" / "pets"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(
        [sys.executable, "-m", "senet.convert", str(source), "--arch", "se_resnet18", "--labels", *LABELS,
         "--out", str(out), "--title", "Seed pets", "--license", "MIT", "--input-size", "64", "48"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "pets.safetensors" in result.stdout

    model, card = load_checkpoint(out)
    assert torch.equal(_outputs(model, 32), _outputs(original, 32))
    assert card.arch == "se_resnet18" and card.labels == tuple(LABELS)
    assert card.title == "Seed pets" and card.license == "MIT" and card.input_size == (64, 48)
    assert card.model_args == {}
    assert card.num_params == sum(p.numel() for p in original.parameters())
    assert card.training["converted_from"] == source.name
    assert card.training["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()


def test_convert_file_records_model_args(tmp_path: Path) -> None:
    original = _seed_model("se_densenet121", se_bias=False, small_inputs=True)
    torch.save(_seed_002(original.state_dict()), tmp_path / "dense.pth")
    convert_file(tmp_path / "dense.pth", tmp_path / "dense", arch="se_densenet121", labels=LABELS,
                 model_args={"small_inputs": True}, input_size=(32, 32))
    model, card = load_checkpoint(tmp_path / "dense")
    assert card.model_args == {"small_inputs": True} and card.input_size == (32, 32)
    assert torch.equal(_outputs(model, 16), _outputs(original, 16))


# --- errors say what is wrong and what to do ----------------------------------------------------------------


def test_wrong_arch_names_the_arch_that_fits() -> None:
    state = _seed_003(_seed_model("se_resnet50", se_bias=False).state_dict())
    with pytest.raises(ConversionError, match=r"does not fit se_resnet18.*missing keys.*--arch se_resnet50"):
        convert_state_dict(state, "se_resnet18", num_classes=len(LABELS))


def test_label_count_must_match_the_head() -> None:
    state = _seed_000(_seed_model("se_resnet18", se_bias=True).state_dict())
    with pytest.raises(ConversionError, match=r"--labels gives 2 labels but .*head fc\.(weight|bias) has 3 outputs"):
        convert_state_dict(state, "se_resnet18", num_classes=2)


def test_small_input_stem_is_hinted() -> None:
    state = _seed_002(_seed_model("se_densenet121", se_bias=False, small_inputs=True).state_dict())
    with pytest.raises(ConversionError, match=r"--arch se_densenet121 --small-inputs"):
        convert_state_dict(state, "se_densenet121", num_classes=len(LABELS))


def test_se_reduction_mismatch_is_hinted() -> None:
    state = _seed_000(_seed_model("se_resnet18", se_bias=True, se_reduction=8).state_dict())
    with pytest.raises(ConversionError, match=r"wrong shape.*--se-reduction"):
        convert_state_dict(state, "se_resnet18", num_classes=len(LABELS))
    converted = convert_state_dict(state, "se_resnet18", num_classes=len(LABELS), model_args={"se_reduction": 8})
    assert converted["layer1.0.se.fc1.weight"].shape == (8, 64)


def test_unknown_arch_and_bad_model_args_are_named() -> None:
    with pytest.raises(ConversionError, match="unknown architecture 'se_resnet19'"):
        convert_state_dict({}, "se_resnet19", num_classes=2)
    with pytest.raises(ConversionError, match=r"do not fit se_resnet18"):
        convert_state_dict({}, "se_resnet18", num_classes=2, model_args={"small_inputs": True})


class _Payload:
    """Unpickling this creates ``marker``: proof that a loader ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def test_whole_pickled_models_are_refused_without_running_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "code_ran"
    torch.save({"state_dict": _Payload(marker)}, tmp_path / "evil.pth")
    status = main([str(tmp_path / "evil.pth"), "--arch", "se_resnet18", "--labels", *LABELS])
    assert status == 1
    assert "a pickled io.open" in capsys.readouterr().err
    assert not marker.exists()
    assert not (tmp_path / "evil.safetensors").exists()

    torch.save(nn.Linear(2, 2), tmp_path / "whole.pth")
    with pytest.raises(ConversionError, match=r"a pickled torch\.nn\.modules\.linear\.Linear.*model\.state_dict\(\)"):
        load_state_dict_file(tmp_path / "whole.pth")


@pytest.mark.parametrize(
    ("content", "pattern"),
    [({"epoch": 3, "best_acc": 0.5}, r"does not hold a state dict.*\['best_acc', 'epoch'\]"),
     ([torch.zeros(1)], "does not hold a state dict"), ({}, "does not hold a state dict")],
)
def test_files_without_a_state_dict_are_refused(content: object, pattern: str, tmp_path: Path) -> None:
    torch.save(content, tmp_path / "x.pth")
    with pytest.raises(ConversionError, match=pattern):
        load_state_dict_file(tmp_path / "x.pth")


def test_cli_reports_errors_with_a_non_zero_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing.pth"), "--arch", "se_resnet18", "--labels", *LABELS]) == 1
    assert "missing.pth not found" in capsys.readouterr().err
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    assert main([str(tmp_path / "junk.pth"), "--arch", "se_resnet18", "--labels", *LABELS]) == 1
    assert "junk.pth is not a torch.save file, or it is damaged" in capsys.readouterr().err
    torch.save({"fc.weight": torch.zeros(3, 512)}, tmp_path / "cut.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "cut.pth").read_bytes()[:300])
    assert main([str(tmp_path / "cut.pth"), "--arch", "se_resnet18", "--labels", *LABELS]) == 1
    assert "cut.pth is not a readable torch.save file" in capsys.readouterr().err
    assert main([str(tmp_path / "junk.pth"), "--arch", "se_resnet18", "--labels", "only_one"]) == 1
    assert "at least 2 labels" in capsys.readouterr().err
