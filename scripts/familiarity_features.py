"""Extract and cache the candidate familiarity features of a checkpoint for the method study (not used by the app).

    OMP_NUM_THREADS=1 python scripts/familiarity_features.py --checkpoint checkpoints/se_resnet18_msld_v2

One forward pass per photo with hooks that record, for every candidate site, what a detector could use:

- ``input.*``: per-channel mean and std of the normalised input tensor (colour);
- ``stem.*`` and ``stage<k>.*``: per-channel spatial mean and std of the stem output and of every stage's output;
- ``se.<block>``: the squeeze vector of the SE blocks the current method uses;
- ``logits``.

Photo sets (fixed seeds; which are dev and which are held out is decided here, before anything is measured):

- ``train`` / ``valid`` / ``test``: the checkpoint's fold (``train_aug``: two copies of every Train photo augmented
  as training augments them (``senet.augment``, no mixing; seeded), more in-distribution variety for outlier
  exposure; ``train_lowres``: the Train photos shrunk like the
  natural corpora, in-distribution examples for outlier exposure; ``test_lowres``: the Test photos shrunk to 112 px and
  JPEG-compressed like the natural corpora, a control for "flags low resolution" rather than "flags non-skin");
- ``woof_dev`` / ``woof_held``: Imagewoof split in two halves with seed 0, up to ``--natural`` photos each;
- ``nette_held``: Imagenette (held out as a whole);
- ``foreign_dev`` / ``foreign_report``: the two halves of ``scripts/foreign_images.py``;
- ``synthetic``: the 420 procedural pictures of ``scripts/synthetic_outliers.py`` (dev: outlier exposure, round 3);
- ``foreign_third``: ``scripts/third_foreign_set.py`` (held out; built before round 3, measured once after it).

Saved as ``.cache/ood/<stem>.pt`` (a dict of set -> feature name -> (N, d) float32, plus ``<set>.labels``).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from foreign_images import foreign_images  # noqa: E402
from synthetic_outliers import COUNT as SYNTHETIC_COUNT  # noqa: E402
from synthetic_outliers import synthetic_pictures  # noqa: E402
from third_foreign_set import third_foreign_images  # noqa: E402

from senet import load_checkpoint  # noqa: E402
from senet.data import IMAGE_SUFFIXES, label_indices, open_rgb, read_folds  # noqa: E402
from senet.family import as_family  # noqa: E402
from senet.hooks import preserved_state  # noqa: E402
from senet.layers import se_blocks  # noqa: E402
from senet.trust import augmented_copy, augmented_samples, card_fold, shrunk_copy  # noqa: E402


def stage_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Stem and stage outputs: ResNet maxpool, layer1-4; DenseNet pool0, denseblock1-4."""
    named = dict(model.named_modules())
    if "layer1" in named:
        return {"stem": named["maxpool"], **{f"stage{k}": named[f"layer{k}"] for k in range(1, 5)}}
    return {"stem": named["features.pool0"], **{f"stage{k}": named[f"features.denseblock{k}"] for k in range(1, 5)}}


