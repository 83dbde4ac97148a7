"""How familiar a photo looks to a model: class-conditional Mahalanobis distances on pooled features of every stage.

The features ("sites") are read by forward hooks in the analysis's one forward pass (no second forward): the
output of the stem and of each of the four stages, pooled to one mean per channel (B, C), as in Lee et al.
(2018). Site names are ``stage:<module path>`` (``stage:layer2``, ``stage:features.denseblock2``). An SE block's
squeeze vector (named after the block, ``SE_3_2``) can be a site too: the statistics shipped before this method
used only those, and they still load and score.

For each site the statistics fitted on the Train part of the checkpoint's fold (tied covariance, one mean per
class) give the distance to the nearest class. With a few hundred training photos and up to 1,024 channels a
full covariance overfits, so it is a probabilistic PCA (Tipping & Bishop): the top ``k`` directions with their
variances plus one residual variance for the rest. Each site's log distance is standardised with the mean and
standard deviation of out-of-fold Train distances (5-fold cross-fitting inside Train: the scale of photos the
statistics did not see, without using Valid), and the sites' z-scores are averaged. ``familiarity`` is the
share of Valid photos that look *less* familiar than this one (1: as familiar as the most typical Valid photo,
0: stranger than every one); ``unfamiliar`` is ``familiarity`` below the threshold that passes a chosen share
(90 % by default) of Valid photos. Which sites and which combination were chosen on dev sets only
(``scripts/familiarity_study.py``; README, "How the familiarity method was chosen").

Optionally (``fit_statistics(..., outliers=...)``, ``python -m senet.trust --outliers DIR...``) an
outlier-exposure head on the same features joins the score (``senet.outlier_head``): a photo's strangeness is
then the larger of the two, each standardised on Valid. The shipped checkpoints do not use it (README).

Everything is stored as float32 tensors under ``familiarity.`` in the checkpoint's safetensors file; models
loaded without them give ``None`` (the app then says nothing).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from .family import FamilyModel
from .hooks import HookSet
from .layers import se_blocks
from .outlier_head import DEFAULT_L2, OUTLIER_PREFIX, OutlierHead, fit_outlier_head

PREFIX = "familiarity."
STAGE_PREFIX = "stage:"  # site names of pooled stage outputs; SE squeezes use the block's name ("SE_3_2")
DEFAULT_COMPONENTS = 32
DEFAULT_VALID_PASS = 0.90  # chosen on the dev halves of the natural and foreign sets (README)
CROSS_FIT_FOLDS = 5


@dataclass(frozen=True)
class Site:
    """The fitted statistics of one feature (an SE block's squeeze or a stage's pooled output)."""

    means: torch.Tensor  # (K, d) class means
    basis: torch.Tensor  # (d, k) orthonormal principal directions of the within-class scatter
    variances: torch.Tensor  # (k,) variance along each direction
    residual: torch.Tensor  # () variance of everything outside the basis
    location: torch.Tensor  # () mean of the out-of-fold Train log distance (Valid's in older statistics)
    scale: torch.Tensor  # () its standard deviation

    def log_distance(self, features: torch.Tensor) -> torch.Tensor:
        """(B, d) features -> (B,) log of the Mahalanobis distance to the nearest class mean."""
        centred = features.double()[:, None, :] - self.means.double()[None]  # (B, K, d)
        projected = centred @ self.basis.double()  # (B, K, k)
        inside = (projected.square() / self.variances.double()).sum(-1)
        outside = (centred.square().sum(-1) - projected.square().sum(-1)).clamp_min(0) / self.residual.double()
        return (inside + outside).min(dim=1).values.clamp_min(1e-12).log()


@dataclass(frozen=True)
class FamiliarityStatistics:
    """Fitted sites, the Valid scores that define the familiarity scale, and the threshold."""

    sites: Mapping[str, Site]  # SE block name ("SE_3_2") or "stage:<module path>" -> Site
    valid_scores: torch.Tensor  # (N,) sorted combined scores of the Valid photos (higher: stranger)
    threshold: torch.Tensor  # () familiarity below this is unfamiliar
    outlier: OutlierHead | None = None  # outlier exposure (senet.outlier_head); None in statistics fitted without

    def score(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B,) combined strangeness: the mean over sites of the standardised log distance, and with an outlier
        head the larger of that (standardised on Valid) and the head's z-score."""
        parts = [(site.log_distance(features[name]) - site.location.double()) / site.scale.double()
                 for name, site in self.sites.items()]
        mahalanobis = torch.stack(parts, dim=1).mean(dim=1)
        return mahalanobis if self.outlier is None else self.outlier.combine(mahalanobis, features)

    def familiarity(self, scores: torch.Tensor) -> torch.Tensor:
        """(B,) the share of Valid photos whose score is higher (stranger) than each of ``scores``."""
        reference = self.valid_scores.double()
        # The Valid scores are stored in float32: a tolerance keeps a Valid photo from counting its own rounded
        # copy as stranger than itself.
        stranger = len(reference) - torch.searchsorted(reference, scores.double() + 1e-5, right=True)
        return stranger.double() / len(reference)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """Flat ``familiarity.*`` float32 tensors for the safetensors file."""
        out = {f"{PREFIX}valid_scores": self.valid_scores, f"{PREFIX}threshold": self.threshold}
        for name, site in self.sites.items():
            for field in ("means", "basis", "variances", "residual", "location", "scale"):
                out[f"{PREFIX}site.{name}.{field}"] = getattr(site, field)
        if self.outlier is not None:
            out |= self.outlier.to_tensors()
        return {key: value.detach().to("cpu", torch.float32).contiguous() for key, value in out.items()}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor]) -> FamiliarityStatistics:
        """The inverse of ``to_tensors``; raises ValueError when a tensor is missing or misshapen."""
        fields = ("means", "basis", "variances", "residual", "location", "scale")
        names = sorted({key[len(PREFIX) + 5:].rsplit(".", 1)[0] for key in tensors if key.startswith(PREFIX + "site.")})
        try:
            sites = {name: Site(**{f: tensors[f"{PREFIX}site.{name}.{f}"].float() for f in fields}) for name in names}
            valid, threshold = tensors[f"{PREFIX}valid_scores"].float(), tensors[f"{PREFIX}threshold"].float()
        except KeyError as error:
            raise ValueError(f"familiarity statistics lack {error.args[0]}") from None
        outlier = OutlierHead.from_tensors({k: v for k, v in tensors.items() if k.startswith(OUTLIER_PREFIX)})
        used = {f"{PREFIX}site.{name}.{f}" for name in names for f in fields}
        used |= {key for key in tensors if key.startswith(OUTLIER_PREFIX)}
        unknown = sorted(set(tensors) - used - {f"{PREFIX}valid_scores", f"{PREFIX}threshold"})
        if unknown:
            raise ValueError(f"unknown familiarity tensors {unknown[:3]}")
        for name, site in sites.items():
            if site.basis.ndim != 2 or site.means.ndim != 2:
                raise ValueError(f"familiarity site {name}: means and basis must be matrices")
            d, k = site.basis.shape
            if site.means.shape[1] != d or site.variances.shape != (k,):
                raise ValueError(f"familiarity site {name}: means {tuple(site.means.shape)}, basis {(d, k)} and "
                                 f"variances {tuple(site.variances.shape)} do not fit together")
        if not sites or valid.ndim != 1 or not len(valid):
            raise ValueError("familiarity statistics need at least one site and the Valid scores")
        if outlier is not None:
            stray = sorted(set(outlier.weights) - set(sites))
            if stray:
                raise ValueError(f"familiarity outlier weights for unknown sites {stray[:3]}")
            wrong = [name for name, weight in outlier.weights.items() if len(weight) != sites[name].means.shape[1]]
            if wrong:
                raise ValueError(f"familiarity outlier weights of {wrong[:3]} do not fit their sites")
        return cls(sites, valid, threshold, outlier)

    def with_valid_pass(self, valid_pass: float) -> FamiliarityStatistics:
        """The same statistics with the threshold that passes ``valid_pass`` of the Valid photos."""
        return FamiliarityStatistics(self.sites, self.valid_scores, valid_threshold(len(self.valid_scores), valid_pass),
                                     self.outlier)

    @property
    def blocks(self) -> set[str]:
        """The site names (SE blocks and ``stage:`` sites) a forward pass must record."""
        return set(self.sites)


