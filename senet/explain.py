"""One-pass analysis: prediction, a CAM heatmap and every SE block's excitation from one forward + one backward.

How the single pass works: forward hooks (owned by context managers, see ``hooks.py``) record every SE gate
and the CAM layer's output during the forward that yields the probabilities. The forward runs under
``no_grad`` up to the CAM layer; its hook hands the rest of the network a leaf copy and switches grad on, so
only the head after the layer builds a graph, and the backward (``torch.autograd.grad`` to that leaf) stops
there and leaves every parameter's ``.grad`` alone. The map itself is computed by the grad-cam package's own
CAM classes (``get_cam_image`` on the captured arrays, then its ``scale_cam_image`` / ``aggregate_multi_layers``)
so it equals what ``pytorch_grad_cam.GradCAM`` etc. give. ScoreCAM and AblationCAM need many extra forwards of
their own (slow; progress is reported).

pytorch_grad_cam is imported lazily: importing ``senet`` must work where it is not installed.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .calibration import calibrated_probabilities
from .card import ModelCard
from .familiarity import familiarity_recorder
from .family import as_family
from .hooks import ExcitationRecorder, LayerRecorder, model_lock, preserved_state
from .layers import SEBlockInfo, se_blocks
from .options import OptionError, unknown

Progress = Callable[[float], None]


@dataclass(frozen=True)
class CamMethod:
    """A CAM method of the grad-cam package."""

    key: str
    display_name: str
    slow: bool  # needs hundreds of extra forward passes
    class_name: str = ""  # the class in pytorch_grad_cam
    uses_gradients: bool = True


CAM_METHODS: dict[str, CamMethod] = {
    method.key: method
    for method in (
        CamMethod("gradcam", "Grad-CAM", False, "GradCAM"),
        CamMethod("gradcam++", "Grad-CAM++", False, "GradCAMPlusPlus"),
        CamMethod("xgradcam", "XGrad-CAM", False, "XGradCAM"),
        CamMethod("hirescam", "HiRes-CAM", False, "HiResCAM"),
        CamMethod("layercam", "Layer-CAM", False, "LayerCAM"),
        CamMethod("eigencam", "Eigen-CAM (gradient-free)", False, "EigenCAM", uses_gradients=False),
        CamMethod("scorecam", "Score-CAM (slow)", True, "ScoreCAM", uses_gradients=False),
        CamMethod("ablationcam", "Ablation-CAM (slow)", True, "AblationCAM", uses_gradients=False),
    )
}

_SCORECAM_BATCH = 16  # ScoreCAM's own default batch size (it has no parameter for it)
_ABLATIONCAM_BATCH = 32


@dataclass(frozen=True)
class Analysis:
    """What the model predicts for one image, where it looked, and how every SE block gated its channels."""

    probabilities: dict[str, float]  # label -> calibrated probability (card's temperature), card label order
    predicted: str
    target: str  # the class the CAM explains
    target_index: int
    method: str  # key of CAM_METHODS
    layer: str  # key of cam_layers(model)
    cam: np.ndarray  # (H, W) float32 in [0, 1] at the model input size
    excitations: dict[str, np.ndarray]  # SE paper name -> (C,) float32 gate values, network order
    block_paths: dict[str, str]  # SE paper name -> module path
    input_rgb: np.ndarray  # (H, W, 3) float32 in [0, 1]: the preprocessed input, un-normalised
    timings: dict[str, float]  # milliseconds: preprocess, forward_backward, cam, total
    device: str
    familiarity: float | None = None  # share of Valid photos that look stranger; None: no statistics
    unfamiliar: bool | None = None  # familiarity below the checkpoint's threshold; None: no statistics

    def top_k(self, k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable labels with their probabilities, most probable first."""
        return sorted(self.probabilities.items(), key=lambda item: -item[1])[: max(0, k)]


def cam_layers(model: nn.Module) -> dict[str, str]:
    """CAM layer choices for ``model``: key -> description, the default first (the model's family says which).

    Raises:
        ValueError: ``model`` is not a model of a registered family.
    """
    return as_family(model).cam_layers()


