"""Public-service benchmark (issue 16): fairness, refusals, session memory and the upload cache, in one run.

Starts ``python app.py`` in a child process on random-weight 224-pixel checkpoints (``alpha`` for fast requests,
``beta`` for slow ones) and measures, through the HTTP API:

1. p50 / p95 of fast Grad-CAM requests on ``alpha``: unloaded, then while 2 and while 8 Score-CAM requests are
   kept outstanding on ``beta`` (goal: p95 within 2x the unloaded p95), and the share of those slow requests
   refused with the "busy" sentence;
2. the share of a burst of simultaneous requests refused with a message once the queue is full;
3. the server's RSS warm, after N one-request sessions, and after their expiry (``SENET_STATE_TTL`` is shortened
   to ``--ttl`` seconds for this run; the sweeper runs every 30 s);
4. the upload-cache bytes after a flood of 50 uploads of 19.9 MB from one client.

    OMP_NUM_THREADS=1 python scripts/bench_public.py            # about 10 minutes on 2 CPU cores
    python scripts/bench_public.py --sessions 100 --fast 10     # a quicker look
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from public_client import analyze_data, call, data_url, join, outcome, photo, session  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Server:
    """``python app.py`` on random-weight checkpoints, in a child process."""

    def __init__(self, work: Path, ttl: int) -> None:
        import torch

        import senet

        checkpoints = work / "checkpoints"
        for seed, name in enumerate(("alpha", "beta")):
            torch.manual_seed(seed)
            card = senet.ModelCard(arch="se_resnet18", labels=[f"class_{i}" for i in range(6)], title=name)
            senet.save_checkpoint(senet.create_model("se_resnet18", num_classes=6), card, checkpoints / name)
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.cache = work / "gradio"
        env = {**os.environ, "SENET_STATE_TTL": str(ttl), "GRADIO_TEMP_DIR": str(self.cache),
               "GRADIO_ANALYTICS_ENABLED": "False"}
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--checkpoints", str(checkpoints), "--device", "cpu",
             "--port", str(self.port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}/"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "config", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        config = httpx.get(self.url + "config", timeout=30).json()
        self.analyze = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "analyze")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


_COUNTER = itertools.count()


def new_photo() -> dict:
    """A 640 x 480 JPEG data URL never sent before: the app answers a repeated photo from its cache, which would
    measure the cache instead of the model."""
    rng = np.random.default_rng(next(_COUNTER))
    pixels = rng.integers(0, 256, (480 // 8, 640 // 8, 3), dtype=np.uint8)
    return photo(url=data_url(Image.fromarray(pixels).resize((640, 480)), "JPEG"))


def fast_latencies(server: Server, count: int) -> list[float]:
    times = []
    for _ in range(count):
        image = new_photo()
        start = time.perf_counter()
        reply = call(server.url, server.analyze, analyze_data(image, "alpha", "gradcam"))
        if not reply.ok:
            raise SystemExit(f"a fast request failed: {reply.message}")
        times.append(time.perf_counter() - start)
    return times


def with_slow_load(server: Server, outstanding: int, count: int) -> tuple[list[float], int, int]:
    """Fast latencies while ``outstanding`` Score-CAM requests (one per session) are kept submitted on beta."""
    stop = threading.Event()
    tally = {"sent": 0, "refused": 0}
    lock = threading.Lock()

    def keep_one_slow() -> None:
        while not stop.is_set():
            reply = call(server.url, server.analyze, analyze_data(new_photo(), "beta", "scorecam"))
            with lock:
                tally["sent"] += 1
                tally["refused"] += (not reply.ok) and "busy" in reply.message
            if not reply.ok:
                time.sleep(1)  # a refused client tries again a little later

    workers = [threading.Thread(target=keep_one_slow, daemon=True) for _ in range(outstanding)]
    for worker in workers:
        worker.start()
    time.sleep(3)  # the slow lane is busy and its waiting places are taken
    try:
        times = fast_latencies(server, count)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=300)
    return times, tally["sent"], tally["refused"]


def burst(server: Server, count: int) -> tuple[int, int, str]:
    """``count`` simultaneous Grad-CAM requests on one model from as many sessions: (queued, refused at the
    queue, the message). They take turns on the model, so the burst reaches the queue's ``max_size``."""
    names = [session() for _ in range(count)]
    photos = [new_photo() for _ in names]
    with ThreadPoolExecutor(max_workers=32) as pool:
        refusals = list(pool.map(lambda pair: join(server.url, server.analyze,
                                                   analyze_data(pair[1], "alpha", "gradcam"), pair[0]),
                                 zip(names, photos, strict=True)))
    queued = [name for name, refused in zip(names, refusals, strict=True) if refused is None]
    messages = [refused.message for refused in refusals if refused is not None]
    with ThreadPoolExecutor(max_workers=16) as pool:  # wait for the queued ones
        list(pool.map(lambda name: outcome(server.url, name), queued))
    return len(queued), len(messages), (messages[0] if messages else "")


