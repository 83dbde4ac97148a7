"""Contract tests of the explanation engine: one-pass analysis, CAM methods, SE excitations, hooks, threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import pytorch_grad_cam
import torch
from model_helpers import random_model
from PIL import Image
from pytorch_grad_cam.ablation_layer import AblationLayer
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import senet
from senet.hooks import hook_count

LABELS = ("melanoma", "nevus", "keratosis")
FAST = [key for key, method in senet.CAM_METHODS.items() if not method.slow]
SLOW = [key for key, method in senet.CAM_METHODS.items() if method.slow]


def _randomized(arch: str, seed: int) -> torch.nn.Module:
    return random_model(arch, seed, len(LABELS))


@pytest.fixture(scope="module")
def resnet() -> torch.nn.Module:
    return _randomized("se_resnet18", 0)


@pytest.fixture(scope="module")
def densenet() -> torch.nn.Module:
    return _randomized("se_densenet121", 1)


def _card(arch: str, size: int = 64) -> senet.ModelCard:
    return senet.ModelCard(arch=arch, labels=LABELS, input_size=(size, size))


def _image(seed: int, size: tuple[int, int] = (90, 70), mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    base[10:40, 20:50] = 255  # a bright patch: something for the maps to find
    return Image.fromarray(base).convert(mode)


def _package_cam(model, card, image, class_name: str, layer: torch.nn.Module, target: int) -> np.ndarray:
    """The grad-cam package's own call, as the naive app would do it."""
    batch = card.transforms()(image)[None]
    try:
        with getattr(pytorch_grad_cam, class_name)(model, target_layers=[layer]) as cam:
            return cam(batch, targets=[ClassifierOutputTarget(target)])[0]
    finally:
        model.zero_grad(set_to_none=True)  # its backward fills every parameter's .grad


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _state(model: torch.nn.Module) -> tuple:
    return (
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [p.grad for p in model.parameters()],
        {k: v.clone() for k, v in model.state_dict().items()},
    )


def _assert_same_state(model: torch.nn.Module, before: tuple) -> None:
    training, requires_grad, grads, state = _state(model)
    assert training == before[0]
    assert requires_grad == before[1]
    assert all(a is b for a, b in zip(grads, before[2]))
    for key, value in state.items():
        assert torch.equal(value, before[3][key]), key


def test_result_shapes_ranges_and_values(resnet) -> None:
    card, image = _card("se_resnet18"), _image(0)
    result = senet.analyze(resnet, card, image)

    batch = card.transforms()(image)[None]
    with torch.no_grad():
        expected = torch.softmax(resnet(batch).double(), dim=1)[0].tolist()
    assert list(result.probabilities) == list(LABELS)
    np.testing.assert_allclose(list(result.probabilities.values()), expected, atol=1e-6)
    assert abs(sum(result.probabilities.values()) - 1) < 1e-6
    assert result.predicted == LABELS[int(np.argmax(expected))]
    assert (result.target, result.target_index) == (result.predicted, LABELS.index(result.predicted))
    assert result.top_k(2) == sorted(result.probabilities.items(), key=lambda kv: -kv[1])[:2]
    assert (result.method, result.layer, result.device) == ("gradcam", "layer4", "cpu")

    assert result.cam.shape == (64, 64) and result.cam.dtype == np.float32
    assert 0 <= result.cam.min() and result.cam.max() <= 1 and result.cam.max() > 0.99 and result.cam.std() > 0
    assert result.input_rgb.shape == (64, 64, 3) and result.input_rgb.dtype == np.float32
    mean, std = np.array(card.mean), np.array(card.std)
    np.testing.assert_allclose(result.input_rgb, np.clip(batch[0].permute(1, 2, 0).numpy() * std + mean, 0, 1),
                               atol=1e-6)
    assert set(result.timings) == {"preprocess", "forward_backward", "cam", "total"}
    assert all(value > 0 for value in result.timings.values())
    assert result.timings["total"] >= result.timings["forward_backward"]

    # Excitations: what an independent hooked forward reads from every gate.
    seen: dict[str, np.ndarray] = {}
    handles = [
        info.module.gate.register_forward_hook(lambda m, i, o, name=info.name: seen.__setitem__(name, o[0].numpy()))
        for info in senet.se_blocks(resnet)
    ]
    try:
        with torch.no_grad():
            resnet(batch)
    finally:
        for handle in handles:
            handle.remove()
    assert list(result.excitations) == list(seen)
    for name, values in result.excitations.items():
        assert values.dtype == np.float32 and values.ndim == 1
        np.testing.assert_allclose(values, seen[name], atol=1e-6)
        assert ((values > 0) & (values < 1)).all()
    assert result.block_paths["SE_2_1"] == "layer1.0.se" and result.block_paths["SE_5_2"] == "layer4.1.se"


