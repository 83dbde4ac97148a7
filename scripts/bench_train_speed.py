"""Bare forward+backward+step images/s of the shipped architectures: the ceiling for ``senet.train``'s speed.

Compares, on this device and in one run: batch sizes, eager vs ``torch.compile`` modes (``reduce-overhead``
uses CUDA graphs, the cure for a launch-bound SE-DenseNet if it works with training-mode BatchNorm), and N
training processes sharing the device at once (``--processes``; what ``scripts/gpu_jobs.sh cv`` does with the
five folds). Random tensors, so no data pipeline is involved.

    python scripts/bench_train_speed.py                                    # the default grid
    python scripts/bench_train_speed.py --arch se_densenet121 --batch-sizes 32 128 --modes eager reduce-overhead
    python scripts/bench_train_speed.py --arch se_densenet121 --processes 5
    python scripts/bench_train_speed.py --arch densenet121 se_densenet121 --layouts channels_last contiguous
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python scripts/...` from anywhere

from senet import create_model  # noqa: E402
from senet.devices import device_name, resolve_device  # noqa: E402
from senet.trainer import bare_throughput  # noqa: E402


def one_setting(arch: str, batch: int, size: int, mode: str, device: torch.device, steps: int,
                channels_last: bool = True) -> float:
    model = create_model(arch, num_classes=6)
    return bare_throughput(model, batch, size, device, compile=mode != "eager", channels_last=channels_last,
                           compile_mode=None if mode in ("eager", "default") else mode, steps=steps)


def _worker(arch: str, batch: int, size: int, steps: int, barrier: mp.Barrier, results: mp.Queue) -> None:
    device = resolve_device("auto")
    one_setting(arch, batch, size, "eager", device, steps=3)  # warm-up: CUDA context, cuDNN autotuning
    barrier.wait()  # every process measures over the same window
    results.put(one_setting(arch, batch, size, "eager", device, steps))


def concurrent_throughput(arch: str, batch: int, size: int, processes: int, steps: int) -> list[float]:
    """Images/s of each of ``processes`` training processes running at the same time on the device."""
    context = mp.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_worker, args=(arch, batch, size, steps, barrier, results))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    speeds = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    return speeds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", nargs="+", default=["se_resnet18", "se_densenet121"])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--modes", nargs="+", default=["eager"],
                   choices=["eager", "default", "reduce-overhead", "max-autotune-no-cudagraphs"])
    p.add_argument("--layouts", nargs="+", default=["channels_last"], choices=["channels_last", "contiguous"],
                   help="memory layout on CUDA (training uses channels_last; DenseNet concatenates along channels)")
    p.add_argument("--processes", type=int, default=0, help="also run N eager processes at once (batch: the first)")
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    device = resolve_device("auto")
    print(f"device: {device_name(device)}; "
          f"torch {torch.__version__}")
    layouts = args.layouts if device.type == "cuda" else ["contiguous"]  # channels_last is only used on CUDA
    for arch in args.arch:
        for batch in args.batch_sizes:
            for mode in args.modes:
                for layout in layouts:
                    start = time.perf_counter()
                    speed = one_setting(arch, batch, args.img_size, mode, device, args.steps,
                                        channels_last=layout == "channels_last")
                    print(f"{arch} bs{batch} {args.img_size}px {mode} {layout}: {speed:,.0f} img/s "
                          f"({time.perf_counter() - start:.0f}s with warm-up/compilation)", flush=True)
        if args.processes > 1:
            speeds = concurrent_throughput(arch, args.batch_sizes[0], args.img_size, args.processes, args.steps)
            print(f"{arch} bs{args.batch_sizes[0]} {args.img_size}px, {args.processes} processes at once: "
                  f"{sum(speeds):,.0f} img/s in all ({', '.join(f'{s:,.0f}' for s in speeds)})", flush=True)


if __name__ == "__main__":
    main()
