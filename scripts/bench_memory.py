"""Long-run memory check: hundreds of analyses in a row must not leak memory or hooks.

Runs the work of one app request per iteration (decode an uploaded JPEG with ``load_image``, ``senet.analyze``,
render the overlay and heatmap) and prints resident memory after warm-up and at the end, the forward-hook count
(must stay constant) and, on a GPU, allocated CUDA memory. The goal is less than 50 MB of RSS growth over 500
analyses after warm-up.

    python scripts/bench_memory.py                              # random SE-ResNet-18 weights, 224 x 224, CPU
    python scripts/bench_memory.py --checkpoint checkpoints/se_resnet18_msld_v2 --device cuda
    python scripts/bench_memory.py --iterations 100 --input-size 64 --arch se_densenet121
    python scripts/bench_memory.py --handler      # through app.py's /analyze handler (charts included)

Exit status 1 when a goal is missed (RSS growth, hooks left behind, CUDA memory growth).
"""

from __future__ import annotations

import argparse
import gc
import io
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from unique_jpeg import unique_jpeg  # noqa: E402

import senet  # noqa: E402
from senet.hooks import hook_count  # noqa: E402
from senet.image_io import load_image  # noqa: E402

RSS_GOAL_MB = 50.0


def rss_mb() -> float:
    """Current resident set size (Linux /proc; falls back to the peak from getrusage elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def global_hook_count() -> int:
    """Hooks registered for every module at once (torch.nn.modules.module.register_module_forward_hook)."""
    from torch.nn.modules import module as torch_module

    names = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
             "_global_backward_pre_hooks")
    return sum(len(getattr(torch_module, name, {})) for name in names)


def photo_jpegs(count: int, size: tuple[int, int], seed: int = 0) -> list[bytes]:
    """A few distinct photo-like JPEGs (smooth colour fields plus noise), as uploads arrive."""
    rng = np.random.default_rng(seed)
    jpegs = []
    for _ in range(count):
        low = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        image = Image.fromarray(low).resize(size, Image.Resampling.BICUBIC)
        noise = rng.normal(0, 12, (size[1], size[0], 3))
        array = np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "JPEG", quality=90)
        jpegs.append(buffer.getvalue())
    return jpegs


def build(args: argparse.Namespace, device: torch.device) -> tuple[torch.nn.Module, senet.ModelCard]:
    if args.checkpoint:
        return senet.load_checkpoint(args.checkpoint, device=device)
    labels = [f"class_{index}" for index in range(args.num_classes)]
    card = senet.ModelCard(arch=args.arch, labels=labels, input_size=(args.input_size, args.input_size))
    model = senet.create_model(args.arch, num_classes=len(labels))
    return model.to(device).eval(), card


def one_request(model: torch.nn.Module, card: senet.ModelCard, jpeg: bytes, method: str) -> float:
    """What the app does for one upload, minus the widgets; returns the top probability (keeps work live)."""
    image = load_image(jpeg)
    result = senet.analyze(model, card, image, method=method)
    senet.overlay(image, result.cam, opacity=0.5)
    senet.heatmap_image(result.cam, image.size)
    return max(result.probabilities.values())


def app_request(checkpoint: str | None, model: torch.nn.Module, card: senet.ModelCard, device: torch.device,
                scratch: Path):
    """A function doing one request through app.py's /analyze handler (upload path, analysis, overlays, charts)."""
    import app

    if checkpoint:
        directory, name = Path(checkpoint).resolve().parent, Path(checkpoint).name
    else:  # the random model, written where the app's catalog can find it
        directory, name = scratch / "checkpoints", "bench"
        senet.save_checkpoint(model, card, directory / name)
    demo = app.build_demo(directory, device=device.type)
    analyze = next(fn.fn for fn in demo.fns.values() if fn.api_name == "analyze")
    loaded, _, _ = demo.catalog.load(name)

    calls = iter(range(10**9))

    def request(jpeg: bytes, method: str) -> float:
        path = scratch / "upload.jpg"
        path.write_bytes(unique_jpeg(jpeg, f"request {next(calls)}"))  # the answer cache never answers
        probabilities = analyze(str(path), name, method)[0]
        return max(probabilities.values())

    return request, loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=30, help="analyses before the baseline is taken")
    parser.add_argument("--arch", default="se_resnet18")
    parser.add_argument("--num-classes", type=int, default=6)
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--checkpoint", help="a checkpoint path (without suffix) instead of random weights")
    parser.add_argument("--method", default="gradcam")
    parser.add_argument("--photo-size", default="640x480", help="size of the generated uploads, WxH")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    parser.add_argument("--handler", action="store_true",
                        help="go through app.py's /analyze handler (SE charts, overlays) instead of senet.analyze")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    width, height = (int(side) for side in args.photo_size.lower().split("x"))
    model, card = build(args, device)
    jpegs = photo_jpegs(8, (width, height))
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    scratch = tempfile.TemporaryDirectory(prefix="senet-bench-")
    if args.handler:
        request, model = app_request(args.checkpoint, model, card, device, Path(scratch.name))
    else:
        def request(jpeg: bytes, method: str) -> float:
            return one_request(model, card, jpeg, method)
    print(f"{card.arch} {card.input_size[0]}x{card.input_size[1]}, {args.method}, uploads {width}x{height} JPEG, "
          f"{'app.py handler' if args.handler else 'senet.analyze'}, device {name}, torch {torch.__version__}")

    hooks_before = hook_count(model) + global_hook_count()
    for index in range(args.warmup):
        request(jpegs[index % len(jpegs)], args.method)
    gc.collect()
    if cuda:
        torch.cuda.synchronize(device)
    baseline = rss_mb()
    cuda_baseline = torch.cuda.memory_allocated(device) / 2**20 if cuda else 0.0
    print(f"after {args.warmup} warm-up analyses: RSS {baseline:.1f} MB"
          + (f", CUDA allocated {cuda_baseline:.1f} MB" if cuda else ""))

    hook_counts = set()
    samples = []
    start = time.perf_counter()
    for index in range(args.iterations):
        request(jpegs[index % len(jpegs)], args.method)
        hook_counts.add(hook_count(model) + global_hook_count())
        if (index + 1) % max(1, args.iterations // 10) == 0:
            samples.append(f"{index + 1}:{rss_mb() - baseline:+.1f}")
    elapsed = time.perf_counter() - start
    gc.collect()
    if cuda:
        torch.cuda.synchronize(device)
    final = rss_mb()
    growth = final - baseline
    print(f"{args.iterations} analyses in {elapsed:.1f} s ({elapsed / args.iterations * 1000:.0f} ms each)")
    print(f"RSS growth by iteration (MB): {' '.join(samples)}")
    print(f"RSS after warm-up {baseline:.1f} MB, at the end {final:.1f} MB: growth {growth:+.1f} MB "
          f"(goal < {RSS_GOAL_MB:.0f} MB), peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MB")
    print(f"forward/backward hooks: {hooks_before} before, {sorted(hook_counts)} after each analysis")
    failed = growth >= RSS_GOAL_MB or hook_counts != {hooks_before}
    if cuda:
        allocated = torch.cuda.memory_allocated(device) / 2**20
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        print(f"CUDA allocated after warm-up {cuda_baseline:.1f} MB, at the end {allocated:.1f} MB "
              f"(growth {allocated - cuda_baseline:+.1f} MB), peak {peak:.1f} MB")
        failed |= allocated - cuda_baseline > 1.0
    print("FAIL" if failed else "OK")
    scratch.cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
