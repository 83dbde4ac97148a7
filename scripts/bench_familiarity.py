"""How often each shipped checkpoint flags photos as unfamiliar, and how calibrated its probabilities are.

    python scripts/bench_familiarity.py                      # every checkpoint with statistics in checkpoints/
    python scripts/bench_familiarity.py --natural 400 --checkpoints checkpoints/se_resnet18_msld_v2

Prints one table per model: the share of photos flagged on

- the Test part of the checkpoint's own fold (in-distribution, never used for any choice; goal <= 10 %), and the
  same photos shrunk to 112 px and JPEG-compressed like the natural corpora (a control: flags there mean the
  detector reacts to resolution, not content);
- natural images (``../shared/data/pretrain``; goal >= 90 %): the held-out half of Imagewoof and Imagenette
  (never looked at while choosing the method), and the dev half of Imagewoof (looked at), with the fixed seeds
  of ``scripts/familiarity_features.py``;
- the second foreign set of ``scripts/second_foreign_set.py`` (faces, everyday photos, an MRI, maps, drawn app
  windows, code, codes and patterns; built after every choice of the method, never used for one);
- the third foreign set of ``scripts/third_foreign_set.py`` (faces, big cats, a tower, a toy figure, a screenshot,
  logos; built before round 3 of the choice, never used for one);
- the foreign set of ``scripts/foreign_images.py`` (documents, charts, grayscale photos, microscopy, textures,
  everyday photos, and crops / low-resolution copies of them; goal >= 90 %): its ``report`` half (held out)
  and its ``dev`` half (looked at while choosing the method),

with the threshold the checkpoint stores (set on its fold's Valid part only), and the Test ECE / NLL before and
after temperature scaling from its card. The scoring is the library's own (``FamiliarityStatistics``), on
features recorded by the same hooks ``analyze`` uses. The machine load is printed with the numbers.

``--write-card`` also stores the held-out rates (the two natural sets and the three held-out foreign sets, never
the dev ones) in each card as ``metrics["familiarity"]["held_out"]``, where the Model card tab reads them ("it
warned on 97-98 % of natural photos ..."); ``python -m senet.trust`` drops them when it refits the statistics,
so a card never shows rates of statistics it no longer holds.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from familiarity_features import natural_halves  # noqa: E402
from foreign_images import foreign_images  # noqa: E402
from second_foreign_set import second_foreign_images  # noqa: E402
from third_foreign_set import third_foreign_images  # noqa: E402

from senet import load_checkpoint  # noqa: E402
from senet.checkpoint import read_card  # noqa: E402
from senet.data import Sample, open_rgb, read_folds  # noqa: E402
from senet.familiarity import statistics_for  # noqa: E402
from senet.run_outputs import write_card_outputs  # noqa: E402
from senet.trust import card_fold, features_and_logits, image_features, shrunk_copy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def flags(model: torch.nn.Module, features: dict[str, torch.Tensor]) -> torch.Tensor:
    """(N,) True where the checkpoint's statistics flag the photo as unfamiliar."""
    statistics = statistics_for(model)
    return statistics.familiarity(statistics.score(features)) < float(statistics.threshold)


def flagged_share(model: torch.nn.Module, features: dict[str, torch.Tensor]) -> float:
    return float(flags(model, features).double().mean())


def in_memory(images: list[Image.Image]) -> list[Callable[[], Image.Image]]:
    """Photos already decoded, in the form ``senet.trust.image_features`` reads them."""
    return [lambda image=image: image for image in images]


Row = tuple[str, int, float, str]  # what was measured, photos, share flagged, goal


