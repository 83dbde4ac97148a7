"""Round trip of ``/analyze`` through gradio_client against a no-op Gradio app with the same request shape.

Starts the real app (``app.build_demo`` on ``--checkpoints``, the launch options of ``python app.py``) and two
no-op apps on free local ports, all in this process, and calls them in turn (interleaved, so a busy machine
slows every target alike) with ``gradio_client`` (files downloaded, as a user's script would):

- ``noop``: the same ``/analyze`` inputs (the photo uploaded, the same 9 parameters) and output components,
  answering with tiny constant values: the floor of Gradio's transport.
- ``noop-same-outputs``: the same, but answering with a real answer's values (same image sizes, same chart
  specs), kept from one real call: Gradio's transport plus encoding and downloading outputs of the real size.

Every call sends a photo no call sent before (the same JPEG with a numbered comment segment: the same pixels,
other bytes), so the app's answer cache, keyed on the file's SHA-256, never answers instead of the analysis.

Then times each server-side part of one analysis in-process (decode, analysis, overlays, SE charts, Gradio's
postprocessing of the outputs). Prints medians and the ratio real / no-op per model; the goal is <= 2x.

    python scripts/bench_roundtrip.py --rounds 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


OPTIONS = ("gradcam", "", "", 0.5, "paper", "top", "light")  # every parameter sent to every target


def noop_demo(outputs: tuple[Any, ...] | None) -> Any:
    """A Gradio app whose ``/analyze`` has the real one's inputs and outputs and does nothing."""
    import gradio as gr
    from PIL import Image

    tiny = (
        {"a": 1.0}, Image.new("RGB", (1, 1)), Image.new("RGB", (1, 1)), None, None, "", "",
    )
    answer = tiny if outputs is None else outputs

    def analyze(image: str | None, model: str | None, method: str = "gradcam", target: str | None = "",
                layer: str | None = "", opacity: float = 0.5, block: str = "paper", compare: str = "top",
                theme: str = "light") -> tuple[Any, ...]:
        return answer

    with gr.Blocks() as demo:
        inputs = [gr.Image(type="filepath", image_mode=None), gr.Dropdown(allow_custom_value=True),
                  gr.Dropdown(allow_custom_value=True), gr.Dropdown(allow_custom_value=True),
                  gr.Dropdown(allow_custom_value=True), gr.Slider(0, 1), gr.Dropdown(allow_custom_value=True),
                  gr.Radio(["top", "all", "none"]), gr.Textbox()]
        outputs_ = [gr.Label(), gr.Image(type="pil", format="png"), gr.Image(type="pil", format="png"), gr.Plot(),
                    gr.Plot(), gr.Markdown(), gr.Markdown()]
        gr.Button().click(analyze, inputs, outputs_, api_name="analyze")
    return demo


def launch(demo: Any, **options: Any) -> str:
    from app_server import free_port

    demo.queue(default_concurrency_limit=2)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True, **options)
    return demo.local_url


def server_parts(demo: Any, photo: Path, model: str, rounds: int) -> dict[str, float]:
    """Median milliseconds of each server-side part of one ``/analyze``, timed in-process."""
    import gradio as gr

    import senet
    from senet.image_io import load_image
    from ui.components import Result

    explorer_fn = next(fn for fn in demo.fns.values() if fn.api_name == "analyze")
    explorer = explorer_fn.fn.__self__
    net, card, entry = demo.catalog.load(model)
    parts: dict[str, list[float]] = {}

    def timed(name: str, start: float) -> float:
        now = time.perf_counter()
        parts.setdefault(name, []).append((now - start) * 1e3)
        return now

    for _ in range(rounds + 2):
        t = time.perf_counter()
        image = load_image(str(photo))
        t = timed("decode", t)
        analysis = senet.analyze(net, card, image)
        t = timed("analysis", t)
        view = explorer._photo(image, analysis, card)
        overlay = senet.overlay(view, analysis.cam, opacity=0.5)
        heat = senet.heatmap_image(analysis.cam, size=view.size)
        t = timed("overlays", t)
        chart, overview = explorer.se.figures(Result(entry.name, analysis, view), "paper", "top", "light")
        t = timed("se_charts", t)
        for picture in (overlay, heat):
            gr.Image(type="pil", format="png").postprocess(picture)
        gr.Plot().postprocess(chart)
        gr.Plot().postprocess(overview)
        timed("gradio_postprocess", t)
    return {name: statistics.median(values[2:]) for name, values in parts.items()}