@pytest.mark.parametrize(("arch", "layer"), [
    ("se_resnet18", None), ("se_resnet18", "layer2"), ("se_densenet121", None), ("se_densenet121", "denseblock3"),
])
def test_gradcam_equals_grad_cam_package(request, arch: str, layer: str | None) -> None:
    model = request.getfixturevalue("resnet" if arch == "se_resnet18" else "densenet")
    card, image = _card(arch), _image(1)
    for target in (None, "keratosis") if (arch, layer) == ("se_resnet18", None) else ("keratosis",):
        ours = senet.analyze(model, card, image, target=target, layer=layer)
        key = ours.layer
        module = model.layer4[-1] if key == "layer4" else model.layer2[-1] if key == "layer2" else (
            model.features if key == "features" else model.features.denseblock3)
        reference = _package_cam(model, card, image, "GradCAM", module, ours.target_index)
        assert reference.shape == ours.cam.shape
        assert _corr(ours.cam, reference) >= 0.95
        np.testing.assert_allclose(ours.cam, reference, atol=1e-4)  # in fact the same numbers
    assert hook_count(model) == 0


@pytest.mark.parametrize("method", FAST)
def test_fast_methods_equal_their_package_class(resnet, method: str) -> None:
    card, image = _card("se_resnet18"), _image(2)
    ours = senet.analyze(resnet, card, image, method=method, target=2)
    reference = _package_cam(resnet, card, image, senet.CAM_METHODS[method].class_name, resnet.layer4[-1], 2)
    assert ours.cam.shape == (64, 64) and 0 <= ours.cam.min() and ours.cam.max() <= 1
    assert _corr(ours.cam, reference) >= 0.95
    assert hook_count(resnet) == 0


@pytest.mark.parametrize("method", SLOW)
def test_slow_methods_work_report_progress_and_clean_up(resnet, method: str) -> None:
    card, image = _card("se_resnet18", 32), _image(3)
    before = _state(resnet)
    reported: list[float] = []
    # layer1 has 64 channels: a handful of the method's extra forward passes, not hundreds.
    ours = senet.analyze(resnet, card, image, method=method, layer="layer1", target=2, progress=reported.append)
    assert ours.cam.shape == (32, 32) and 0 <= ours.cam.min() and ours.cam.max() <= 1 and ours.cam.std() > 0
    assert reported[0] == 0.0 and reported[-1] == 1.0 and len(reported) >= 4
    assert reported == sorted(reported) and all(0 < p < 1 for p in reported[1:-1])
    assert hook_count(resnet) == 0
    assert not any(isinstance(m, AblationLayer) for m in resnet.modules())
    _assert_same_state(resnet, before)
    reference = _package_cam(resnet, card, image, senet.CAM_METHODS[method].class_name, resnet.layer1[-1], 2)
    assert _corr(ours.cam, reference) >= 0.95


def test_every_se_block_captured(resnet, densenet) -> None:
    for model, arch, count in ((resnet, "se_resnet18", 8), (densenet, "se_densenet121", 58)):
        result = senet.analyze(model, _card(arch), _image(4), method="eigencam")
        blocks = senet.se_blocks(model)
        assert len(result.excitations) == count
        assert list(result.excitations) == [b.name for b in blocks]
        assert [v.shape for v in result.excitations.values()] == [(b.channels,) for b in blocks]
        assert result.block_paths == {b.name: b.path for b in blocks}
    assert list(result.excitations)[:2] == ["SE_2_1", "SE_2_2"] and list(result.excitations)[-1] == "SE_5_16"


def test_densenet_fast_methods_and_default_layer(densenet) -> None:
    card, image = _card("se_densenet121"), _image(5)
    for method in ("gradcam++", "layercam", "eigencam"):
        result = senet.analyze(densenet, card, image, method=method)
        assert result.layer == "features"
        assert result.cam.shape == (64, 64) and 0 <= result.cam.min() and result.cam.max() <= 1
    assert hook_count(densenet) == 0


def test_cam_layers() -> None:
    resnet_layers = senet.cam_layers(senet.create_model("se_resnet18", num_classes=3))
    assert list(resnet_layers) == ["layer4", "layer3", "layer2", "layer1"]
    densenet_layers = senet.cam_layers(senet.create_model("se_densenet121", num_classes=3))
    assert list(densenet_layers) == ["features", "denseblock4", "denseblock3", "denseblock2", "denseblock1"]
    assert all(isinstance(text, str) and text for text in {**resnet_layers, **densenet_layers}.values())
    with pytest.raises(ValueError):
        senet.cam_layers(torch.nn.Linear(2, 2))