def analyze(
    model: nn.Module,
    card: ModelCard,
    image: Image.Image,
    *,
    target: str | int | None = None,
    method: str = "gradcam",
    layer: str | None = None,
    progress: Progress | None = None,
) -> Analysis:
    """Predict, explain and read every SE block's excitation for one image, in one forward and one backward.

    Args:
        model: an SE-ResNet / SE-DenseNet; left exactly as found (train/eval flags, requires_grad, .grad).
        card: its model card (labels and preprocessing).
        image: a PIL image in any mode.
        target: label name or index of the class to explain; default the predicted class.
        method: a key of ``CAM_METHODS``.
        layer: a key of ``cam_layers(model)``; default its first.
        progress: called with the fraction done (0 to 1); the slow methods call it after each batch.

    Returns:
        The analysis; safe to call from several threads at once (calls on one model are serialised by
        ``hooks.model_lock``: callers need no lock of their own).

    Raises:
        OptionError: an unknown method, target or layer (the message is a sentence for people).
    """
    start = time.perf_counter()
    spec = _cam_method(method)
    family = as_family(model)
    layer = next(iter(family.cam_layers())) if layer is None else layer
    module = family.cam_layer(layer)  # OptionError for a layer this model does not have
    target_index = None if target is None else _target_index(card, target)
    _report(progress, 0.0)

    with torch.inference_mode(False):  # also from a caller in inference mode: we need autograd
        batch, input_rgb = _preprocess(card, image)
        prep_done = time.perf_counter()
        with model_lock(model), preserved_state(model):
            locked = time.perf_counter()  # waiting for another thread's analysis is not forward/backward time
            parameter = next(model.parameters())
            batch = _to_model(batch, model, parameter)
            with familiarity_recorder(model) as seen:  # hooks in the same forward; none without statistics
                found = _one_pass(model, batch, module, spec.uses_gradients, target_index, card.num_classes)
            fb_done = time.perf_counter()
            cam = _compute_cam(spec, model, module, batch, found.index, found.activations, found.grads, progress)
    cam_done = time.perf_counter()
    _report(progress, 1.0)

    labels = list(card.labels)
    # log-probabilities are the logits up to a constant, which softmax ignores
    calibrated = calibrated_probabilities(torch.tensor(found.probabilities, dtype=torch.float64).log(), card)
    familiar = seen.result()
    return Analysis(
        probabilities={label: float(p) for label, p in zip(labels, calibrated)},
        predicted=labels[found.predicted],
        target=labels[found.index],
        target_index=found.index,
        method=spec.key,
        layer=layer,
        cam=cam,
        excitations=found.excitations,
        block_paths=found.block_paths,
        input_rgb=input_rgb,
        timings={
            "preprocess": (prep_done - start) * 1e3,
            "forward_backward": (fb_done - locked) * 1e3,
            "cam": (cam_done - fb_done) * 1e3,
            "total": (cam_done - start) * 1e3,
        },
        device=str(parameter.device),
        familiarity=None if familiar is None else familiar[0],
        unfamiliar=None if familiar is None else familiar[1],
    )


def channel_map(model: nn.Module, card: ModelCard, image: Image.Image, block: str, channel: int) -> np.ndarray:
    """What one channel of one SE block responds to: its SE-scaled output for ``image``.

    Args:
        block: the SE paper's name (``SE_3_2``) or the module path (``layer2.1.se``).
        channel: channel index in that block.

    Returns:
        (H, W) float32 in [0, 1] at the model input size (min-max scaled; all zero for a constant map).

    Raises:
        OptionError: an unknown block or a channel out of range.
    """
    info = _find_block(model, block)
    try:
        channel = -1 if isinstance(channel, bool) else operator.index(channel)
    except TypeError:
        channel = -1
    if not 0 <= channel < info.channels:
        raise OptionError(f"SE block {info.name} has channels 0 to {info.channels - 1}; choose one of those.")
    with torch.inference_mode(False):
        batch, _ = _preprocess(card, image)
        with model_lock(model), preserved_state(model), LayerRecorder(info.module) as caught, torch.no_grad():
            model(_to_model(batch, model, next(model.parameters())))
            if caught.output is None:
                raise RuntimeError(f"SE block {info.name} did not run in the forward pass")
            feature = caught.output[:, channel : channel + 1].float()  # (1, 1, h, w)
            feature = F.interpolate(feature, size=card.input_size, mode="bilinear", align_corners=False)[0, 0]
            feature = feature - feature.min()
            peak = float(feature.max())
            scaled = feature / peak if peak > 0 else torch.zeros_like(feature)
            return scaled.cpu().numpy().astype(np.float32)


