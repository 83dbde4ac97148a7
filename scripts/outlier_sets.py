"""Write the auxiliary outlier photos of outlier exposure: the DEV sets of the familiarity study, nothing else.

    python scripts/outlier_sets.py --out .cache/outliers
    python -m senet.trust --checkpoint CKPT --data DATA --outliers .cache/outliers/imagewoof_dev \
        .cache/outliers/foreign_dev

- ``imagewoof_dev``: the 400 photos of the seeded dev half of Imagewoof that familiarity_features.py calls
  ``woof_dev`` (copied byte for byte);
- ``foreign_dev``: the 68 pictures of the dev half of scripts/foreign_images.py, as PNG.

The held-out Imagewoof half, Imagenette and the foreign report half are never written: they stay held out.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from familiarity_features import natural_halves  # noqa: E402
from foreign_images import foreign_images  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pretrain", type=Path, default=ROOT.parent / "shared/data/pretrain")
    p.add_argument("--natural", type=int, default=400, help="as familiarity_features.py --natural")
    p.add_argument("--out", type=Path, default=ROOT / ".cache/outliers")
    args = p.parse_args(argv)
    woof, foreign = args.out / "imagewoof_dev", args.out / "foreign_dev"
    for folder in (woof, foreign):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for i, path in enumerate(natural_halves(args.pretrain, args.natural)["woof_dev"]):
        shutil.copyfile(path, woof / f"{i:04d}_{path.name}")
    for i, (name, image) in enumerate(foreign_images("dev")):
        image.save(foreign / f"{i:03d}_{name.replace('/', '_')}.png")
    print(f"wrote {len(list(woof.iterdir()))} photos to {woof} and {len(list(foreign.iterdir()))} to {foreign}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
