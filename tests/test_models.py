"""Contract tests for the model zoo: shapes, gradients, parameter counts, SE blocks, hooks and options."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchvision
from model_helpers import randomize_
from torch import Tensor, nn

from senet import create_model, list_models, register_model, se_blocks
from senet.densenet import DenseNet

SE_RESNETS = [f"se_resnet{depth}" for depth in (18, 34, 50, 101, 152)]
RESNETS = [f"resnet{depth}" for depth in (18, 34, 50, 101, 152)]
SE_DENSENETS = [f"se_densenet{depth}" for depth in (121, 169, 201, 161)]
DENSENETS = [f"densenet{depth}" for depth in (121, 169, 201, 161)]
ALL = SE_RESNETS + RESNETS + SE_DENSENETS + DENSENETS
RESNEXTS = ["se_resnext50_32x4d", "se_resnext101_32x4d", "resnext50_32x4d", "resnext101_32x4d"]  # test_resnext.py


def _meta(name: str, **kwargs: object) -> nn.Module:
    """The model on the meta device: structure and shapes without allocating or initialising weights."""
    with torch.device("meta"):
        return create_model(name, **kwargs)


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_lists_every_family() -> None:
    assert list_models() == sorted(ALL + RESNEXTS)


def test_parameter_counts_match_references() -> None:
    assert _num_params(_meta("resnet50")) == 25_557_032  # torchvision
    assert _num_params(_meta("densenet121")) == 7_978_856  # torchvision
    se_resnet50 = _num_params(_meta("se_resnet50"))
    assert abs(se_resnet50 - 28.1e6) / 28.1e6 < 1e-3  # SE paper, Table 2


@pytest.mark.parametrize("name", RESNETS + DENSENETS)
def test_plain_models_have_torchvision_keys_and_shapes(name: str) -> None:
    with torch.device("meta"):
        ours = create_model(name).state_dict()
        theirs = getattr(torchvision.models, name)().state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "densenet121"])
def test_plain_models_compute_what_torchvision_computes(name: str) -> None:
    theirs = randomize_(getattr(torchvision.models, name)(num_classes=3)).eval()
    ours = create_model(name, num_classes=3).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("name", ALL)
def test_forward_shape_finite_and_silent(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    model = randomize_(create_model(name, num_classes=3)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        split = model.forward_head(model.forward_features(x))
    assert out.shape == (2, 3)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(split, out, rtol=0, atol=0)
    assert capsys.readouterr() == ("", "")  # no prints in forward (the seeds print shapes)


# Deeper variants repeat the same blocks; their backward pass costs seconds each on 2 cores.
GRADIENT_MODELS = ["se_resnet18", "resnet18", "se_resnet50", "resnet50", "se_densenet121", "densenet121"]


@pytest.mark.parametrize("name", GRADIENT_MODELS)
def test_every_parameter_receives_a_gradient(name: str) -> None:
    # 64x32: the last stage still has 2 positions, so train-mode BN over a batch of 2 sees 4 values per channel
    # and passes a real gradient (with 2 values it normalises to +-1 and the gradient almost vanishes).
    model = randomize_(create_model(name, num_classes=3)).train()
    for info in se_blocks(model):
        # An SE bottleneck has only C/16 hidden units (2 in SE-DenseNet): keep them alive, else a dead ReLU
        # legitimately gives fc1 a zero gradient.
        with torch.no_grad():
            info.module.fc1.bias.uniform_(0.5, 1.0)
    out = model(torch.randn(2, 3, 64, 32))
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    (out * torch.randn_like(out)).sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters without a gradient: {no_grad[:5]}"
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all() or not p.grad.abs().sum() > 0]
    assert not bad, f"parameters with a zero or non-finite gradient: {bad[:5]}"


@pytest.mark.parametrize("size", [(33, 47), (47, 33), (35, 97)])
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("se_resnet18", {}), ("se_resnet50", {}), ("se_densenet121", {}), ("se_densenet121", {"small_inputs": True})],
)
def test_odd_and_non_square_input_sizes(name: str, kwargs: dict[str, object], size: tuple[int, int]) -> None:
    model = create_model(name, num_classes=3, **kwargs).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 3)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("name", "count"),
    [("se_resnet18", 8), ("se_resnet34", 16), ("se_resnet50", 16), ("se_resnet101", 33), ("se_resnet152", 50),
     ("se_densenet121", 58), ("se_densenet169", 82), ("se_densenet201", 98), ("se_densenet161", 78)]
    + [(name, 0) for name in RESNETS + DENSENETS],
)
def test_se_block_counts(name: str, count: int) -> None:
    assert len(se_blocks(_meta(name))) == count


def test_se_resnet_paper_names_and_channels() -> None:
    blocks = se_blocks(_meta("se_resnet18"))
    assert [b.name for b in blocks] == ["SE_2_1", "SE_2_2", "SE_3_1", "SE_3_2", "SE_4_1", "SE_4_2", "SE_5_1", "SE_5_2"]
    assert [b.path for b in blocks[:2]] == ["layer1.0.se", "layer1.1.se"]
    assert [b.channels for b in blocks] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [(b.stage, b.index) for b in blocks[-2:]] == [(5, 1), (5, 2)]

    blocks = se_blocks(_meta("se_resnet50"))
    per_stage = {stage: [b for b in blocks if b.stage == stage] for stage in (2, 3, 4, 5)}
    assert [len(v) for v in per_stage.values()] == [3, 4, 6, 3]
    assert [v[0].channels for v in per_stage.values()] == [256, 512, 1024, 2048]
    assert blocks[-1].name == "SE_5_3" and blocks[-1].path == "layer4.2.se"


def test_se_densenet_paper_names_and_channels() -> None:
    blocks = se_blocks(_meta("se_densenet121"))
    assert [sum(b.stage == s for b in blocks) for s in (2, 3, 4, 5)] == [6, 12, 24, 16]
    assert blocks[0].name == "SE_2_1" and blocks[0].path == "features.denseblock1.denselayer1.se"
    assert blocks[-1].name == "SE_5_16" and blocks[-1].path == "features.denseblock4.denselayer16.se"
    assert {b.channels for b in blocks} == {32}  # SE sits on the growth_rate new features
    assert len({b.name for b in blocks}) == len(blocks)


def test_se_reduction_sets_the_bottleneck_width() -> None:
    assert se_blocks(_meta("se_resnet50"))[0].module.fc1.out_features == 256 // 16
    assert se_blocks(_meta("se_resnet50", se_reduction=8))[0].module.fc1.out_features == 256 // 8


@pytest.mark.parametrize(("name", "kwargs"), [("se_resnet18", {}), ("se_densenet121", {"small_inputs": True})])
def test_se_blocks_are_listed_in_forward_order_and_gates_are_hookable(name: str, kwargs: dict[str, object]) -> None:
    model = create_model(name, num_classes=3, **kwargs).eval()
    blocks = se_blocks(model)
    order: list[str] = []
    gates: dict[str, Tensor] = {}
    handles = []
    for info in blocks:
        handles.append(info.module.register_forward_hook(lambda m, i, o, path=info.path: order.append(path)))
        handles.append(info.module.gate.register_forward_hook(
            lambda m, i, o, path=info.path: gates.__setitem__(path, o)))
    try:
        with torch.no_grad():
            model(torch.randn(2, 3, 32, 32))
    finally:
        for handle in handles:
            handle.remove()
    assert order == [b.path for b in blocks]
    for info in blocks:
        gate = gates[info.path]
        assert gate.shape == (2, info.channels)
        assert ((gate > 0) & (gate < 1)).all()


def _modified_hook_outputs(model: nn.Module, x: Tensor) -> list[str]:
    """Modules whose forward-hook output was changed later in the same forward pass (an in-place op)."""
    seen: list[tuple[str, Tensor, int, Tensor]] = []

    def make_hook(path: str) -> Callable[[nn.Module, object, object], None]:
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            outputs = output if isinstance(output, (tuple, list)) else [output]
            for tensor in outputs:
                if isinstance(tensor, Tensor):
                    seen.append((path, tensor, tensor._version, tensor.detach().clone()))
        return hook

    handles = [module.register_forward_hook(make_hook(path)) for path, module in model.named_modules() if path]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    assert seen, "no hook fired"
    # _version counts in-place writes, even those that happen to leave the values unchanged.
    return [path for path, tensor, version, copy in seen if tensor._version != version or not torch.equal(tensor, copy)]


def test_inplace_checker_catches_torchvision_densenet() -> None:
    # torchvision's DenseNet applies F.relu(features, inplace=True) to the output of `features` (grad-cam #147).
    model = torchvision.models.densenet121(num_classes=3).eval()
    with torch.no_grad():
        assert "features" in _modified_hook_outputs(model, torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("se_resnet18", {}), ("se_resnet50", {}), ("se_densenet121", {}), ("densenet121", {}),
     ("se_densenet121", {"memory_efficient": True})],
)
def test_no_inplace_op_modifies_a_hooked_output(name: str, kwargs: dict[str, object], train: bool) -> None:
    model = randomize_(create_model(name, num_classes=3, **kwargs)).train(train)
    assert _modified_hook_outputs(model, torch.randn(2, 3, 64, 32)) == []


@pytest.mark.parametrize("small_inputs", [False, True])
def test_memory_efficient_densenet_matches_the_normal_path(small_inputs: bool) -> None:
    # A narrow, shallow SE-DenseNet runs the same layer code as se_densenet121 at a fraction of the cost.
    config = dict(growth_rate=8, block_config=(2, 3, 2, 2), num_init_features=16, se_reduction=4, num_classes=3,
                  small_inputs=small_inputs)
    normal = randomize_(DenseNet(**config)).train()  # type: ignore[arg-type]
    efficient = DenseNet(**config, memory_efficient=True)  # type: ignore[arg-type]
    efficient.load_state_dict(normal.state_dict())
    efficient.train()
    x = torch.randn(2, 3, 32, 32)
    out_normal, out_efficient = normal(x), efficient(x)
    torch.testing.assert_close(out_efficient, out_normal)
    weights = torch.randn_like(out_normal)
    (out_normal * weights).sum().backward()
    (out_efficient * weights).sum().backward()
    for (name, p), q in zip(normal.named_parameters(), efficient.parameters()):
        torch.testing.assert_close(q.grad, p.grad, msg=lambda m, name=name: f"{name}: {m}")
    # The checkpoint recomputation must not update the BN running statistics a second time.
    efficient_state = efficient.state_dict()
    for name, buffer in normal.named_buffers():
        torch.testing.assert_close(efficient_state[name], buffer, msg=lambda m, name=name: f"{name}: {m}")
    normal.eval()
    efficient.eval()
    with torch.no_grad():
        torch.testing.assert_close(efficient(x), normal(x))


def test_small_inputs_densenet_changes_only_the_stem_and_keeps_resolution() -> None:
    normal = _meta("se_densenet121", num_classes=3).state_dict()
    small = _meta("se_densenet121", num_classes=3, small_inputs=True).state_dict()
    stem = {k for k in normal if k.startswith(("features.conv0.", "features.norm0."))}
    assert set(normal) - set(small) == stem - {"features.conv0.weight"}
    assert tuple(normal["features.conv0.weight"].shape) == (64, 3, 7, 7)
    assert tuple(small["features.conv0.weight"].shape) == (64, 3, 3, 3)
    assert {k: v.shape for k, v in small.items() if k not in stem} == {
        k: v.shape for k, v in normal.items() if k not in stem}

    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        small_features = create_model("se_densenet121", num_classes=3, small_inputs=True).eval().forward_features(x)
        normal_features = create_model("se_densenet121", num_classes=3).eval().forward_features(x)
    assert small_features.shape == (2, 1024, 4, 4)  # three transitions: 32 / 8
    assert normal_features.shape == (2, 1024, 1, 1)  # stride-2 conv, max pool, three transitions: 32 / 32


def test_registering_a_name_twice_raises() -> None:
    def se_resnet18(*, num_classes: int = 1000) -> nn.Module:
        return nn.Linear(1, num_classes)

    before = list_models()
    with pytest.raises(ValueError, match="already registered"):
        register_model(se_resnet18)
    assert list_models() == before
    assert not isinstance(create_model("se_resnet18", num_classes=2), nn.Linear)


def test_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown model 'se_resnet19'.*se_resnet18"):
        create_model("se_resnet19")


@pytest.mark.slow  # a fresh interpreter imports torch
def test_library_imports_without_gradio() -> None:
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = "import sys, senet, senet.convert; print(sorted(m for m in sys.modules if m.split('.')[0] == 'gradio'))"
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