def measure(model: torch.nn.Module, card, args: argparse.Namespace) -> tuple[list[Row], list[dict], dict]:
    """The table's rows, the held-out rows for the card, and each extra foreign set's bases with a miss."""
    blocks = sorted(statistics_for(model).blocks)
    splits = read_folds(args.data, card_fold(card))
    natural = natural_halves(args.pretrain, args.natural)
    fold = card.metrics.get("fold")
    rows: list[Row] = [
        (f"{fold} Test (skin photos, held out)", len(splits.test),
         flagged_share(model, features_and_logits(model, card, splits.test, blocks)[0]), "<= 10 %"),
        (f"{fold} Test shrunk to 112 px, JPEG 80 (control)", len(splits.test),
         flagged_share(model, features_and_logits(model, card, splits.test, blocks,
                                                        load=lambda path: shrunk_copy(open_rgb(path)))[0]), "-"),
    ]
    held_out: list[dict] = []  # what --write-card stores: held-out sets only
    for part, note in (("woof_held", "Imagewoof, held-out half"), ("nette_held", "Imagenette, held out"),
                       ("woof_dev", "Imagewoof, dev half (seen while choosing)")):
        samples = [Sample(path, path.parent.name) for path in natural[part]]
        share = flagged_share(model, features_and_logits(model, card, samples, blocks)[0])
        rows.append((f"natural: {note}", len(samples), share, ">= 90 %"))
        if part != "woof_dev":
            held_out.append({"set": note, "kind": "natural", "photos": len(samples), "flagged": round(share, 4)})
    for part, note in (("report", "held out"), ("dev", "seen while choosing the method")):
        images = [image for _, image in foreign_images(part)]
        share = flagged_share(model, image_features(model, card, in_memory(images), blocks)[0])
        rows.append((f"foreign set, {part} half ({note})", len(images), share, ">= 90 %"))
        if part == "report":
            held_out.append({"set": "foreign set, held-out half", "kind": "foreign", "photos": len(images),
                             "flagged": round(share, 4)})
    missed = {}
    for label, pictures in (("second foreign set (built after every choice, held out)", second_foreign_images()),
                            ("third foreign set (built before round 3, held out)", third_foreign_images())):
        flagged = flags(model, image_features(model, card, in_memory([image for _, image in pictures]), blocks)[0])
        share = float(flagged.double().mean())
        rows.append((label, len(pictures), share, ">= 90 %"))
        name = label.split(" (")[0]
        held_out.append({"set": name, "kind": "foreign", "photos": len(pictures), "flagged": round(share, 4)})
        missed[name] = sorted({picture.split("/")[0] for (picture, _), flag in zip(pictures, flagged.tolist())
                               if not flag})
    return rows, held_out, missed


def bench(stem: Path, args: argparse.Namespace) -> None:
    model, card = load_checkpoint(stem.with_suffix(".safetensors"))
    statistics = statistics_for(model)
    if statistics is None:
        print(f"\n{stem.name}: no familiarity statistics (run python -m senet.trust first)")
        return
    rows, held_out, missed = measure(model, card, args)
    fitted_on = card.metrics["familiarity"]["fitted_on"]
    print(f"\n{stem.name} (threshold {float(statistics.threshold):.3f}, fitted on {fitted_on})")
    print("| photos | n | flagged as unfamiliar | goal |\n|---|---|---|---|")
    for name, n, share, goal in rows:
        print(f"| {name} | {n} | {share * 100:.1f} % | {goal} |")
    for label, bases in missed.items():
        print(f"{label}, bases with a variant not flagged: {', '.join(bases) or 'none'}")
    if args.write_card:
        stored = read_card(stem.with_suffix(".safetensors"))
        familiarity = dict(stored.metrics["familiarity"], held_out=held_out)
        write_card_outputs(stored.replace(metrics={**stored.metrics, "familiarity": familiarity}), stem)
        print(f"stored {len(held_out)} held-out rates in {stem.name}.json")
    calibration = card.metrics.get("calibration", {})
    if calibration:
        raw, cal = calibration["raw"], calibration["calibrated"]
        print(f"temperature {calibration['temperature']:.3f} ({calibration['fitted_on']}); "
              f"{calibration['evaluated_on']}: ECE {raw['ece'] * 100:.1f} % -> {cal['ece'] * 100:.1f} %, "
              f"NLL {raw['nll']:.3f} -> {cal['nll']:.3f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", nargs="*", type=Path, help="checkpoint stems (default: every one in checkpoints/)")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/msld_v2")
    p.add_argument("--pretrain", type=Path, default=ROOT.parent / "shared/data/pretrain")
    p.add_argument("--natural", type=int, default=400, help="natural images per part (seeded draws)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--write-card", action="store_true",
                   help='store the held-out rates in each card (metrics["familiarity"]["held_out"])')
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    stems = args.checkpoints or sorted(path.with_suffix("") for path in (ROOT / "checkpoints").glob("*.safetensors"))
    print(f"load before: {os.getloadavg()}, threads {args.threads}")
    for stem in stems:
        bench(Path(stem).with_suffix(""), args)
    print(f"load after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