def is_statistics_key(key: str) -> bool:
    """Whether a safetensors key belongs to the familiarity statistics (not to the model)."""
    return key.startswith(PREFIX)


# --- which statistics belong to which loaded model --------------------------------------------------------

_ATTACHED: weakref.WeakKeyDictionary[nn.Module, FamiliarityStatistics] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def attach(model: nn.Module, statistics: FamiliarityStatistics | None) -> None:
    """Remember ``statistics`` for ``model`` (``None`` forgets them); load_checkpoint does this."""
    with _GUARD:
        if statistics is None:
            _ATTACHED.pop(model, None)
        else:
            _ATTACHED[model] = statistics


def statistics_for(model: nn.Module) -> FamiliarityStatistics | None:
    """The statistics attached to ``model``, or None (checkpoints without them, models built in code)."""
    with _GUARD:
        return _ATTACHED.get(model)


# --- reading the features in a forward pass -----------------------------------------------------------------


def stage_sites(model: nn.Module) -> list[str]:
    """The ``stage:<module path>`` site names of ``model``: its stem, then its four stages (none outside the families).

    The stem is the module just before the first stage in their parent (ResNet ``maxpool``, DenseNet
    ``features.pool0``): the family names its stages, and every family feeds the first one from its stem.
    """
    if not isinstance(model, FamilyModel):
        return []
    stages = model.stage_names()
    parent_path, _, first = stages[0].rpartition(".")
    children = [name for name, _ in (model.get_submodule(parent_path) if parent_path else model).named_children()]
    position = children.index(first)
    stem = [f"{parent_path}.{children[position - 1]}".lstrip(".")] if position > 0 else []
    return [STAGE_PREFIX + path for path in stem + stages]