def test_model_state_restored(resnet) -> None:
    resnet.train()
    resnet.layer1.eval()
    resnet.fc.weight.requires_grad_(False)
    resnet.zero_grad(set_to_none=True)
    resnet.conv1.weight.grad = torch.ones_like(resnet.conv1.weight)
    try:
        before = _state(resnet)
        for method in ("gradcam", "eigencam"):
            senet.analyze(resnet, _card("se_resnet18"), _image(6), method=method)
            _assert_same_state(resnet, before)  # also: BN running stats untouched, so it ran in eval mode
        assert all(p.grad is None for name, p in resnet.named_parameters() if name != "conv1.weight")
    finally:
        resnet.eval()
        resnet.fc.weight.requires_grad_(True)
        resnet.conv1.weight.grad = None


def test_hooks_removed_and_state_restored_after_exceptions(resnet) -> None:
    before = _state(resnet)
    wrong_card = senet.ModelCard(arch="se_resnet18", labels=("a", "b", "c", "d"), input_size=(64, 64))
    with pytest.raises(ValueError, match="logits"):
        senet.analyze(resnet, wrong_card, _image(7))  # fails after the hooked forward
    assert hook_count(resnet) == 0

    def explode(module, inputs, output):
        raise RuntimeError("boom")

    handle = resnet.layer4.register_forward_hook(explode)  # fails in the middle of the forward
    try:
        with pytest.raises(RuntimeError, match="boom"):
            senet.analyze(resnet, _card("se_resnet18"), _image(7))
        assert hook_count(resnet) == 1  # only ours
    finally:
        handle.remove()

    calls: list[float] = []

    def failing_progress(fraction: float) -> None:
        calls.append(fraction)
        if len(calls) == 3:  # inside AblationCAM, while its AblationLayer replaces layer1[-1]
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        senet.analyze(resnet, _card("se_resnet18", 32), _image(7), method="ablationcam", layer="layer1",
                      progress=failing_progress)
    assert hook_count(resnet) == 0
    assert not any(isinstance(m, AblationLayer) for m in resnet.modules())
    _assert_same_state(resnet, before)

    bad_options = {
        "This model has no class 'tumour'; choose one of: melanoma, nevus, keratosis.": {"target": "tumour"},
        "This model has classes 0 to 2; there is no class 3.": {"target": 3},
        "There is no CAM method 'nope'; choose one of: gradcam, gradcam++, ": {"method": "nope"},
        "This model has no CAM layer 'layer9'; choose one of: layer4, layer3, layer2, layer1.": {"layer": "layer9"},
    }
    for sentence, bad in bad_options.items():
        with pytest.raises(senet.OptionError) as caught:
            senet.analyze(resnet, _card("se_resnet18"), _image(7), **bad)
        assert str(caught.value).startswith(sentence)
    assert hook_count(resnet) == 0


def test_targets_by_name_and_index(resnet) -> None:
    card, image = _card("se_resnet18"), _image(8)
    by_name = senet.analyze(resnet, card, image, target="nevus")
    by_index = senet.analyze(resnet, card, image, target=1)
    assert (by_name.target, by_name.target_index) == ("nevus", 1)
    np.testing.assert_array_equal(by_name.cam, by_index.cam)
    other = senet.analyze(resnet, card, image, target=0)
    assert not np.array_equal(other.cam, by_name.cam)  # the target really changes the map


def test_works_under_no_grad_inference_mode_and_frozen_model(resnet) -> None:
    card, image = _card("se_resnet18"), _image(9, mode="L")
    plain = senet.analyze(resnet, card, image)
    with torch.no_grad():
        quiet = senet.analyze(resnet, card, image)
        assert not torch.is_grad_enabled()  # the caller's mode survives the hook that switches grad on
    with torch.inference_mode():
        inference = senet.analyze(resnet, card, image)
    for param in resnet.parameters():
        param.requires_grad_(False)
    try:
        frozen = senet.analyze(resnet, card, image)
    finally:
        for param in resnet.parameters():
            param.requires_grad_(True)
    for other in (quiet, inference, frozen):
        np.testing.assert_array_equal(other.cam, plain.cam)
        assert other.probabilities == plain.probabilities


def test_concurrent_calls_equal_serial(resnet) -> None:
    card = _card("se_resnet18")
    jobs = [(_image(seed), method, target) for seed in (10, 11, 12) for method, target in
            (("gradcam", None), ("layercam", 1), ("eigencam", 2))]
    serial = [senet.analyze(resnet, card, image, method=m, target=t) for image, m, t in jobs]
    with ThreadPoolExecutor(max_workers=6) as pool:
        parallel = list(pool.map(lambda job: senet.analyze(resnet, card, job[0], method=job[1], target=job[2]),
                                 jobs * 2))
    # The jobs really differ (a random model may give an all-zero map now and then, hence not all 9).
    assert len({s.cam.tobytes() for s in serial}) >= 6 and len({str(s.probabilities) for s in serial}) == 3
    for i, result in enumerate(parallel):
        expected = serial[i % len(serial)]
        np.testing.assert_array_equal(result.cam, expected.cam)
        assert result.probabilities == expected.probabilities and result.target == expected.target
        for name, values in expected.excitations.items():
            np.testing.assert_array_equal(result.excitations[name], values)
    assert hook_count(resnet) == 0


