"""Is the heatmap faithful? Hide the area it highlights most and see how much the prediction falls.

Uses the grad-cam package's own ROAD metric (Rong et al., "A Consistent and Efficient Evaluation Strategy for
Attribution Methods", 2022): the hidden pixels are filled in from their neighbours (noisy linear imputation),
not blacked out, so the model is not shown an unnatural black hole. Two runs of it: hiding the most highlighted
``fraction`` of the pixels (MoRF) and, as the control, the least highlighted ``fraction`` (LeRF). A faithful map
makes the first drop much larger than the second; ROAD's combined score is half their difference.

Costs two imputations (a sparse linear solve each) and four forward passes, no backward: a few times one
analysis, so the app computes it only when asked. pytorch_grad_cam is imported lazily.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from .calibration import calibrated_probabilities
from .card import ModelCard
from .explain import _preprocess, _target_index, _to_model  # the exact preprocessing of analyze()
from .hooks import model_lock, preserved_state

_SEED = 0  # ROAD adds a little noise to the imputed pixels: seeded, so a photo always gets the same score


@dataclass(frozen=True)
class Faithfulness:
    """How the target class's probability changes when parts of the photo chosen by the heatmap are hidden."""

    target: str
    fraction: float  # share of the pixels hidden, e.g. 0.2
    before: float  # probability of ``target`` on the photo as it is
    after_most: float  # ... with the most highlighted ``fraction`` hidden (ROAD MoRF)
    after_least: float  # ... with the least highlighted ``fraction`` hidden (ROAD LeRF), the control
    milliseconds: float

    @property
    def score(self) -> float:
        """ROAD's combined score at this one threshold, (LeRF change - MoRF change) / 2, in probability units:
        positive when hiding what the map highlights hurts more than hiding what it ignores."""
        return (self.after_least - self.after_most) / 2


def faithfulness(
    model: nn.Module,
    card: ModelCard,
    image: Image.Image,
    cam: np.ndarray,
    target: str | int,
    *,
    fraction: float = 0.2,
) -> Faithfulness:
    """ROAD's most- and least-relevant-first confidence changes for a heatmap of ``image``.

    Args:
        model: the model the map explains; left as found.
        card: its card (preprocessing and probability scale of ``analyze``).
        image: the photo, as given to ``analyze``.
        cam: (H, W) map in [0, 1] at the model input size (``Analysis.cam``).
        target: the class the map explains (label or index).
        fraction: share of the pixels to hide, in (0, 1).
    """
    from pytorch_grad_cam.metrics.road import ROADLeastRelevantFirst, ROADMostRelevantFirst

    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    index = _target_index(card, target)
    cams = np.asarray(cam, dtype=np.float32)
    if cams.shape != tuple(card.input_size):
        raise ValueError(f"the map is {cams.shape}, the model input {tuple(card.input_size)}")
    start = time.perf_counter()
    percentile = 100 * (1 - fraction)

    def probability(output: torch.Tensor) -> torch.Tensor:  # grad-cam calls targets on one sample's logits
        return calibrated_probabilities(output[None].float(), card).cpu()[0, index]

    with torch.inference_mode(False), model_lock(model), preserved_state(model):
        batch, _ = _preprocess(card, image)
        batch = _to_model(batch, model, next(model.parameters()))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_SEED)
            most = ROADMostRelevantFirst(percentile)(batch, cams[None], [probability], model, return_diff=False)
            least = ROADLeastRelevantFirst(percentile)(batch, cams[None], [probability], model, return_diff=False)
        with torch.no_grad():
            before = calibrated_probabilities(model(batch), card).cpu()[0, index]
    return Faithfulness(
        target=card.labels[index],
        fraction=float(fraction),
        before=float(before),
        after_most=float(np.asarray(most).reshape(-1)[0]),
        after_least=float(np.asarray(least).reshape(-1)[0]),
        milliseconds=(time.perf_counter() - start) * 1e3,
    )
