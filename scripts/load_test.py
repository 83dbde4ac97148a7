"""Load test: N simulated users call the app's ``/analyze`` endpoint through ``gradio_client`` at once.

Prints throughput and p50 / p95 latency. Against a running app:

    python app.py --port 7860 &
    python scripts/load_test.py --url http://127.0.0.1:7860 --users 8 --requests 4

Or let the script start the app itself on a free port (``--checkpoints DIR``), optionally on throw-away
random-weight checkpoints (``--random-checkpoints``: measures the serving stack, not a trained model):

    python scripts/load_test.py --random-checkpoints --users 8 --requests 4 --input-size 224
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from unique_jpeg import unique_jpeg  # noqa: E402


def make_random_checkpoints(directory: Path, archs: list[str], input_size: int, num_classes: int = 6) -> list[str]:
    """Write random-weight checkpoints (one per architecture) for a self-contained run; returns their names."""
    import torch

    import senet

    names = []
    for index, arch in enumerate(archs):
        torch.manual_seed(index)
        labels = [f"class_{label}" for label in range(num_classes)]
        card = senet.ModelCard(arch=arch, labels=labels, input_size=(input_size, input_size),
                               title=f"{arch} (random weights, load test)")
        senet.save_checkpoint(senet.create_model(arch, num_classes=num_classes), card, directory / f"{arch}_random")
        names.append(f"{arch}_random")
    return names


def photo_files(directory: Path, count: int = 8, size: tuple[int, int] = (640, 480)) -> list[Path]:
    """Photo-like JPEGs (smooth colour fields plus noise) written to ``directory``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        low = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        base = np.asarray(Image.fromarray(low).resize(size, Image.Resampling.BICUBIC), dtype=np.float32)
        array = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        path = directory / f"photo_{index}.jpg"
        Image.fromarray(array).save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


def launch(checkpoints: Path, host: str = "127.0.0.1", device: str = "auto"):
    """Start the app in this process as ``python app.py`` does (same queue and launch options) on a free port;
    returns (demo, url)."""
    import socket

    import app

    with socket.socket() as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    demo = app.build_demo(checkpoints, device=device)
    demo.queue(default_concurrency_limit=2)
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True, **app.launch_options())
    return demo, demo.local_url


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run(url: str, *, users: int, requests: int, models: list[str | None], images: list[Path]) -> dict:
    """Every user sends ``requests`` analyses back to back; returns latencies (s), errors and wall time."""
    from gradio_client import Client, handle_file

    local = threading.local()

    def client() -> Client:
        if not hasattr(local, "client"):
            local.client = Client(url, verbose=False)
        return local.client

    def call(job: int) -> tuple[float, str | None]:
        model = models[job % len(models)]
        source = images[job % len(images)]
        if source.suffix.lower() in (".jpg", ".jpeg"):  # a photo no request sent before: the answer cache cannot answer
            unique = source.with_name(f"{source.stem}_job{job}.jpg")
            unique.write_bytes(unique_jpeg(source.read_bytes(), f"load test job {job}"))
            source = unique
        image = handle_file(str(source))
        args = (image,) if model is None else (image, model)
        start = time.perf_counter()
        try:
            client().predict(*args, api_name="/analyze")
        except Exception as error:  # report every failure, keep loading
            return time.perf_counter() - start, f"{type(error).__name__}: {str(error)[:200]}"
        return time.perf_counter() - start, None

    with ThreadPoolExecutor(max_workers=users) as pool:  # one client per user thread
        for model in models:  # warm-up: model loading and first-call costs are not part of the numbers
            pool.submit(call, models.index(model)).result()
        start = time.perf_counter()
        results = list(pool.map(call, range(users * requests)))
        wall = time.perf_counter() - start
    return {"latencies": [latency for latency, error in results if error is None],
            "errors": [error for _, error in results if error is not None], "wall": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running app; default: start one here")
    parser.add_argument("--checkpoints", type=Path, help="checkpoints directory for the app started here")
    parser.add_argument("--random-checkpoints", action="store_true",
                        help="start the app on random-weight checkpoints in a temporary directory")
    parser.add_argument("--archs", default="se_resnet18,se_densenet121", help="for --random-checkpoints")
    parser.add_argument("--input-size", type=int, default=224, help="for --random-checkpoints")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--requests", type=int, default=4, help="requests per user")
    parser.add_argument("--models", default="", help="comma-separated model names; default: the app's default"
                        " (with --random-checkpoints: every random model, alternating)")
    parser.add_argument("--images", nargs="*", type=Path, help="image files to send; default: generated photos")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="for the app started here")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads of the app started here (0: as is)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="senet-load-") as scratch:
        scratch_dir = Path(scratch)
        models: list[str | None] = [name for name in args.models.split(",") if name] or [None]
        demo = None
        url = args.url
        if url is None:
            checkpoints = args.checkpoints
            if args.random_checkpoints:
                checkpoints = scratch_dir / "checkpoints"
                names = make_random_checkpoints(checkpoints, args.archs.split(","), args.input_size)
                models = models if models != [None] else names
            if args.threads:
                import torch

                torch.set_num_threads(args.threads)
            demo, url = launch(checkpoints or ROOT / "checkpoints", device=args.device)
        images = args.images or photo_files(scratch_dir)
        try:
            where = "" if demo is None else f" (app started here on {demo.catalog.device_name})"
            print(f"{url}{where}: {args.users} users x {args.requests} requests, models {models}, "
                  f"{len(images)} images")
            result = run(url, users=args.users, requests=args.requests, models=models, images=images)
        finally:
            if demo is not None:
                demo.close()
    latencies, errors, wall = result["latencies"], result["errors"], result["wall"]
    total = len(latencies) + len(errors)
    print(f"{total} requests in {wall:.1f} s: {len(latencies) / wall:.2f} successful requests/s, "
          f"{len(errors)} errors")
    if latencies:
        print(f"latency p50 {statistics.median(latencies):.2f} s, p95 {percentile(latencies, 0.95):.2f} s, "
              f"max {max(latencies):.2f} s")
    for error in sorted(set(errors))[:5]:
        print(f"  error: {error}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
