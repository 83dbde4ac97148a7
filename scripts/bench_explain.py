"""Benchmark the one-pass analysis against a bare forward(+backward) and the naive three-pass pipeline.

    python scripts/bench_explain.py                      # CPU, se_resnet18 and se_densenet121, 224x224, batch 1
    python scripts/bench_explain.py --device cuda --cudnn-benchmark --channels-last

All variants are timed in the same run, interleaved round by round (so load changes hit them alike); each
number is the median of ``--repeats`` rounds after ``--warmup`` rounds, in milliseconds:

- forward: ``model(x)`` under ``no_grad``;
- forward+backward: ``model(x)[0, c].backward()`` (all parameter gradients), the issue's yardstick;
- naive: a ``no_grad`` forward for the prediction + ``pytorch_grad_cam.GradCAM(...)(x)`` (its own forward and
  backward) + another forward with hooks for the SE excitations;
- ours: ``senet.analyze(model, card, image)`` from a PIL image (preprocessing included);
- ours + trust: the same with familiarity statistics attached (fitted on random images' features, the shapes
  ``python -m senet.trust`` stores) and a calibration temperature in the card.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import senet  # noqa: E402
from senet.familiarity import FeatureRecorder, attach, fit_statistics  # noqa: E402
from senet.trust import familiarity_sites  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_times(variants: dict[str, Callable[[], None]], warmup: int, repeats: int) -> dict[str, float]:
    """Median milliseconds of each variant, run in rotating order after ``warmup`` untimed rounds."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_ in range(warmup + repeats):
        order = names[round_ % len(names):] + names[:round_ % len(names)]  # rotate: no variant always goes first
        for name in order:
            start = time.perf_counter()
            variants[name]()
            if round_ >= warmup:
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def bench_model(arch: str, args: argparse.Namespace) -> dict[str, float]:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    device = torch.device(args.device)
    torch.manual_seed(0)
    labels = [f"class{i}" for i in range(args.num_classes)]
    card = senet.ModelCard(arch=arch, labels=labels, input_size=(args.size, args.size))
    model = senet.create_model(arch, num_classes=len(labels)).to(device).eval()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, size=(args.size, args.size, 3), dtype=np.uint8))
    x = card.transforms()(image)[None].to(device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    layer = model.cam_layer(next(iter(model.cam_layers())))
    gates = [info.module.gate for info in senet.se_blocks(model)]

    def forward() -> None:
        with torch.no_grad():
            model(x)
        _sync(device)

    def forward_backward() -> None:
        model(x)[0, 0].backward()
        model.zero_grad(set_to_none=True)
        _sync(device)

    def naive() -> None:
        with torch.no_grad():
            predicted = int(model(x).argmax())
        with GradCAM(model=model, target_layers=[layer]) as cam:
            cam(x, targets=[ClassifierOutputTarget(predicted)])
        model.zero_grad(set_to_none=True)
        seen: list[torch.Tensor] = []
        handles = [gate.register_forward_hook(lambda m, i, o: seen.append(o.detach().cpu())) for gate in gates]
        try:
            with torch.no_grad():
                model(x)
        finally:
            for handle in handles:
                handle.remove()
        _sync(device)

    inner: list[float] = []

    def ours() -> None:
        inner.append(senet.analyze(model, card, image).timings["forward_backward"])

    fitted = _random_statistics(model, card, args.num_classes)
    trusted_card = card.replace(metrics={"calibration": {"temperature": 1.3}})

    def ours_trust() -> None:
        attach(model, fitted)
        try:
            analysis = senet.analyze(model, trusted_card, image)
        finally:
            attach(model, None)
        assert analysis.familiarity is not None

    variants: dict[str, Callable[[], None]] = {
        "forward": forward, "forward+backward": forward_backward, "naive": naive, "ours": ours,
        "ours+trust": ours_trust,
    }
    result = _median_times(variants, args.warmup, args.repeats)
    result["ours: forward+backward part"] = statistics.median(inner[args.warmup:])

    # Sanity: our map is the package's GradCAM map.
    analysis = senet.analyze(model, card, image)
    with GradCAM(model=model, target_layers=[layer]) as cam:
        reference = cam(x, targets=[ClassifierOutputTarget(analysis.target_index)])[0]
    model.zero_grad(set_to_none=True)
    result["corr"] = float(np.corrcoef(reference.ravel(), analysis.cam.ravel())[0, 1])
    return result


def _random_statistics(model: torch.nn.Module, card: senet.ModelCard, num_classes: int) -> object:
    """Familiarity statistics of the stored shapes, fitted on 48 random images' features (timing only)."""
    parameter = next(model.parameters())
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(48, 3, *card.input_size, generator=generator).to(parameter.device)
    with FeatureRecorder(model, familiarity_sites(model)) as recorder, torch.no_grad():
        features: dict[str, list[torch.Tensor]] = {}
        for start in range(0, 48, 16):
            recorder.values.clear()
            model(images[start:start + 16])
            for name, value in recorder.values.items():
                features.setdefault(name, []).append(value)
    merged = {name: torch.cat(parts) for name, parts in features.items()}
    targets = torch.arange(48) % num_classes
    return fit_statistics({k: v[:32] for k, v in merged.items()}, targets[:32], {k: v[32:] for k, v in merged.items()},
                          num_classes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=["se_resnet18", "se_densenet121"])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--num-classes", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--cudnn-benchmark", action="store_true")
    parser.add_argument("--channels-last", action="store_true", help="convert the model to channels_last")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    where = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "CPU"
    print(f"device {args.device} ({where}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.size}x{args.size}, batch 1, median of {args.repeats} after {args.warmup} warm-up rounds"
          + (", cudnn.benchmark" if args.cudnn_benchmark else "") + (", channels_last" if args.channels_last else ""))
    header = ("| model | forward ms | fwd+bwd ms | naive ms | ours ms | ours+trust ms | ours/fwd+bwd "
              "| ours+trust/fwd+bwd | naive/fwd+bwd | ours' fwd+bwd part ms | corr vs GradCAM |")
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for arch in args.models:
        r = bench_model(arch, args)
        fb = r["forward+backward"]
        print(f"| {arch} | {r['forward']:.1f} | {fb:.1f} | {r['naive']:.1f} | {r['ours']:.1f} | "
              f"{r['ours+trust']:.1f} | {r['ours'] / fb:.2f}x | {r['ours+trust'] / fb:.2f}x | {r['naive'] / fb:.2f}x | "
              f"{r['ours: forward+backward part']:.1f} | "
              f"{r['corr']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
