"""python -m senet.add_profiles: add per-class SE profiles to a checkpoint that has none (e.g. a converted one).

The app's class-average lines, class-specificity chart and takeaway need them. Photos go in one folder per
class, named as the card's labels (``PHOTOS/Measles/*.jpg``, ...); use held-out photos, as the SE paper did.
Only the JSON card is rewritten; the weights are not touched.
"""

from __future__ import annotations

import argparse
import sys

from .checkpoint import card_path, load_checkpoint
from .profiles import class_profiles_from_folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m senet.add_profiles", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="the .safetensors file (its .json card is updated)")
    parser.add_argument("--folder", required=True, help="photos in one sub-folder per class label")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    model, card = load_checkpoint(args.checkpoint, device=args.device)
    try:
        profiles = class_profiles_from_folder(model, card, args.folder, batch_size=args.batch_size)
    except (FileNotFoundError, ValueError) as error:
        print(f"add_profiles: {error}", file=sys.stderr)
        return 2
    target = card_path(args.checkpoint)
    target.write_text(card.replace(class_profiles=profiles).to_json() + "\n", encoding="utf-8")
    counts = {label: entry["count"] for label, entry in profiles["classes"].items()}
    print(f"wrote class profiles of {len(profiles['blocks'])} SE blocks to {target}: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