class FeatureRecorder(HookSet):
    """Familiarity features of one forward pass, keyed by site name: (B, C) float32 on the CPU.

    ``stage:<module path>`` names record that module's output averaged over its spatial positions (one mean per
    channel); SE block names ("SE_3_2") record the block's squeeze vector.

    Args:
        model: the network.
        blocks: site names to record; default every stage site and every SE block.
    """

    def __init__(self, model: nn.Module, blocks: Iterable[str] | None = None) -> None:
        super().__init__()
        wanted = None if blocks is None else set(blocks)
        self.blocks = [] if wanted == set() else [info for info in se_blocks(model)
                                                  if wanted is None or info.name in wanted]
        names = stage_sites(model) if wanted is None else sorted(n for n in wanted if n.startswith(STAGE_PREFIX))
        self.stages = {}
        for name in names:  # get_submodule: a dict of all ~1,400 DenseNet modules cost ~1 ms per analysis
            try:
                self.stages[name] = model.get_submodule(name[len(STAGE_PREFIX):])
            except AttributeError:
                raise ValueError(f"the model has no module for the familiarity site {name}") from None
        self.values: dict[str, torch.Tensor] = {}

    def __enter__(self) -> FeatureRecorder:
        super().__enter__()
        return self

    def _register(self) -> None:
        for info in self.blocks:
            # fc1's input is the squeeze the block computes anyway: reading it costs no arithmetic
            self._handles.append(info.module.fc1.register_forward_pre_hook(partial(self._save, info.name)))
        for name, module in self.stages.items():
            self._handles.append(module.register_forward_hook(partial(self._pool, name)))

    def _save(self, name: str, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self.values[name] = inputs[0].detach().float().cpu()  # (B, C)

    def _pool(self, name: str, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        # read at once: DenseNet's in-place ReLUs may overwrite the map later in the pass
        self.values[name] = output.detach().float().mean(dim=(2, 3)).cpu()  # (B, C, H, W) -> (B, C)


class FamiliarityRecorder(FeatureRecorder):
    """Records what ``statistics`` need during a forward pass; ``result()`` then gives (familiarity, unfamiliar).

    With ``statistics=None`` it registers no hook and ``result()`` is None.
    """

    def __init__(self, model: nn.Module, statistics: FamiliarityStatistics | None) -> None:
        super().__init__(model, blocks=() if statistics is None else statistics.blocks)
        self.statistics = statistics

    def __enter__(self) -> FamiliarityRecorder:
        super().__enter__()
        return self

    def results(self) -> list[tuple[float, bool]] | None:
        """(familiarity, unfamiliar) of every image of the batch, or None without statistics."""
        if self.statistics is None:
            return None
        missing = sorted(set(self.statistics.sites) - set(self.values))
        if missing:
            raise RuntimeError(f"familiarity features {missing[:3]} were not recorded in the forward pass")
        threshold = float(self.statistics.threshold)
        values = self.statistics.familiarity(self.statistics.score(self.values))
        return [(float(value), float(value) < threshold) for value in values]

    def result(self) -> tuple[float, bool] | None:
        """(familiarity, unfamiliar) of the first image of the batch, or None without statistics."""
        found = self.results()
        return None if found is None else found[0]


def familiarity_recorder(model: nn.Module) -> FamiliarityRecorder:
    """A recorder for the statistics attached to ``model`` (a no-op one when it has none)."""
    return FamiliarityRecorder(model, statistics_for(model))


# --- fitting -------------------------------------------------------------------------------------------------


def fit_site(features: torch.Tensor, targets: torch.Tensor, num_classes: int,
             components: int = DEFAULT_COMPONENTS) -> Site:
    """Class means and a probabilistic-PCA tied covariance of (N, d) Train ``features``."""
    x = features.double()
    targets = targets.long()
    means = torch.stack([x[targets == c].mean(0) if (targets == c).any() else x.mean(0)
                         for c in range(num_classes)])
    centred = x - means[targets]
    covariance = centred.T @ centred / max(1, len(x) - num_classes)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    eigenvalues, eigenvectors = eigenvalues.flip(0).clamp_min(0), eigenvectors.flip(1)
    k = max(1, min(components, x.shape[1] - 1, len(x) - num_classes - 1))
    floor = 1e-6 * float(eigenvalues[0]) + 1e-12  # keeps a dead channel from dividing by zero
    residual = eigenvalues[k:].mean() if x.shape[1] > k else torch.tensor(floor, dtype=torch.float64)
    one = torch.ones((), dtype=torch.float64)
    return Site(means, eigenvectors[:, :k].contiguous(), eigenvalues[:k].clamp_min(floor),
                residual.clamp_min(floor), 0 * one, one)


def out_of_fold_log_distances(features: torch.Tensor, targets: torch.Tensor, num_classes: int, components: int,
                              folds: int = CROSS_FIT_FOLDS) -> torch.Tensor:
    """(N,) log distance of every Train photo under statistics fitted on the other folds of Train (seeded)."""
    order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(0))
    out = torch.empty(len(targets), dtype=torch.float64)
    for part in order.chunk(min(folds, len(targets))):
        keep = torch.ones(len(targets), dtype=torch.bool)
        keep[part] = False
        out[part] = fit_site(features[keep], targets[keep], num_classes, components).log_distance(features[part])
    return out


def fit_statistics(train: Mapping[str, torch.Tensor], train_targets: torch.Tensor, valid: Mapping[str, torch.Tensor],
                   num_classes: int, *, components: int = DEFAULT_COMPONENTS,
                   valid_pass: float = DEFAULT_VALID_PASS, sites: Sequence[str] | None = None,
                   outliers: Mapping[str, torch.Tensor] | None = None,
                   train_extra: Mapping[str, torch.Tensor] | None = None, l2: float = DEFAULT_L2
                   ) -> FamiliarityStatistics:
    """Fit and standardise every site on Train (cross-fitted), then set the threshold on Valid.

    Args:
        train / valid: site name -> (N, d) features, as recorded by FeatureRecorder.
        train_targets: (N,) class indices of the Train photos.
        valid_pass: the share of Valid photos that must not be flagged.
        sites: the site names to use; default all of ``train``.
        outliers: features of auxiliary outlier photos; given, an outlier-exposure head is fitted too
            (``senet.outlier_head``: Train and ``train_extra`` against ``outliers``, penalty ``l2``).
        train_extra: more in-distribution features for the head only (the Train photos' 112-px copies).
    """
    names = list(sites or train)
    fitted = {}
    for name in names:
        site = fit_site(train[name], train_targets, num_classes, components)
        reference = out_of_fold_log_distances(train[name], train_targets, num_classes, components)
        fitted[name] = Site(site.means, site.basis, site.variances, site.residual, reference.mean(),
                            reference.std().clamp_min(1e-6))
    provisional = FamiliarityStatistics(fitted, torch.zeros(1), torch.zeros(()))
    valid_scores = provisional.score({name: valid[name] for name in names})
    head = None
    if outliers is not None:
        inside = {name: torch.cat([train[name], train_extra[name]]) if train_extra else train[name] for name in names}
        head = fit_outlier_head(inside, {name: outliers[name] for name in names}, {name: valid[name] for name in names},
                                valid_scores, l2=l2)
        valid_scores = FamiliarityStatistics(fitted, valid_scores, torch.zeros(()), head).score(valid)
    valid_scores = valid_scores.sort().values
    return FamiliarityStatistics(fitted, valid_scores.float(), valid_threshold(len(valid_scores), valid_pass), head)


def valid_threshold(count: int, valid_pass: float) -> torch.Tensor:
    """The familiarity threshold that flags the ``1 - valid_pass`` strangest of ``count`` Valid photos.

    A Valid photo's familiarity is k / count (k Valid photos are stranger); the threshold sits half a step below
    the level of the first photo that must pass, so float32 storage cannot move a photo across it.
    """
    allowed = int(round((1 - valid_pass) * count, 6))
    return torch.as_tensor((allowed - 0.5) / count if allowed > 0 else -1.0)