def distinct_copies(photo: Path, count: int, folder: Path) -> list[Path]:
    """``count`` copies of a JPEG that decode to the same pixels but differ in their bytes (a COM segment)."""
    from unique_jpeg import unique_jpeg

    data = photo.read_bytes()
    copies = []
    for index in range(count):
        copy = folder / f"call{index}.jpg"
        copy.write_bytes(unique_jpeg(data, f"round-trip call {index}"))
        copies.append(copy)
    return copies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    parser.add_argument("--photo", default=str(ROOT / "examples" / "Monkeypox_1.jpg"))
    parser.add_argument("--rounds", type=int, default=20, help="calls per target (after 3 warm-up calls)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS") or 2))
    args = parser.parse_args(argv)

    import torch
    from gradio_client import Client, handle_file

    import app

    torch.set_num_threads(args.threads)
    # Every call comes from 127.0.0.1: lift the per-address upload rate, as the tests do (this measures the
    # analysis path, not the public-service limiter).
    from ui.limits import LIMITS

    LIMITS.uploads_per_minute, LIMITS.upload_bytes_per_minute = 10**6, 2**40
    demo = app.build_demo(args.checkpoints, device="cpu")
    models = demo.catalog.available()
    if not models:
        print(f"no usable checkpoints in {args.checkpoints}", file=sys.stderr)
        return 1
    real_url = launch(demo, **app.launch_options())
    analyze = next(fn.fn for fn in demo.fns.values() if fn.api_name == "analyze")
    same = analyze(args.photo, models[0])[:7]  # a real answer's values, for the second no-op
    noop_url = launch(noop_demo(None))
    same_url = launch(noop_demo(same))
    app.freeze_startup_objects()  # as python app.py does before serving
    targets: dict[str, tuple[str, str]] = {name: (real_url, name) for name in models}
    targets["noop"] = (noop_url, "x")
    targets["noop-same-outputs"] = (same_url, "x")
    times: dict[str, list[float]] = {name: [] for name in targets}
    with tempfile.TemporaryDirectory() as downloads, tempfile.TemporaryDirectory() as sent:
        photos = iter(distinct_copies(Path(args.photo), (args.rounds + 3) * len(targets), Path(sent)))
        clients = {name: Client(url, verbose=False, download_files=downloads) for name, (url, _) in targets.items()}
        try:
            for round_ in range(args.rounds + 3):
                for name, (_, model) in targets.items():
                    start = time.perf_counter()
                    result = clients[name].predict(handle_file(str(next(photos))), model, *OPTIONS, api_name="/analyze")
                    elapsed = (time.perf_counter() - start) * 1e3
                    if round_ >= 3:
                        times[name].append(elapsed)
                    if name in models and not Path(result[1]).is_file():
                        raise RuntimeError("the overlay PNG was not downloaded")
            parts = {name: server_parts(demo, Path(args.photo), name, max(5, args.rounds // 2)) for name in models}
        finally:
            for client in clients.values():
                client.close()
            demo.close()

    load = os.getloadavg()
    print(f"round trip of /analyze via gradio_client, files downloaded; {args.rounds} interleaved calls each, "
          f"torch threads {args.threads}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    floor = statistics.median(times["noop"])
    same_floor = statistics.median(times["noop-same-outputs"])
    for name, values in times.items():
        p50 = statistics.median(values)
        p90 = sorted(values)[int(0.9 * (len(values) - 1))]
        line = f"  {name:32s} p50 {p50:7.1f} ms  p90 {p90:7.1f} ms"
        if name in models:
            line += f"  = {p50 / floor:.2f}x noop, {p50 / same_floor:.2f}x noop-same-outputs"
        print(line)
    for name, values in parts.items():
        listed = ", ".join(f"{part} {ms:.1f}" for part, ms in values.items())
        print(f"  server-side parts, {name} (median ms): {listed}")
    worst = max(statistics.median(times[name]) / floor for name in models)
    print(f"goal <= 2x the no-op round trip: {'met' if worst <= 2 else 'MISSED'} (worst {worst:.2f}x)")
    return 0 if worst <= 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
