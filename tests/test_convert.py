"""Contract tests for ``python -m senet.convert``: state dicts saved from the seed posts' own classes are recognised
without ``--arch`` and become models with the same logits; anything else is refused with one sentence."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import seed_models as seeds
import torch
from torch import Tensor, nn

from senet import create_model, list_models, load_checkpoint
from senet.convert import LIMITATIONS, ConversionError, convert_file, main, read_labels_file, recognize_file
from senet.recognize import recognize, rename_key, repeat_counts

REPO = Path(__file__).resolve().parents[1]
LABELS = ["cat", "dog"]


def _logits(model: nn.Module, size: int) -> Tensor:
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        return model.eval()(torch.randn(2, 3, size, size, generator=generator))


def _save(obj: object, path: Path) -> Path:
    torch.save(obj, path)
    return path


@pytest.mark.parametrize(
    ("seed_key", "ours"),
    [("layer1.0.fc1.weight", "layer1.0.se.fc1.weight"), ("layer4.2.fc2.bias", "layer4.2.se.fc2.bias"),
     ("layer2.3.se.fc.0.weight", "layer2.3.se.fc1.weight"), ("layer2.3.se.fc.2.weight", "layer2.3.se.fc2.weight"),
     ("features.denseblock3.denselayer24.SE_Block.fc.0.weight", "features.denseblock3.denselayer24.se.fc1.weight"),
     ("features.norm_final.running_var", "features.norm5.running_var"),
     ("stage3.5.conv2.weight", "layer3.5.conv2.weight"),
     ("features.denseblock1.denselayer2.norm.1.weight", "features.denseblock1.denselayer2.norm1.weight"),
     ("fc.weight", "fc.weight"), ("layer1.0.downsample.0.weight", "layer1.0.downsample.0.weight")],
)
def test_seed_key_names_map_to_ours(seed_key: str, ours: str) -> None:
    assert rename_key(seed_key) == ours


# --- the seeds' own classes convert without --arch, to the same logits ---------------------------------------

SEED_CASES: list[tuple[str, Callable[[], nn.Module], int, str, dict[str, object]]] = [
    ("seed000-se_resnet18", lambda: seeds.seed000_se_resnet(18), 224, "se_resnet18", {}),
    ("seed000-se_resnet50", lambda: seeds.seed000_se_resnet(50), 224, "se_resnet50", {}),
    ("seed002-standard-stem", lambda: seeds.Seed002DenseNet(32, (6, 12, 24, 16), num_init_features=64,
                                                            small_inputs=False, num_classes=3), 64,
     "se_densenet121", {}),
    ("seed002-small-inputs", lambda: seeds.Seed002DenseNet(32, (6, 12, 24, 16), num_init_features=64,
                                                           num_classes=3), 32, "se_densenet121",
     {"small_inputs": True}),
    ("seed002-post-defaults", lambda: seeds.Seed002DenseNet(32, (6, 12, 24, 16), num_classes=3), 32,
     "se_densenet121", {"small_inputs": True, "num_init_features": 24}),
    ("seed003-se_resnet50", lambda: seeds.Seed003SEResNet([3, 4, 6, 3], num_classes=2), 64, "se_resnet50", {}),
    ("seed004-resnet50", lambda: seeds.Seed004ResNet([3, 4, 6, 3], num_classes=2), 224, "resnet50",
     {"stride_in_1x1": True, "relu_before_add": True}),
]


@pytest.mark.parametrize(("name", "make", "size", "arch", "model_args"), SEED_CASES, ids=[c[0] for c in SEED_CASES])
def test_seed_classes_convert_without_arch_to_the_same_logits(
    name: str, make: Callable[[], nn.Module], size: int, arch: str, model_args: dict[str, object], tmp_path: Path
) -> None:
    original = seeds.randomize(make())
    wrapped = {"state_dict": original.state_dict(), "epoch": 7, "best_acc": 0.9}
    source = _save(wrapped, tmp_path / f"{name}.pth")
    labels = [f"class {i}" for i in range(original.state_dict()[_head(original)].shape[0])]

    target, recognition = convert_file(source, tmp_path / "out" / name, labels=labels)
    assert (recognition.arch, dict(recognition.model_args)) == (arch, model_args)
    model, card = load_checkpoint(target)
    assert card.arch == arch and dict(card.model_args) == model_args and card.labels == tuple(labels)
    torch.testing.assert_close(_logits(model, size), _logits(original, size), rtol=0, atol=1e-5)


def _head(model: nn.Module) -> str:
    return "classifier.weight" if hasattr(model, "classifier") else "fc.weight"


def test_what_was_found_is_said_in_words() -> None:
    seed000 = seeds.seed000_se_resnet(50).state_dict()
    assert recognize(seed000).describe() == "SE-ResNet-50, SE reduction 16, 2 classes"
    seed003 = seeds.Seed003SEResNet([3, 4, 6, 3], num_classes=5).state_dict()
    assert recognize(seed003).describe() == "SE-ResNet-50, SE reduction 16, SE layers without biases, 5 classes"
    small = seeds.Seed002DenseNet(32, (6, 12, 24, 16), num_init_features=64, num_classes=3).state_dict()
    assert recognize(small).describe() == ("SE-DenseNet-121, small inputs, SE reduction 16, SE layers without "
                                           "biases, 3 classes")


@pytest.mark.slow
@pytest.mark.parametrize("depth", [34, 101, 152])
def test_every_seed000_depth_is_recognised(depth: int) -> None:
    recognition = recognize(seeds.seed000_se_resnet(depth, num_classes=4).state_dict())
    assert (recognition.arch, recognition.num_classes, recognition.se_reduction) == (f"se_resnet{depth}", 4, 16)


@pytest.mark.parametrize("reduction", [4, 8, 32])
def test_se_reduction_is_read_from_the_shapes(reduction: int) -> None:
    model = seeds.randomize(create_model("se_resnet18", num_classes=3, se_reduction=reduction))
    recognition = recognize(model.state_dict())
    assert recognition.se_reduction == reduction and recognition.model_args == {"se_reduction": reduction}
    torch.testing.assert_close(_logits(recognition.build(), 32), _logits(model, 32), rtol=0, atol=1e-5)


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod.", "_orig_mod.module."])
def test_data_parallel_and_compile_prefixes_are_removed(prefix: str, tmp_path: Path) -> None:
    original = seeds.randomize(seeds.Seed003SEResNet([3, 4, 6, 3], num_classes=2))
    source = _save({"model": {prefix + k: v for k, v in original.state_dict().items()}}, tmp_path / "p.pth")
    recognition = recognize_file(source)
    torch.testing.assert_close(_logits(recognition.build(), 64), _logits(original, 64), rtol=0, atol=1e-5)


def test_safetensors_state_dicts_and_lightning_prefixes_convert(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    original = seeds.randomize(create_model("resnet18", num_classes=2))
    save_file({f"model.{k}": v.contiguous() for k, v in original.state_dict().items()}, str(tmp_path / "w.safetensors"))
    recognition = recognize_file(tmp_path / "w.safetensors")
    assert recognition.arch == "resnet18"
    torch.testing.assert_close(_logits(recognition.build(), 32), _logits(original, 32), rtol=0, atol=1e-5)


def test_resnext_from_seed001_converts_when_registered(tmp_path: Path) -> None:
    if "resnext50_32x4d" not in list_models():
        pytest.skip("resnext50_32x4d is not registered in this tree")
    original = seeds.randomize(seeds.Seed001ResNeXt([3, 4, 6, 3], num_classes=2))
    recognition = recognize_file(_save(original.state_dict(), tmp_path / "x.pth"))
    assert recognition.arch == "resnext50_32x4d"
    torch.testing.assert_close(_logits(recognition.build(), 64), _logits(original, 64), rtol=0, atol=1e-5)


def test_se_resnext_is_recognised_when_registered() -> None:
    if "se_resnext50_32x4d" not in list_models():
        pytest.skip("se_resnext50_32x4d is not registered in this tree")
    state = {k.replace(".se.fc1.", ".se.fc.0.").replace(".se.fc2.", ".se.fc.2."): v  # seed 001's SELayer naming
             for k, v in create_model("se_resnext50_32x4d", num_classes=3).state_dict().items()}
    assert recognize(state).describe() == "SE-ResNeXt-50 (32x4d), SE reduction 16, 3 classes"


# --- refusals name the closest architecture and what differs ---------------------------------------------------


def test_a_backbone_without_head_is_named(tmp_path: Path) -> None:
    state = {k: v for k, v in create_model("resnet50").state_dict().items() if not k.startswith("fc.")}
    with pytest.raises(ConversionError, match=r"^b\.pth holds a ResNet-50 backbone without its classification head"):
        recognize_file(_save(state, tmp_path / "b.pth"))


def test_an_unknown_depth_names_the_closest_and_the_difference() -> None:
    state = {k: v for k, v in create_model("se_resnet50").state_dict().items() if not k.startswith("layer3.5.")}
    with pytest.raises(Exception, match=r"fits no architecture known here; the closest is SE-ResNet-50 "
                                        r"\(se_resnet50\), but layer3 has 5 blocks in the file but 6 in se_resnet50"):
        recognize(state, source="x.pth")


def test_an_unknown_densenet_layout_names_the_closest_and_the_shapes() -> None:
    state = seeds.Seed002DenseNet(12, (16, 16, 16), num_init_features=24, num_classes=10).state_dict()
    with pytest.raises(Exception, match=r"the closest is SE-DenseNet-\d+ .*blocks in the file"):
        recognize(state, source="x.pth")


def test_repeat_counts_are_read_from_keys() -> None:
    counts = repeat_counts(create_model("se_resnet34").state_dict())
    assert [counts[f"layer{i}"] for i in range(1, 5)] == [3, 4, 6, 3]
    assert repeat_counts(create_model("densenet121").state_dict())["features.denseblock3"] == 24


def test_wrong_arch_and_wrong_label_count_are_explained(tmp_path: Path) -> None:
    source = _save(seeds.seed000_se_resnet(18).state_dict(), tmp_path / "s.pth")
    with pytest.raises(ConversionError, match=r"--arch se_resnet50 was given, but s\.pth holds SE-ResNet-18"):
        convert_file(source, tmp_path / "o", labels=LABELS, arch="se_resnet50")
    with pytest.raises(ConversionError, match=r"3 labels were given but the model has 2 outputs"):
        convert_file(source, tmp_path / "o", labels=["a", "b", "c"])
    with pytest.raises(ConversionError, match=r"the label 'a' is given twice"):
        convert_file(source, tmp_path / "o", labels=["a", "a"])


def test_convert_state_dict_gives_exactly_the_named_models_keys() -> None:
    from senet.convert import convert_state_dict

    original = seeds.randomize(seeds.Seed003SEResNet([3, 4, 6, 3], num_classes=2))
    converted = convert_state_dict(original.state_dict(), "se_resnet50", num_classes=2)
    model = create_model("se_resnet50", num_classes=2).eval()
    model.load_state_dict(converted, strict=True)
    torch.testing.assert_close(_logits(model, 64), _logits(original, 64), rtol=0, atol=1e-5)
    with pytest.raises(ConversionError, match=r"holds SE-ResNet-50, .* not se_resnet101 \{\} with 2 classes"):
        convert_state_dict(original.state_dict(), "se_resnet101", num_classes=2)


def test_nan_weights_are_refused(tmp_path: Path) -> None:
    state = create_model("resnet18", num_classes=2).state_dict()
    state["layer2.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    with pytest.raises(ConversionError, match="NaN or infinite values"):
        recognize_file(_save(state, tmp_path / "n.pth"))


# --- the command line ------------------------------------------------------------------------------------------


def test_cli_converts_into_checkpoints_with_an_honest_card(tmp_path: Path) -> None:
    original = seeds.randomize(seeds.seed000_se_resnet(18))
    source = _save({"state_dict": original.state_dict(), "epoch": 3}, tmp_path / "pets.pth")
    env = {**os.environ, "PYTHONPATH": str(REPO), "SENET_CHECKPOINTS": ""}
    (tmp_path / "labels.txt").write_text("# one per line\ncat\n\ndog\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "senet.convert", str(source), "--labels-file", "labels.txt", "--title", "Seed pets",
         "--description", "cats and dogs", "--license", "MIT", "--img-size", "64", "48", "--mean", "0.5", "0.5",
         "0.5", "--std", "0.25", "0.25", "0.25"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr
    assert "found SE-ResNet-18, SE reduction 16, 2 classes" in result.stdout
    target = tmp_path / "checkpoints" / "pets.safetensors"
    assert f"wrote {Path('checkpoints') / 'pets.safetensors'}" in result.stdout and target.is_file()

    model, card = load_checkpoint(target)
    torch.testing.assert_close(_logits(model, 224)[:1], _logits(original, 224)[:1], rtol=0, atol=1e-5)
    assert card.labels == ("cat", "dog") and card.title == "Seed pets" and card.description == "cats and dogs"
    assert card.input_size == (64, 48) and card.mean == (0.5,) * 3 and card.std == (0.25,) * 3
    assert card.license == "MIT" and card.limitations == LIMITATIONS and not card.metrics and not card.data
    assert card.training["converted_from"] == "pets.pth"
    assert card.training["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert card.training["recognised"] == "SE-ResNet-18, SE reduction 16, 2 classes"
    assert "training data and metrics unknown" in card.limitations


def test_cli_without_labels_says_what_the_file_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _save(seeds.Seed003SEResNet([3, 4, 6, 3], num_classes=3).state_dict(), tmp_path / "m.pth")
    assert main([str(source)]) == 0
    out = capsys.readouterr().out
    assert "m.pth holds SE-ResNet-50, SE reduction 16, SE layers without biases, 3 classes (se_resnet50)" in out
    assert "give its 3 class names" in out
    assert not list(tmp_path.glob("**/*.safetensors"))


def test_cli_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _save(create_model("resnet18", num_classes=2).state_dict(), tmp_path / "r.pth")
    out = tmp_path / "o" / "r"
    assert main([str(source), "--labels", *LABELS, "--out", str(out)]) == 0
    assert main([str(source), "--labels", *LABELS, "--out", str(out)]) == 1
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main([str(source), "--labels", "x", "y", "--out", str(out), "--force"]) == 0
    assert load_checkpoint(out)[1].labels == ("x", "y")


def test_labels_file_takes_lines_or_a_json_list(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("\ufeffHealthy\r\nMonkeypox\r\n", encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps(["水痘", "Measles"]), encoding="utf-8")
    assert read_labels_file(tmp_path / "a.txt") == ["Healthy", "Monkeypox"]
    assert read_labels_file(tmp_path / "b.json") == ["水痘", "Measles"]
    (tmp_path / "c.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ConversionError, match="JSON list of strings"):
        read_labels_file(tmp_path / "c.json")


# --- hostile and broken files: one sentence each, never a traceback, never PyTorch's advice --------------------


class _Payload:
    """Unpickling this creates ``marker``: proof that a loader ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def _torchscript(path: Path) -> None:
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(path))