def strongest_channels(excitation: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` largest gate values, largest first (ties: lower index first)."""
    values = np.asarray(excitation, dtype=np.float64).reshape(-1)
    return [int(i) for i in np.argsort(-values, kind="stable")[: max(0, k)]]


# --- internals ---------------------------------------------------------------------------------------------


def _cam_method(key: str) -> CamMethod:
    try:
        return CAM_METHODS[key]
    except (KeyError, TypeError):  # TypeError: an unhashable value from a client
        raise unknown("CAM method", key, CAM_METHODS, of_model=False) from None


def _target_index(card: ModelCard, target: str | int) -> int:
    if isinstance(target, str):
        if target not in card.labels:
            raise unknown("class", target, card.labels)
        return card.labels.index(target)
    if isinstance(target, bool):
        raise TypeError("target must be a label name or a class index, not a bool")
    index = operator.index(target)
    if not 0 <= index < card.num_classes:
        raise OptionError(f"This model has classes 0 to {card.num_classes - 1}; there is no class {index}.")
    return index


def _find_block(model: nn.Module, block: str) -> SEBlockInfo:
    for info in se_blocks(model):
        if block in (info.name, info.path):
            return info
    raise unknown("SE block", block, [info.name for info in se_blocks(model)])


def _preprocess(card: ModelCard, image: Image.Image) -> tuple[torch.Tensor, np.ndarray]:
    """PIL image -> ((1, 3, H, W) normalised batch, (H, W, 3) float32 RGB in [0, 1] as the model sees it)."""
    tensor = card.transforms()(image)
    mean = torch.tensor(card.mean)[:, None, None]
    std = torch.tensor(card.std)[:, None, None]
    rgb = (tensor * std + mean).clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float32)
    return tensor[None], rgb


def _to_model(batch: torch.Tensor, model: nn.Module, parameter: torch.Tensor) -> torch.Tensor:
    batch = batch.to(parameter.device, parameter.dtype)
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first_conv is not None and first_conv.weight.is_contiguous(memory_format=torch.channels_last) and \
            not first_conv.weight.is_contiguous():
        # The caller converted the model to channels_last (faster on CUDA): feed it the same layout.
        batch = batch.contiguous(memory_format=torch.channels_last)
    return batch


def _report(progress: Progress | None, fraction: float) -> None:
    if progress is not None:
        progress(float(fraction))


@dataclass(frozen=True)
class _PassResult:
    probabilities: list[float]
    predicted: int
    index: int  # the class to explain
    activations: torch.Tensor  # (1, C, h, w) output of the CAM layer
    grads: torch.Tensor | None  # d logit[index] / d activations, when the method uses gradients
    excitations: dict[str, np.ndarray]
    block_paths: dict[str, str]


def _one_pass(
    model: nn.Module, batch: torch.Tensor, module: nn.Module, with_grads: bool, target: int | None, num_classes: int
) -> _PassResult:
    """The forward (SE gates and CAM activations caught by hooks) and the backward to the CAM layer."""
    with ExcitationRecorder(model) as gates, LayerRecorder(module, leaf=with_grads) as caught:
        with torch.no_grad():  # the CAM layer's hook switches grad on for the part after it only
            logits = model(batch)
        if caught.output is None:
            raise RuntimeError("the CAM layer did not run in the forward pass")
        if logits.shape != (1, num_classes):
            raise ValueError(f"the model gives {tuple(logits.shape)} logits for {num_classes} card labels")
        probabilities = torch.softmax(logits.detach().double(), dim=1)[0].cpu()
        predicted = int(probabilities.argmax())
        index = predicted if target is None else target
        grads = torch.autograd.grad(logits[0, index], caught.output)[0] if with_grads else None
        excitations = {info.name: gate[0].float().cpu().numpy() for info, gate in zip(gates.blocks, gates.ordered())}
        return _PassResult(
            probabilities.tolist(), predicted, index, caught.output.detach(), grads, excitations,
            {info.name: info.path for info in gates.blocks},
        )


_STAND_IN = nn.Linear(1, 1)  # the "model" of the gradient and projection CAM methods (see _compute_cam)


class _CountingModel(nn.Module):
    """Wraps the model for grad-cam's slow methods, reporting progress after each of their forward passes."""

    def __init__(self, model: nn.Module, expected_calls: int, progress: Progress | None) -> None:
        super().__init__()
        self.inner = model
        self.expected_calls = max(1, expected_calls)
        self.calls = 0
        self.progress = progress

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        self.calls += 1
        _report(self.progress, min(0.99, self.calls / self.expected_calls))
        return out


def _compute_cam(
    spec: CamMethod,
    model: nn.Module,
    module: nn.Module,
    batch: torch.Tensor,
    index: int,
    activations: torch.Tensor,
    grads: torch.Tensor | None,
    progress: Progress | None,
) -> np.ndarray:
    """The grad-cam package's map for captured ``activations`` (and ``grads``), as its ``forward`` makes it."""
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.image import scale_cam_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam_class: Any = getattr(pytorch_grad_cam, spec.class_name)
    targets = [ClassifierOutputTarget(index)]
    act = activations.float().cpu().numpy()  # (1, C, h, w)
    grad = None if grads is None else grads.float().cpu().numpy()
    channels = act.shape[1]
    # target_layers=[]: the constructor then registers no hooks of its own; we pass the layer per call.
    # (The constructor also calls model.eval(): harmless here, preserved_state restores the flags.)
    if spec.key == "scorecam":
        cam_object = cam_class(_CountingModel(model, math.ceil(channels / _SCORECAM_BATCH), progress), target_layers=[])
        raw = cam_object.get_cam_image(batch, module, targets, act, grad, False)
    elif spec.key == "ablationcam":
        cam_object, raw = _ablation_cam(cam_class, model, module, batch, targets, act, progress)
    else:
        # These methods read only the captured activations and gradients, never the model, and the package's
        # constructor calls model.eval() (~6 ms on SE-DenseNet-121's ~1,400 modules): give it a stand-in.
        cam_object = cam_class(_STAND_IN, target_layers=[])
        raw = cam_object.get_cam_image(batch, module, targets, act, grad, False)
    # The rest is BaseCAM.compute_cam_per_layer + aggregate_multi_layers for our one layer, via its helpers.
    height, width = batch.shape[-2:]
    per_layer = scale_cam_image(np.maximum(raw, 0), (width, height))
    cam = cam_object.aggregate_multi_layers([per_layer[:, None, :]])[0]
    return np.clip(np.nan_to_num(cam), 0.0, 1.0).astype(np.float32)


def _ablation_cam(
    cam_class: Any,
    model: nn.Module,
    module: nn.Module,
    batch: torch.Tensor,
    targets: list[Any],
    act: np.ndarray,
    progress: Progress | None,
) -> tuple[Any, np.ndarray]:
    from pytorch_grad_cam.ablation_layer import AblationLayer
    from pytorch_grad_cam.utils.find_layers import replace_layer_recursive

    # A fresh AblationLayer per call: the package's default argument is one instance shared by every caller.
    ablation = AblationLayer()
    expected = 1 + math.ceil(act.shape[1] / _ABLATIONCAM_BATCH)
    wrapped = _CountingModel(model, expected, progress)
    hooks_before = set(module._forward_hooks)
    try:
        cam_object = cam_class(wrapped, target_layers=[], ablation_layer=ablation, batch_size=_ABLATIONCAM_BATCH)
        return cam_object, cam_object.get_cam_image(batch, module, targets, act, None, False)
    finally:
        # AblationCAM swaps the layer for its AblationLayer and adds a hook; after an error it would leave both.
        if any(m is ablation for m in model.modules()):
            replace_layer_recursive(model, ablation, module)
        for key in set(module._forward_hooks) - hooks_before:
            del module._forward_hooks[key]
