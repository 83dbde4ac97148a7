"""Outlier exposure for the familiarity warning: a linear "skin photo or not" head on the familiarity features.

Hendrycks et al. (ICLR 2019): besides the in-distribution photos, show the detector auxiliary outliers. Here a
class-balanced, L2-regularised logistic regression separates the Train photos of the checkpoint's fold (with
their 112-px JPEG copies, so that resolution alone cannot separate them, and copies augmented as training
augments them, so that skin photos' own variety is not taken for strangeness) from outlier photos, on the same
pooled stage features the Mahalanobis sites use (no extra hook, no second forward). Its logit, standardised on
the Valid photos, is combined with the Mahalanobis score standardised on Valid by taking the larger of the two:
a photo is strange when either says so. Which outliers were allowed and how the regularisation was chosen:
README, "Outlier exposure".

The head is stored folded into one weight vector per site and a bias (the feature standardisation and the Valid
standardisation are absorbed), as float32 ``familiarity.outlier.*`` tensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

OUTLIER_PREFIX = "familiarity.outlier."
DEFAULT_L2 = 0.1  # chosen by cross-validation on the dev sets (README, "Outlier exposure")
# Round 2 of that choice: two augmented copies of every Train photo join the in-distribution side, and the
# threshold lets 95 % of Valid pass (at 90 %, 11-14 % of left-out Train photos were flagged).
AUGMENTED_COPIES = 2
OUTLIER_VALID_PASS = 0.95
LBFGS_STEPS = 200


@dataclass(frozen=True)
class OutlierHead:
    """A folded logistic-regression head and the Valid standardisation of the Mahalanobis score."""

    weights: Mapping[str, torch.Tensor]  # site -> (d,): the head's z-score is sum_site x_site @ w_site + bias
    bias: torch.Tensor  # ()
    location: torch.Tensor  # () Valid mean of the Mahalanobis score
    scale: torch.Tensor  # () its standard deviation

    def z_score(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B,) the head's logit standardised on Valid (higher: more like the outliers)."""
        total = self.bias.double()
        for name, weight in self.weights.items():
            total = total + features[name].double() @ weight.double()
        return total

    def combine(self, mahalanobis: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B,) the larger of the Valid-standardised Mahalanobis score and the head's z-score."""
        distance = (mahalanobis.double() - self.location.double()) / self.scale.double()
        return torch.maximum(distance, self.z_score(features))

    def to_tensors(self) -> dict[str, torch.Tensor]:
        out = {f"{OUTLIER_PREFIX}bias": self.bias, f"{OUTLIER_PREFIX}location": self.location,
               f"{OUTLIER_PREFIX}scale": self.scale}
        out |= {f"{OUTLIER_PREFIX}weight.{name}": weight for name, weight in self.weights.items()}
        return out

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor]) -> OutlierHead | None:
        """The head stored in ``tensors`` (None when there is none); raises ValueError when incomplete."""
        keys = [key for key in tensors if key.startswith(OUTLIER_PREFIX)]
        if not keys:
            return None
        stem = OUTLIER_PREFIX + "weight."
        weights = {key[len(stem):]: tensors[key].float() for key in sorted(keys) if key.startswith(stem)}
        try:
            scalars = {f: tensors[OUTLIER_PREFIX + f].float().reshape(()) for f in ("bias", "location", "scale")}
        except KeyError as error:
            raise ValueError(f"familiarity statistics lack {error.args[0]}") from None
        except RuntimeError:
            raise ValueError("familiarity outlier bias, location and scale must be single numbers") from None
        if not weights or any(weight.ndim != 1 for weight in weights.values()):
            raise ValueError("familiarity outlier weights must be one vector per site")
        unknown = sorted(set(keys) - {stem + name for name in weights} - {OUTLIER_PREFIX + f for f in scalars})
        if unknown:
            raise ValueError(f"unknown familiarity tensors {unknown[:3]}")
        return cls(weights, **scalars)


def _joined(features: Mapping[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    return torch.cat([features[name].double() for name in names], dim=1)


def fit_logistic(inside: torch.Tensor, outside: torch.Tensor, *, l2: float,
                 steps: int = 200) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class-balanced, L2-regularised logistic regression (outlier = 1) by LBFGS, on features standardised with
    ``inside``'s mean and standard deviation.

    Returns:
        ``center``, ``spread`` (the standardisation), ``weight`` and ``bias`` (float64) of
        ``logit = ((x - center) / spread) @ weight + bias``.
    """
    center, spread = inside.mean(0), inside.std(0).clamp_min(1e-6)
    x = (torch.cat([inside, outside]) - center) / spread
    y = torch.cat([torch.zeros(len(inside)), torch.ones(len(outside))]).double()
    balance = torch.where(y > 0, 0.5 / len(outside), 0.5 / len(inside)).double()
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([w, b], lr=1, max_iter=steps, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y, reduction="none") * balance).sum()
        loss = loss + 0.5 * l2 * w.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    return center, spread, w.detach(), b.detach()


def fit_outlier_head(inside: Mapping[str, torch.Tensor], outside: Mapping[str, torch.Tensor],
                     valid: Mapping[str, torch.Tensor], valid_mahalanobis: torch.Tensor, *, l2: float = DEFAULT_L2,
                     steps: int = LBFGS_STEPS) -> OutlierHead:
    """Fit the head on ``inside`` (label 0) vs ``outside`` (label 1) and standardise both scores on Valid.

    Args:
        inside / outside / valid: site name -> (N, d) features (the same sites in each).
        valid_mahalanobis: (N_valid,) the Mahalanobis score of the Valid photos.
        l2: the L2 penalty on the weights of the standardised features (the loss is a class-balanced mean).
    """
    names = sorted(inside)
    x_in, x_out = _joined(inside, names), _joined(outside, names)
    if not len(x_in) or not len(x_out):
        raise ValueError("outlier exposure needs in-distribution and outlier photos")
    center, spread, w, b = fit_logistic(x_in, x_out, l2=l2, steps=steps)
    folded = w / spread  # logit = x_raw @ folded + (b - center @ folded)
    bias = b - center @ folded
    valid_logits = _joined(valid, names) @ folded + bias
    mean, std = valid_logits.mean(), valid_logits.std().clamp_min(1e-6)
    sizes = [inside[name].shape[1] for name in names]
    weights = dict(zip(names, (folded / std).split(sizes), strict=True))
    reference = valid_mahalanobis.double()
    return OutlierHead({n: v.float() for n, v in weights.items()}, ((bias - mean) / std).float(),
                       reference.mean().float(), reference.std().clamp_min(1e-6).float())
