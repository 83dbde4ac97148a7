"""Compare familiarity detectors on the DEV sets only, from features cached by familiarity_features.py.

    python scripts/familiarity_study.py se_resnet18_msld_v2 se_densenet121_msld_v2_fold2

Every detector is fitted on the fold's Train part and thresholded on its Valid part (a chosen share of Valid
photos passes). Printed per detector: the share flagged on Valid (by construction about 1 - pass), on the dev
natural photos (half of Imagewoof), on the dev half of the foreign set, and on the Valid photos shrunk to 112 px
(a control: a detector that flags those reacts to resolution, not to content), and the statistics' size.
Held-out sets (the other Imagewoof half, Imagenette, the foreign report half) and the Test part are not read.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEV_SETS = ("valid", "woof_dev", "foreign_dev", "valid_lowres")


@dataclass
class Gauss:
    means: torch.Tensor  # (K, d)
    basis: torch.Tensor  # (d, k)
    variances: torch.Tensor  # (k,)
    residual: torch.Tensor  # ()

    def log_distance(self, x: torch.Tensor) -> torch.Tensor:
        centred = x[:, None, :] - self.means[None]
        projected = centred @ self.basis
        inside = (projected.square() / self.variances).sum(-1)
        outside = (centred.square().sum(-1) - projected.square().sum(-1)).clamp_min(0) / self.residual
        return (inside + outside).min(dim=1).values.clamp_min(1e-12).log()

    @property
    def size(self) -> int:
        return self.means.numel() + self.basis.numel() + self.variances.numel() + 1


def fit_gauss(x: torch.Tensor, y: torch.Tensor, classes: int, *, k: int, shrink: bool, classwise: bool) -> Gauss:
    x = x.double()
    if classwise:
        means = torch.stack([x[y == c].mean(0) if (y == c).any() else x.mean(0) for c in range(classes)])
        centred = x - means[y]
    else:
        means = x.mean(0, keepdim=True)
        centred = x - means
    n, d = centred.shape
    cov = centred.T @ centred / max(1, n - (classes if classwise else 1))
    eigenvalues, vectors = torch.linalg.eigh(cov)
    eigenvalues, vectors = eigenvalues.flip(0).clamp_min(0), vectors.flip(1)
    if shrink:  # Ledoit-Wolf towards mu * I
        mu = eigenvalues.sum() / d
        delta = ((cov - mu * torch.eye(d, dtype=cov.dtype)).square().sum()) / d
        beta = ((centred.square().sum(1).square().sum() / n - cov.square().sum()) / (n * d)).clamp_min(0)
        alpha = float(min(beta, delta) / delta)
        eigenvalues = (1 - alpha) * eigenvalues + alpha * mu
    k = max(1, min(k, d - 1, n - 2)) if k < d else d
    floor = 1e-6 * float(eigenvalues[0]) + 1e-12
    residual = eigenvalues[k:].mean() if d > k else torch.tensor(1.0, dtype=torch.float64)
    return Gauss(means, vectors[:, :k].contiguous(), eigenvalues[:k].clamp_min(floor), residual.clamp_min(floor))


Features = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Method:
    name: str
    sites: Callable[[Features], dict[str, torch.Tensor]]  # set features -> site -> (N, d)
    k: int = 32
    shrink: bool = False
    classwise: bool = True
    combine: str = "mean"  # mean | max
    standardise: str = "valid"  # valid | traincv


def stage_sites(names: tuple[str, ...], *, log_std: bool = True, split: bool = False):
    def make(f: Features) -> dict[str, torch.Tensor]:
        out = {}
        for name in names:
            mean, std = f[f"{name}.mean"], f[f"{name}.std"]
            std = std.clamp_min(1e-6).log() if log_std else std
            if split:
                out[f"{name}.mean"], out[f"{name}.std"] = mean, std
            else:
                out[name] = torch.cat([mean, std], 1)
        return out
    return make


def se_sites(f: Features) -> dict[str, torch.Tensor]:
    return {key: value for key, value in f.items() if key.startswith("se.")}


def energy_site(f: Features) -> dict[str, torch.Tensor]:
    return {"energy": -torch.logsumexp(f["logits"].double(), 1, keepdim=True)}


def union(*makers):
    def make(f: Features) -> dict[str, torch.Tensor]:
        out = {}
        for maker in makers:
            out |= maker(f)
        return out
    return make


def fit_and_score(method: Method, data: Mapping, valid_pass: float) -> tuple[dict[str, float], int]:
    y = data["labels"]["train"].long()
    classes = int(data["train"]["logits"].shape[1])
    train, valid = method.sites(data["train"]), method.sites(data["valid"])
    fitted, location, scale = {}, {}, {}
    for name in train:
        kw = dict(k=method.k, shrink=method.shrink, classwise=method.classwise and name != "energy")
        if name == "energy":
            fitted[name] = None
            reference = train[name][:, 0].double()
        else:
            fitted[name] = fit_gauss(train[name], y, classes, **kw)
            if method.standardise == "traincv":
                order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
                reference = torch.empty(len(y), dtype=torch.float64)
                for part in order.chunk(5):
                    keep = torch.ones(len(y), dtype=torch.bool)
                    keep[part] = False
                    reference[part] = fit_gauss(train[name][keep], y[keep], classes, **kw).log_distance(
                        train[name][part].double())
            else:
                reference = fitted[name].log_distance(valid[name].double())
        if name == "energy" and method.standardise == "valid":
            reference = valid[name][:, 0].double()
        location[name], scale[name] = reference.mean(), reference.std().clamp_min(1e-6)

    def score(features: Features) -> torch.Tensor:
        sites = method.sites(features)
        parts = []
        for name, site in fitted.items():
            raw = sites[name][:, 0].double() if site is None else site.log_distance(sites[name].double())
            parts.append((raw - location[name]) / scale[name])
        stacked = torch.stack(parts, 1)
        return stacked.max(1).values if method.combine == "max" else stacked.mean(1)

    valid_scores = score(data["valid"]).sort().values
    # the library's rule (senet.familiarity.valid_threshold): flagged when fewer than round((1 - pass) * n) Valid
    # photos are stranger, i.e. a conformal p-value of at most 1 - pass
    allowed = int(round((1 - valid_pass) * len(valid_scores), 6))
    threshold = valid_scores[len(valid_scores) - allowed] if allowed else torch.tensor(float("inf"))
    rates = {name: float((score(data[name]) > threshold).double().mean()) for name in DEV_SETS if name in data}
    size = sum(site.size if site is not None else 1 for site in fitted.values())
    return rates, size


STAGES = ("stem", "stage1", "stage2", "stage3", "stage4")


def stage_means(names: tuple[str, ...]):
    def make(f: Features) -> dict[str, torch.Tensor]:
        return {f"{name}.mean": f[f"{name}.mean"] for name in names}
    return make


ALL = ("input",) + STAGES


def methods() -> list[Method]:
    """The detectors compared (README: "How the familiarity method was chosen")."""
    return [
        Method("A SE squeezes, z on Valid (shipped before)", se_sites),
        Method("B SE squeezes, z on Train (5-fold cross-fit)", se_sites, standardise="traincv"),
        Method("C input colour mean+std", stage_sites(("input",))),
        Method("D stem+stages 1-4 mean+log std, k=8, mean", stage_sites(ALL), k=8),
        Method("E stem+stages 1-4 mean+log std, k=32, mean", stage_sites(ALL)),
        Method("F stem+stages 1-4 mean+log std, k=32, max", stage_sites(ALL), combine="max"),
        Method("G stem+stages 1-4 mean+log std, k=32 Ledoit-Wolf, max", stage_sites(ALL), shrink=True, combine="max"),
        Method("H stem+stages 1-4 mean+log std, k=64 Ledoit-Wolf, mean", stage_sites(ALL), k=64, shrink=True),
        Method("I stem+stages 1-4 mean+log std, one Gaussian (not per class), max", stage_sites(ALL),
               classwise=False, combine="max"),
        Method("J stem+stages 1-4 mean+raw std (one site each), z on Train, mean",
               stage_sites(ALL[1:], log_std=False, split=True), standardise="traincv"),
        Method("K stem+stages 1-4 means, z on Train, mean", stage_means(STAGES), standardise="traincv"),
        Method("L stem+stages 1-4 means + energy, z on Train, max", union(stage_means(STAGES), energy_site),
               standardise="traincv", combine="max"),
        Method("M SE squeezes + stem+stages 1-4 mean+raw std, z on Train, mean",
               union(se_sites, stage_sites(STAGES, log_std=False, split=True)), standardise="traincv"),
        Method("N SE squeezes + stem+stages 1-4 means, z on Train, max", union(se_sites, stage_means(STAGES)),
               standardise="traincv", combine="max"),
        Method("O SE squeezes + stages 1-4 means (no stem), z on Train, mean",
               union(se_sites, stage_means(STAGES[1:])), standardise="traincv"),
        Method("R SE squeezes + stages 1-4 means, k=64, z on Train, mean",
               union(se_sites, stage_means(STAGES[1:])), k=64, standardise="traincv"),
        Method("S SE squeezes + stages 1-4 means, k=128, z on Train, mean",
               union(se_sites, stage_means(STAGES[1:])), k=128, standardise="traincv"),
        Method("T SE squeezes, k=128, z on Train, mean", se_sites, k=128, standardise="traincv"),
        Method("P SE squeezes + stem+stages 1-4 means, z on Train, mean", union(se_sites, stage_means(STAGES)),
               standardise="traincv"),
        Method("Q SE squeezes + stem+stages 1-4 means + energy, z on Train, mean",
               union(se_sites, stage_means(STAGES), energy_site), standardise="traincv"),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stems", nargs="+")
    p.add_argument("--valid-pass", type=float, nargs="*", default=[0.90])
    p.add_argument("--only", help="only methods whose name contains this")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    for stem, valid_pass in itertools.product(args.stems, args.valid_pass):
        data = torch.load(ROOT / ".cache/ood" / f"{stem}.pt")
        data = {key: value for key, value in data.items() if key in DEV_SETS + ("train", "labels")}
        print(f"\n{stem}, {valid_pass:.0%} of Valid pass (dev sets only)")
        print("| method | Valid | woof_dev | foreign_dev | valid_lowres (control) | floats |")
        print("|---|---|---|---|---|---|")
        for method in methods():
            if args.only and args.only not in method.name:
                continue
            rates, size = fit_and_score(method, data, valid_pass)
            print(f"| {method.name} | " + " | ".join(f"{rates.get(n, float('nan')) * 100:.1f}" for n in DEV_SETS)
                  + f" | {size:,} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