def _onnx_like(path: Path) -> None:
    # The first bytes torch.onnx.export writes: ir_version, producer_name "pytorch", producer_version.
    path.write_bytes(b"\x08\x08\x12\x07pytorch\x1a\x052.4.0:\x8a\x01\n" + bytes(range(256)) * 4)


def _legacy_pickle(path: Path) -> None:
    import pickle

    path.write_bytes(pickle.dumps({"fc.weight": [1.0, 2.0]}, protocol=4))


HOSTILE: dict[str, tuple[Callable[[Path], object], str]] = {
    "text.pth": (lambda p: p.write_text("hello, this is not a model\n" * 20), r"is a text file, not model weights"),
    "random.pth": (lambda p: p.write_bytes(bytes(torch.randint(0, 256, (5000,), generator=torch.Generator()
                                                               .manual_seed(3), dtype=torch.uint8).tolist())),
                   r"is not a PyTorch weights file"),
    "empty.pth": (lambda p: p.write_bytes(b""), r"is empty"),
    "truncated.pth": (lambda p: p.write_bytes(_torch_bytes()[:700]), r"truncated or damaged"),
    "whole_model.pth": (lambda p: torch.save(nn.Linear(2, 2), p),
                        r"holds a pickled Python object \(torch\.nn\.modules\.linear\.Linear\), probably a "
                        r"whole model"),
    "torchscript.pt": (_torchscript, r"is a TorchScript archive"),
    "model.onnx": (_onnx_like, r"is an ONNX model"),
    "keras.h5": (lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100), r"is an HDF5 file"),
    "plain.pkl": (_legacy_pickle, r"is a plain Python pickle"),
    "metrics.pth": (lambda p: torch.save({"epoch": 3, "best_acc": 0.5}, p),
                    r"holds a dict with best_acc, epoch but no weights, not a state dict"),
    "list.pth": (lambda p: torch.save([torch.zeros(1)], p), r"holds a list, not a state dict"),
    "tiny.pth": (lambda p: torch.save({"w": torch.zeros(2)}, p), r"fits no architecture known here; the closest is"),
    "broken.safetensors": (lambda p: p.write_bytes((20).to_bytes(8, "little") + b'{"a": {"dtype": "F32"' + b"x" * 40),
                           r"damaged or truncated \.safetensors file"),
}


