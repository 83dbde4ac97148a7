"""What familiarity and calibration add to one analysis: ``analyze`` on a shipped checkpoint with and without its
statistics, interleaved round by round (1 torch thread), and the scoring step alone.

    python scripts/bench_trust_cost.py [--checkpoint checkpoints/se_resnet18_msld_v2.safetensors] [--rounds 12]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import senet  # noqa: E402
from senet.familiarity import attach, statistics_for  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints/se_resnet18_msld_v2.safetensors"))
    p.add_argument("--rounds", type=int, default=12)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    model, card = senet.load_checkpoint(args.checkpoint)
    fitted = statistics_for(model)
    if fitted is None:
        raise SystemExit("this checkpoint has no familiarity statistics (run python -m senet.trust)")
    with Image.open(ROOT / "examples/Monkeypox_1.jpg") as image:
        photo = image.convert("RGB")
    plain = card.replace(metrics={})
    without, with_trust = [], []
    for _ in range(args.rounds):
        attach(model, None)
        start = time.perf_counter()
        senet.analyze(model, plain, photo)
        without.append(time.perf_counter() - start)
        attach(model, fitted)
        start = time.perf_counter()
        senet.analyze(model, card, photo)
        with_trust.append(time.perf_counter() - start)
    a, b = statistics.median(without[2:]) * 1e3, statistics.median(with_trust[2:]) * 1e3
    features = {name: torch.randn(1, site.means.shape[1]) for name, site in fitted.sites.items()}
    start = time.perf_counter()
    for _ in range(100):
        fitted.familiarity(fitted.score(features))
    scoring = (time.perf_counter() - start) * 10
    print(f"analyze without statistics {a:.1f} ms, with familiarity + temperature {b:.1f} ms ({b / a:.2f}x); "
          f"scoring alone {scoring:.2f} ms (median of {args.rounds - 2} rounds after 2 warm-ups)")


if __name__ == "__main__":
    main()