class Recorder:
    def __init__(self, model: nn.Module, blocks: Sequence[str]) -> None:
        self.values: dict[str, torch.Tensor] = {}
        self.handles = [model.register_forward_pre_hook(self._input)]
        for name, module in stage_modules(model).items():
            self.handles.append(module.register_forward_hook(lambda m, i, o, name=name: self._map(name, o)))
        for info in se_blocks(model):
            if info.name in blocks:
                self.handles.append(info.module.fc1.register_forward_pre_hook(
                    lambda m, i, name=info.name: self._put(f"se.{name}", i[0])))

    def _put(self, name: str, value: torch.Tensor) -> None:
        self.values.setdefault(name, []).append(value.detach().float().cpu())

    def _map(self, name: str, output: torch.Tensor) -> None:
        flat = output.detach().float().flatten(2)  # (B, C, HW)
        self._put(f"{name}.mean", flat.mean(-1))
        self._put(f"{name}.std", flat.std(-1))

    def _input(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self._map("input", inputs[0])

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def natural_halves(root: Path, count: int) -> dict[str, list[Path]]:
    woof = sorted(p for p in (root / "imagewoof").glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
    random.Random(0).shuffle(woof)
    half = len(woof) // 2
    nette = sorted(p for p in (root / "imagenette").glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return {"woof_dev": random.Random(1).sample(woof[:half], count),
            "woof_held": random.Random(2).sample(woof[half:], count),
            "nette_held": random.Random(3).sample(nette, count)}


def run(model: nn.Module, card, images, blocks: Sequence[str]) -> dict[str, torch.Tensor]:
    transform = card.transforms()
    recorder = Recorder(model, blocks)
    logits = []
    try:
        with preserved_state(model), torch.no_grad():
            for start in range(0, len(images), 16):
                batch = torch.stack([transform(image() if callable(image) else image)
                                     for image in images[start:start + 16]])
                logits.append(model(batch).float())
    finally:
        recorder.close()
    out = {name: torch.cat(parts) for name, parts in recorder.values.items()}
    out["logits"] = torch.cat(logits)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/msld_v2")
    p.add_argument("--pretrain", type=Path, default=ROOT.parent / "shared/data/pretrain")
    p.add_argument("--natural", type=int, default=400)
    p.add_argument("--out", type=Path, default=ROOT / ".cache/ood")
    p.add_argument("--sets", nargs="*", help="only these sets (merged into an existing cache file)")
    args = p.parse_args()
    torch.set_num_threads(1)
    stem = args.checkpoint.with_suffix("")
    model, card = load_checkpoint(stem.with_suffix(".safetensors"))
    as_family(model)
    blocks = [info.name for info in se_blocks(model)]  # what the method shipped before used
    splits = read_folds(args.data, card_fold(card))
    sets: dict[str, list] = {}
    labels: dict[str, torch.Tensor] = {}
    for part in ("train", "valid", "test"):
        samples = getattr(splits, part)
        sets[part] = [lambda s=s: open_rgb(s.path) for s in samples]
        labels[part] = label_indices(samples, card.labels)
    copied, seeds = augmented_samples(splits.train, 2)  # the photos and seeds senet.trust uses
    sets["train_aug"] = [lambda s=s, seed=seed: augmented_copy(open_rgb(s.path), seed)
                         for s, seed in zip(copied, seeds, strict=True)]
    sets["train_lowres"] = [lambda s=s: shrunk_copy(open_rgb(s.path)) for s in splits.train]  # in-dist. for OE
    sets["valid_lowres"] = [lambda s=s: shrunk_copy(open_rgb(s.path)) for s in splits.valid]
    sets["test_lowres"] = [lambda s=s: shrunk_copy(open_rgb(s.path)) for s in splits.test]
    for name, paths in natural_halves(args.pretrain, args.natural).items():
        sets[name] = [lambda q=q: open_rgb(q) for q in paths]
    for part, name in (("dev", "foreign_dev"), ("report", "foreign_report")):
        sets[name] = [image for _, image in foreign_images(part)]
    sets["synthetic"] = [image for _, image in synthetic_pictures(SYNTHETIC_COUNT)]
    sets["foreign_third"] = [image for _, image in third_foreign_images()]
    path = args.out / f"{stem.name}.pt"
    result: dict[str, object] = torch.load(path) if path.exists() else {"blocks": blocks}
    for name, images in sets.items():
        if args.sets and name not in args.sets:
            continue
        start = time.perf_counter()
        result[name] = run(model, card, images, blocks)
        print(f"{stem.name} {name}: {len(images)} photos in {time.perf_counter() - start:.0f} s", flush=True)
    result["labels"] = labels
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(result, path)


if __name__ == "__main__":
    main()