def test_channel_map_and_strongest_channels(resnet) -> None:
    card, image = _card("se_resnet18"), _image(13)
    result = senet.analyze(resnet, card, image)
    channels = senet.strongest_channels(result.excitations["SE_3_2"], 3)
    gates = result.excitations["SE_3_2"]
    assert channels == list(np.argsort(-gates)[:3]) and gates[channels[0]] == gates.max()
    assert senet.strongest_channels(np.array([0.2, 0.9, 0.9, 0.1]), 2) == [1, 2]

    heat = senet.channel_map(resnet, card, image, "SE_3_2", channels[0])
    assert heat.shape == (64, 64) and heat.dtype == np.float32 and heat.min() == 0 and abs(heat.max() - 1) < 1e-6
    same = senet.channel_map(resnet, card, image, "layer2.1.se", channels[0])
    np.testing.assert_array_equal(heat, same)

    seen: list[torch.Tensor] = []
    handle = resnet.layer2[1].se.register_forward_hook(lambda m, i, o: seen.append(o))
    try:
        with torch.no_grad():
            resnet(card.transforms()(image)[None])
    finally:
        handle.remove()
    raw = seen[0][:, channels[0]:channels[0] + 1]
    expected = torch.nn.functional.interpolate(raw, size=(64, 64), mode="bilinear", align_corners=False)[0, 0]
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    np.testing.assert_allclose(heat, expected.numpy(), atol=1e-5)
    with pytest.raises(senet.OptionError, match=r"^SE block SE_3_2 has channels 0 to 127; choose one of those\.$"):
        senet.channel_map(resnet, card, image, "SE_3_2", 128)
    with pytest.raises(senet.OptionError, match=r"^This model has no SE block 'SE_9_1'; choose one of: SE_2_1, "):
        senet.channel_map(resnet, card, image, "SE_9_1", 0)
    assert hook_count(resnet) == 0


def test_overlay_and_heatmap_images_are_rgb() -> None:
    photo = Image.new("RGB", (40, 30), (128, 128, 128))  # PIL size is (width, height)
    heat = np.zeros((8, 8), dtype=np.float32)
    heat[:, 4:] = 1.0  # right half hot
    blended = senet.overlay(photo, heat, opacity=0.5)
    assert blended.mode == "RGB" and blended.size == (40, 30)
    pixels = np.asarray(blended).astype(int)
    right, left = pixels[15, 38], pixels[15, 1]
    # inferno: hot is pale yellow (red above blue), cold near-black purple (blue above red); BGR would swap both
    assert right[0] > right[2] + 30 and left[2] > left[0]
    np.testing.assert_array_equal(np.asarray(senet.overlay(photo, heat, opacity=0.0)), np.asarray(photo))
    hot = np.asarray(senet.heatmap_image(np.ones((4, 4), dtype=np.float32)))
    cold = np.asarray(senet.heatmap_image(np.zeros((4, 4), dtype=np.float32), size=(10, 6)))
    assert hot.shape == (4, 4, 3) and cold.shape == (6, 10, 3)
    assert hot[0, 0, 0] > 240 and hot[0, 0, 0] > hot[0, 0, 2] + 60 and cold.max() < 10 and cold[0, 0, 2] > cold[0, 0, 0]
    array_overlay = senet.overlay(np.full((30, 40, 3), 0.5, dtype=np.float32), heat, opacity=1.0)
    np.testing.assert_array_equal(np.asarray(array_overlay)[:, 35], np.repeat(hot[:1, 0], 30, axis=0))
    with pytest.raises(ValueError):
        senet.overlay(photo, heat, opacity=1.5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(resnet) -> None:
    card, image = _card("se_resnet18"), _image(14)
    cpu = senet.analyze(resnet, card, image)
    model = _randomized("se_resnet18", 0).cuda()
    for layout in (torch.contiguous_format, torch.channels_last):
        model = model.to(memory_format=layout)
        gpu = senet.analyze(model, card, image)
        assert gpu.device.startswith("cuda") and gpu.predicted == cpu.predicted
        assert _corr(gpu.cam, cpu.cam) >= 0.99
        for name, values in cpu.excitations.items():
            np.testing.assert_allclose(gpu.excitations[name], values, atol=1e-3)
