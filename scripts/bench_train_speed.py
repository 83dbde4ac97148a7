"""Bare forward+backward+step images/s of the shipped architectures, eager vs torch.compile, on this device.

The ceiling that ``senet.train``'s own images/s (augmentation included) is compared with.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python scripts/...` from anywhere

from senet import create_model  # noqa: E402
from senet.trainer import bare_throughput, resolve_device  # noqa: E402


def main() -> None:
    device = resolve_device("auto")
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}")
    for arch, batch, size, try_compile in [("se_resnet18", 32, 224, False), ("se_densenet121", 32, 224, True),
                                           ("se_resnet18", 256, 112, False), ("se_densenet121", 256, 112, True)]:
        model = create_model(arch, num_classes=6)
        for compiled in (False, True) if try_compile else (False,):
            if compiled:
                start = time.perf_counter()
                speed = bare_throughput(model, batch, size, device, compile=True)
                print(f"{arch} bs{batch} {size}px compiled: {speed:,.0f} img/s "
                      f"(incl. compile {time.perf_counter() - start:.0f}s total)")
            else:
                print(f"{arch} bs{batch} {size}px eager: {bare_throughput(model, batch, size, device):,.0f} img/s")


if __name__ == "__main__":
    main()