def sessions_rss(server: Server, count: int, ttl: int) -> tuple[float, float, float]:
    """RSS warm, after ``count`` one-request sessions (alternating the two models, each its own photo) and after
    their expiry."""
    pid = server.process.pid
    fast_latencies(server, 5)
    warm = rss_mb(pid)
    done = [0]

    def one(index: int) -> None:
        call(server.url, server.analyze, analyze_data(new_photo(), ("alpha", "beta")[index % 2], "gradcam"))
        done[0] += 1
        if done[0] % 100 == 0:
            print(f"  {done[0]} sessions: RSS {rss_mb(pid):.0f} MB", flush=True)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, range(count)))
    loaded = rss_mb(pid)
    time.sleep(ttl + 45)  # expiry, then the sweeper's next pass (every 30 s)
    return warm, loaded, rss_mb(pid)


def upload_flood(server: Server, count: int, size: int) -> tuple[int, int, int, str]:
    payload = os.urandom(size)
    codes, message = [], ""
    for index in range(count):
        response = httpx.post(server.url + "gradio_api/upload",
                              files={"files": (f"flood_{index}.jpg", payload, "image/jpeg")}, timeout=120)
        codes.append(response.status_code)
        if response.status_code != 200 and not message:
            message = response.text
    return codes.count(200), len(codes) - codes.count(200), directory_bytes(server.cache), message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", type=int, default=20, help="fast requests per measurement")
    parser.add_argument("--sessions", type=int, default=600, help="one-request sessions for the RSS measurement")
    parser.add_argument("--ttl", type=int, default=60, help="SENET_STATE_TTL for this run (seconds)")
    parser.add_argument("--burst", type=int, default=120, help="simultaneous requests for the queue-full share")
    parser.add_argument("--phases", default="latency,burst,uploads,sessions",
                        help="comma-separated subset of latency, burst, uploads, sessions")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a timeout still stops the child server (finally)
    print(f"start: {uptime()}", flush=True)
    with tempfile.TemporaryDirectory() as work:
        server = Server(Path(work), args.ttl)
        phases = set(args.phases.split(","))
        try:
            fast_latencies(server, 3)  # warm-up
            if "latency" in phases:
                latency_phase(server, args.fast)
            if "burst" in phases:
                queued, refused, message = burst(server, args.burst)
                print(f"burst of {args.burst} simultaneous requests: {refused} refused at the queue "
                      f"({100 * refused / args.burst:.0f} %), {queued} queued; message: {message!r}", flush=True)
            if "uploads" in phases:
                accepted, refused, cache, message = upload_flood(server, 50, int(19.9 * 2**20))
                print(f"upload flood 50 x 19.9 MB from one client: {accepted} accepted, {refused} refused "
                      f"({message!r}); upload cache {cache / 2**20:.0f} MB", flush=True)
            if "sessions" in phases:
                warm, loaded, expired = sessions_rss(server, args.sessions, args.ttl)
                print(f"server RSS: warm {warm:.0f} MB, after {args.sessions} one-request sessions {loaded:.0f} MB "
                      f"({loaded - warm:+.0f}), after expiry (TTL {args.ttl} s) {expired:.0f} MB "
                      f"({expired - warm:+.0f})", flush=True)
        finally:
            server.stop()
    print(f"end: {uptime()}", flush=True)


def latency_phase(server: Server, count: int) -> None:
    base = fast_latencies(server, count)
    print(f"fast Grad-CAM, unloaded: p50 {statistics.median(base):.2f} s, p95 {percentile(base, .95):.2f} s",
          flush=True)
    for outstanding in (2, 8):
        times, sent, refused = with_slow_load(server, outstanding, count)
        ratio = percentile(times, .95) / percentile(base, .95)
        print(f"fast Grad-CAM with {outstanding} Score-CAM kept outstanding on another model: p50 "
              f"{statistics.median(times):.2f} s, p95 {percentile(times, .95):.2f} s ({ratio:.2f}x unloaded p95); "
              f"slow requests refused as busy: {refused}/{sent}", flush=True)


if __name__ == "__main__":
    main()