def _torch_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save({"fc.weight": torch.zeros(3, 8), "fc.bias": torch.zeros(3)}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_get_one_sentence(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, pattern = HOSTILE[name]
    make(tmp_path / name)
    assert main([str(tmp_path / name), "--labels", *LABELS, "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert re.search(pattern, captured.err), captured.err
    _assert_one_sentence(captured.err)
    assert not (tmp_path / "out.safetensors").exists()


def _assert_one_sentence(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("senet.convert: error: "), err
    assert "Traceback" not in err and "weights_only" not in err and "WeightsUnpickler" not in err


def test_pickle_payloads_never_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "code_ran"
    torch.save({"state_dict": _Payload(marker)}, tmp_path / "evil.pth")
    assert main([str(tmp_path / "evil.pth"), "--labels", *LABELS]) == 1
    err = capsys.readouterr().err
    assert "holds a pickled Python object" in err
    _assert_one_sentence(err)
    assert not marker.exists()


def test_a_missing_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing.pth"), "--labels", *LABELS]) == 1
    err = capsys.readouterr().err
    assert "missing.pth was not found" in err
    _assert_one_sentence(err)


def _fuzz_files(folder: Path, count: int = 400) -> list[Path]:
    """Random bytes, truncations and byte mutations of real torch.save files (zip and legacy formats)."""
    import io
    import random

    rng = random.Random(20261130)
    sources = [_torch_bytes()]
    legacy = io.BytesIO()
    torch.save({"conv1.weight": torch.ones(4, 3, 3, 3), "fc.bias": torch.ones(2)}, legacy,
               _use_new_zipfile_serialization=False)
    sources.append(legacy.getvalue())
    files = []
    for i in range(count):
        kind = i % 4
        base = sources[i % 2]
        if kind == 0:
            data = rng.randbytes(rng.randint(1, 3000))
        elif kind == 1:
            data = base[: rng.randint(1, len(base) - 1)]
        else:
            data = bytearray(base)
            for _ in range(rng.randint(1, 12 if kind == 2 else 2)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data)
        path = folder / f"fuzz_{i:03d}.pth"
        path.write_bytes(data)
        files.append(path)
    return files


def test_fuzzed_files_never_end_in_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcomes: dict[int, int] = {}
    for path in _fuzz_files(tmp_path):
        status = main([str(path), "--labels", *LABELS, "--out", str(tmp_path / "out" / path.stem)])
        outcomes[status] = outcomes.get(status, 0) + 1
        captured = capsys.readouterr()
        if status == 1:
            _assert_one_sentence(captured.err)
        else:  # a mutation that left the file loadable and convertible is fine, and says so
            assert status == 0 and "wrote" in captured.out, (path.name, captured)
    assert outcomes.get(1, 0) >= 350, outcomes
