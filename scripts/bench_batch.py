"""Images per second of the batch analysis (prediction + Grad-CAM + SE weights) at several batch sizes, on the CPU.

    python scripts/bench_batch.py                       # shipped checkpoints, batch sizes 1 8 32, 64 photos
    python scripts/bench_batch.py --sizes 1 8 --images 32 --threads 2

Every size analyses the same photos (the examples, repeated) with ``senet.batch.analyze_batch``; ``single`` is
``senet.analyze`` one photo at a time, what the Explore tab runs. The sizes are measured in turns (round robin,
``--rounds`` times) so that a change in machine load affects them alike; the best round is reported.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import senet  # noqa: E402
from senet.batch import analyze_batch  # noqa: E402
from senet.catalog import Catalog  # noqa: E402
from senet.image_io import load_image  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--images", type=int, default=64, help="photos per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--models", nargs="*", default=None, help="catalog names (default: every shipped model)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    catalog = Catalog(ROOT / "checkpoints", device="cpu")
    photos = [load_image(path) for path in sorted((ROOT / "examples").glob("*.jpg"))]
    photos = (photos * (args.images // len(photos) + 1))[: args.images]
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}  threads: {args.threads}  photos: {len(photos)}")
    for name in args.models or catalog.available():
        model, card, _ = catalog.load(name)
        analyze_batch(model, card, photos[:2])  # warm-up: lazy imports, first-call kernel set-up
        best: dict[str, float] = {}
        for _ in range(args.rounds):
            start = time.perf_counter()
            for photo in photos:
                senet.analyze(model, card, photo)
            best["single (senet.analyze)"] = max(best.get("single (senet.analyze)", 0),
                                                 len(photos) / (time.perf_counter() - start))
            for size in args.sizes:
                start = time.perf_counter()
                for first in range(0, len(photos), size):
                    analyze_batch(model, card, photos[first:first + size])
                key = f"batch {size}"
                best[key] = max(best.get(key, 0), len(photos) / (time.perf_counter() - start))
        base = best["single (senet.analyze)"]
        print(f"{name} ({card.input_size[0]} px):")
        for key, rate in best.items():
            print(f"  {key:24s} {rate:6.1f} images/s  ({rate / base:.2f} x single)")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
