"""Many users at once: 32 concurrent ``gradio_client`` requests over two models against a launched app.

Every concurrent result must be identical to what the same request gets alone: no mixing of hooks, activations
or SE weights between requests, sessions or models.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from app_server import served_app, torch_threads, write_checkpoint
from gradio_client import Client, handle_file
from PIL import Image

from senet.hooks import hook_count
from ui.explore import ANALYSES

pytestmark = pytest.mark.timeout(300)

MODELS = ("alpha", "beta")
REQUESTS = 32
SESSIONS = 4  # separate clients (browser sessions), each sending REQUESTS / SESSIONS at once


def photo(seed: int, size: tuple[int, int] = (96, 72)) -> Image.Image:
    """A distinct photo-like image per seed (smooth colour fields plus noise)."""
    rng = np.random.default_rng(seed)
    low = Image.fromarray(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    noisy = np.asarray(low, dtype=np.float32) + rng.normal(0, 10, (size[1], size[0], 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    checkpoints = tmp_path_factory.mktemp("checkpoints")
    # 128 x 128 makes the model's share of each request large enough for overlaps to happen often.
    write_checkpoint(checkpoints, "alpha", "se_resnet18", seed=1, size=128)
    write_checkpoint(checkpoints, "beta", "se_densenet121", seed=2, size=128)
    with torch_threads(1), served_app(checkpoints, session_events=64) as (demo, url):
        yield demo, url


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    directory = tmp_path_factory.mktemp("photos")
    paths = []
    for seed in range(4):
        path = directory / f"photo_{seed}.png"
        photo(seed).save(path)
        paths.append(path)
    return paths


def comparable(outputs: tuple) -> dict:
    """Everything the request returns except the status line (it reports timings)."""
    label, overlay, heatmap, chart, overview, sentence, _status = outputs
    return {
        "label": label,
        "overlay": np.asarray(Image.open(overlay).convert("RGB")),
        "heatmap": np.asarray(Image.open(heatmap).convert("RGB")),
        "chart": _plot_pixels(chart),
        "overview": _plot_pixels(overview),
        "sentence": sentence,
    }


def _plot_pixels(plot: dict) -> np.ndarray:
    """A chart's content: the plotly spec the browser draws, as bytes (equal specs draw equal charts)."""
    return np.frombuffer(plot["plot"].encode(), dtype=np.uint8)


def assert_same(actual: dict, expected: dict, what: str) -> None:
    assert actual["label"] == expected["label"], what
    assert actual["sentence"] == expected["sentence"], what
    for key in ("overlay", "heatmap", "chart", "overview"):
        np.testing.assert_array_equal(actual[key], expected[key], err_msg=f"{what}: {key}")


def handler(demo, api_name: str):
    """The Python function behind a named endpoint (to hammer it without the queue's pacing)."""
    return next(fn.fn for fn in demo.fns.values() if fn.api_name == api_name)


def test_handler_threads_on_one_model_match_serial_calls(server, images):
    """Eight threads on the same model at once, straight into the handler: the per-model lock must hold."""
    demo, _ = server
    analyze = handler(demo, "analyze")

    def run(path):
        probabilities, overlay, heatmap, *_ = analyze(str(path), "beta")
        return probabilities, np.asarray(overlay), np.asarray(heatmap)

    serial = [run(path) for path in images]
    ANALYSES.clear()  # the parallel calls must compute, not read the serial ones' answers
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(run, images * 2))
    for index, (probabilities, overlay, heatmap) in enumerate(parallel):
        expected = serial[index % len(images)]
        assert probabilities == expected[0]
        np.testing.assert_array_equal(overlay, expected[1])
        np.testing.assert_array_equal(heatmap, expected[2])


def test_concurrent_requests_match_serial_ones(server, images):
    demo, url = server
    # Neighbours in the queue run side by side: pairs of the same model, then pairs of the other one.
    jobs = [(MODELS[(index // 2) % 2], images[index % len(images)]) for index in range(REQUESTS)]
    pairs = sorted(set(jobs))

    alone = Client(url, verbose=False)
    serial = {pair: comparable(alone.predict(handle_file(str(pair[1])), pair[0], api_name="/analyze"))
              for pair in pairs}
    # The comparison only means something if different requests give different answers.
    assert len({str(result["label"]) for result in serial.values()}) == len(pairs)

    ANALYSES.clear()  # the concurrent requests must compute, not read the serial ones' answers
    clients = [Client(url, verbose=False) for _ in range(SESSIONS)]
    submitted = [clients[index % SESSIONS].submit(handle_file(str(path)), model, api_name="/analyze")
                 for index, (model, path) in enumerate(jobs)]
    with ThreadPoolExecutor(max_workers=REQUESTS) as pool:  # collect in parallel: no client waits on another
        results = list(pool.map(lambda job: job.result(timeout=240), submitted))

    assert len(results) == REQUESTS
    for index, (job, outputs) in enumerate(zip(jobs, results)):
        assert_same(comparable(outputs), serial[job], f"request {index} {job[0]} {job[1].name}")

    catalog = demo.catalog
    for name in MODELS:
        model, _, _ = catalog.load(name)
        assert hook_count(model) == 0, f"{name} kept hooks after concurrent requests"
        assert not model.training
