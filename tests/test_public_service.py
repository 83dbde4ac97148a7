"""The app as a public service (issue 16), through the real HTTP API: one test group per numbered item.

1 fair queues, 2 data URLs guarded like uploads, 3 bad cards contained, 4 card text as text, 5 bounded uploads and
sessions, 6 lying images, 7 a sentence for every bad input, 9 a second copy on the same port.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from app_server import free_port, guard_limits, served_app, torch_threads, write_checkpoint
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError
from hostile_files import assert_human, float_tiff, jpeg_claiming, jpeg_over_frame, png_bomb
from markdown_it import MarkdownIt
from PIL import Image
from public_client import analyze_data, call, data_url, fn_index, join, outcome, photo, session

from ui import guards

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300),
              pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("checkpoints")
    write_checkpoint(directory, "alpha", "se_resnet18", seed=1)
    write_checkpoint(directory, "beta", "se_resnet18", seed=2)
    return directory


@pytest.fixture(scope="module")
def server(checkpoints, tmp_path_factory):
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio_cache"))  # our own upload cache
    try:
        with torch_threads(1), served_app(checkpoints) as (demo, url):
            yield demo, url
    finally:
        os.environ.pop("GRADIO_TEMP_DIR", None)


def _noise(seed: int = 0, size: int = 64) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


GOOD = photo(url=data_url(_noise()))
_SEEDS = iter(range(1, 10**6))


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    _noise().save(buffer, "PNG")
    return buffer.getvalue()


def fresh() -> dict:
    """A photo never sent before: identical requests are answered from the app's cache without running a model."""
    return photo(url=data_url(_noise(next(_SEEDS))))


# --- 1: fair queues -------------------------------------------------------------------------------------------

def test_fast_analyses_do_not_wait_behind_slow_ones(server):
    demo, url = server
    analyze = fn_index(demo, "analyze")
    slow = [session() for _ in range(2)]
    for name in slow:  # two Score-CAMs on beta, from two sessions
        assert join(url, analyze, analyze_data(fresh(), "beta", "scorecam"), name) is None
    deadline = time.monotonic() + 30
    while guards.LANES.slow_count == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    for model in ("alpha", "beta"):  # another model, and the same model (the slow lane has its own copy)
        fast = call(url, analyze, analyze_data(fresh(), model, "gradcam"))
        assert fast.ok, fast.message
        assert guards.LANES.slow_count > 0, "the fast request waited until the slow ones were done"
    assert all(outcome(url, name).ok for name in slow)


def _replies(url: str, names: list[str], refusals: list) -> list:
    """Each session's reply: its refusal at the join, or its event's outcome."""
    return [refused or outcome(url, name) for name, refused in zip(names, refusals, strict=True)]


def test_slow_lane_is_bounded_per_app_and_per_session(server):
    demo, url = server
    analyze = fn_index(demo, "analyze")
    with guard_limits(slow_waiting=1):
        names = [session() for _ in range(4)]
        # refused at the join when the lane is already full, else by the handler when its turn comes
        refusals = [join(url, analyze, analyze_data(fresh(), "beta", "scorecam"), name) for name in names]
        replies = _replies(url, names, refusals)
    refused = [reply.message for reply in replies if not reply.ok]
    assert len(refused) == 2 and sum(reply.ok for reply in replies) == 2, refused  # 1 running + 1 waiting
    assert all(message.startswith("Slow methods (Score-CAM, Ablation-CAM) are busy") for message in refused)
    assert_human(refused[0])
    with guard_limits(session_events=5):
        name = session()
        first = join(url, analyze, analyze_data(fresh(), "beta", "ablationcam"), name)
        second = join(url, analyze, analyze_data(fresh(), "beta", "ablationcam"), name)
        assert first is None
        messages = [] if second is None else [second.message]
        expected, completed = (1 if second else 2), 0
        with httpx.stream("GET", url + f"gradio_api/queue/data?session_hash={name}", timeout=300) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_completed":
                    event = json.loads(line[5:])
                    if not event.get("success"):
                        messages.append(event["output"].get("error"))
                    completed += 1
                    if completed == expected:
                        break
    assert messages == [guards.SLOW_SESSION], messages


def test_per_session_limit_and_full_queue_get_sentences(server):
    demo, url = server
    analyze = fn_index(demo, "analyze")
    with guard_limits(session_events=1):
        name = session()
        assert join(url, analyze, analyze_data(fresh(), "beta", "scorecam"), name) is None
        refused = join(url, analyze, analyze_data(GOOD, "alpha"), name)
        assert refused is not None and refused.status == 503
        assert refused.message == guards.SESSION_BUSY.format(n=1)
        assert outcome(url, name).ok
    before = demo._queue.max_size
    demo._queue.max_size = 0  # as if 40 requests were waiting
    try:
        refused = join(url, analyze, analyze_data(GOOD), session())
    finally:
        demo._queue.max_size = before
    assert refused.status == 503 and refused.message.startswith("The server is busy")
    assert_human(refused.message)


# --- 2: data URLs go through the upload guards ------------------------------------------------------------------

def test_data_urls_are_size_and_header_checked_before_decoding(server):
    demo, url = server
    analyze = fn_index(demo, "analyze")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bomb = call(url, analyze, analyze_data(photo(url=data_url(png_bomb(40000, 40000)))))
    assert bomb.status == 422 and "too large" in bomb.message, bomb
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 200 * 1024  # KB: nothing was decoded
    big = call(url, analyze, analyze_data(photo(url="data:image/png;base64," + "A" * (27 * 2**20))))
    assert big.status == 422 and big.message.startswith("The file is too large (20.2 MB)"), big
    huge = call(url, analyze, analyze_data(photo(url="data:image/png;base64," + "A" * (40 * 2**20))))
    assert huge.status == 413 and "too large" in huge.message, huge  # refused from Content-Length, unread
    lying = call(url, analyze, analyze_data(photo(url=data_url(jpeg_claiming(13000, 13000), "JPEG"))))
    assert not lying.ok and "incomplete" in lying.message
    with_path = call(url, analyze, analyze_data(photo(url=GOOD["url"], path="/etc/passwd")))
    assert with_path.ok, with_path.message  # the data URL is the photo; the path beside it is never opened
    for reply in (bomb, big, huge, lying):
        assert_human(reply.message)


# --- 3: one bad card does not stop the app ---------------------------------------------------------------------

def test_bad_cards_leave_the_app_serving_the_others(tmp_path):
    weights = write_checkpoint(tmp_path, "good", "se_resnet18", seed=1)
    card = json.loads(weights.with_suffix(".json").read_text())
    bad = {"metrics_list": {"metrics": []}, "data_list": {"data": [1, 2]}, "profiles": {"class_profiles": [1]},
           "folds": {"metrics": {"cv": {"folds": "abc"}}}, "text": {"description": 5},
           "accuracy": {"metrics": {"accuracy": 1e308}}, "labels": {"labels": ["x" * 90 + str(i) for i in range(600)]}}
    for name, change in bad.items():
        (tmp_path / f"{name}.safetensors").symlink_to(weights.name)
        (tmp_path / f"{name}.json").write_text(json.dumps({**card, **change}))
    (tmp_path / "deep.safetensors").symlink_to(weights.name)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "huge_labels.safetensors").symlink_to(weights.name)
    many = ["y" * 99 + str(i) for i in range(30000)]  # 3 MB of labels
    (tmp_path / "huge_labels.json").write_text(json.dumps({**card, "labels": many}))
    os.symlink("loop_b.safetensors", tmp_path / "loop_a.safetensors")
    os.symlink("loop_a.safetensors", tmp_path / "loop_b.safetensors")
    with torch_threads(1), served_app(tmp_path) as (demo, url):
        assert demo.catalog.available() == ["good"]
        config = httpx.get(url + "config", timeout=30)
        assert config.status_code == 200 and len(config.content) < 2 * 2**20
        assert "good" in config.text and "deep (unavailable)" in config.text
        reply = call(url, fn_index(demo, "analyze"), analyze_data(GOOD, "good"))
        assert reply.ok, reply.message
        refused = call(url, fn_index(demo, "analyze"), analyze_data(GOOD, "metrics_list"))
        assert refused.message == "The model metrics_list is unavailable; choose another one.", refused
        assert "metrics must be an object" in demo.catalog.entries["metrics_list"].error  # the reason: for the log


# --- 4: card text renders as text -------------------------------------------------------------------------------

def test_card_text_cannot_pull_remote_content(tmp_path):
    weights = write_checkpoint(tmp_path, "shady", "se_resnet18", seed=1)
    card = json.loads(weights.with_suffix(".json").read_text())
    card.update(title='<img src="http://127.0.0.1:9/t.png">', citation="```\n<img src=x>",
                description='![x](http://127.0.0.1:9/x.png) <form action="http://127.0.0.1:9"><input type="password">'
                            "</form> [link](http://127.0.0.1:9)")
    weights.with_suffix(".json").write_text(json.dumps(card))
    with torch_threads(1), served_app(tmp_path) as (demo, url):
        load = next(index for index, fn in demo.fns.items() if fn.name == "select_model"
                    and any(event == "load" for _, event in fn.targets))
        reply = call(url, load, ["shady"])
        assert reply.ok, reply.message
    markdown = reply.data[1]
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    for tag in ("<img", "<form", "<input", "<a "):
        assert tag not in rendered, tag
    assert "http://127.0.0.1:9" not in markdown  # escaped: no bare URL for a renderer to turn into a link


# --- 5: bounded uploads, sessions and state ---------------------------------------------------------------------

def _upload(url: str, size: int, client: str = "10.0.0.1") -> httpx.Response:
    """One upload, as sent through a proxy for ``client`` (the rate is counted per X-Forwarded-For address)."""
    return httpx.post(url + "gradio_api/upload", files={"files": ("x.jpg", os.urandom(size), "image/jpeg")},
                      headers={"X-Forwarded-For": client}, timeout=60)


def test_upload_cache_is_capped_and_uploads_are_rate_limited(server):
    demo, url = server
    cache = Path(demo.app.uploaded_file_dir)
    with guard_limits(upload_cache_bytes=30 * 2**20, upload_keep_s=600):
        replies = [_upload(url, 5 * 2**20) for _ in range(10)]
        assert guards.cache_bytes(cache) <= 30 * 2**20
    refused = [reply for reply in replies if reply.status_code != 200]
    assert refused and all(reply.status_code == 503 for reply in refused)
    assert refused[0].text == "The server's upload space is full. Please try again in a few minutes."
    with guard_limits(uploads_per_minute=2, upload_cache_bytes=2**40, trusted_proxies=1):  # as on a Space
        codes = [_upload(url, 1000, "10.0.0.2").status_code for _ in range(2)]
        limited = _upload(url, 1000, "10.0.0.2")
        forged = _upload(url, 1000, "203.0.113.9, 10.0.0.2")  # the client's own entry, then the proxy's
        other = _upload(url, 1000, "10.0.0.3")
    assert codes == [200, 200] and limited.status_code == 429 and limited.text.startswith("Too many uploads")
    assert forged.status_code == 429  # a made-up X-Forwarded-For entry does not buy a fresh allowance
    assert other.status_code == 200  # another address has its own allowance
    with guard_limits(uploads_per_minute=2, upload_cache_bytes=2**40, trusted_proxies=0):  # the socket's peer
        # (uvicorn itself takes the peer from X-Forwarded-For's last entry when the peer is 127.0.0.1, as here)
        codes = [_upload(url, 1000, f"198.51.100.{n}, 10.0.0.4").status_code for n in range(3)]
    assert codes == [200, 200, 429]  # made-up entries on the left do not buy a fresh allowance either
    assert _upload(url, 25 * 2**20).status_code == 413  # over 20 MB: refused from Content-Length


def test_upload_cache_size_is_estimated_between_scans_and_exact_near_the_cap(tmp_path, monkeypatch):
    from ui import http_limits

    scans = []
    real_scan = http_limits.cache_bytes
    monkeypatch.setattr(http_limits, "cache_bytes", lambda directory: scans.append(1) or real_scan(directory))
    limits = guards.Limits(upload_cache_bytes=10_000, uploads_per_minute=10**6, upload_bytes_per_minute=2**40,
                           upload_keep_s=600)
    ledger = http_limits.UploadLedger(limits)

    def upload(size: int, client: str = "a") -> str | None:
        refusal = ledger.admit(client, size, tmp_path)
        if refusal is None:  # Gradio then writes the file
            (tmp_path / f"upload{len(list(tmp_path.iterdir()))}").write_bytes(b"x" * size)
        return refusal

    (tmp_path / "old").write_bytes(b"x" * 3000)
    assert upload(1000) is None and len(scans) == 1  # the first upload scans
    for _ in range(4):  # then admitted sizes are counted up without scanning: 8,000 bytes
        assert upload(1000) is None
    assert len(scans) == 1
    (tmp_path / "answer.png").write_bytes(b"x" * 1500)  # written by Gradio itself: not in the estimate
    assert upload(1500) is None and len(scans) == 1  # 8,000 estimated + 1,500 fits (really 9,500 + 1,500)
    # Near the cap the estimate is replaced by an exact scan (after trying to evict; nothing is old enough):
    # 11,000 bytes are there (the estimate said 9,500), so 600 more do not fit.
    assert upload(600) == "The server's upload space is full. Please try again in a few minutes."
    assert len(scans) >= 2 and http_limits.cache_bytes(tmp_path) == 11_000
    monkeypatch.setattr(http_limits, "CACHE_RESCAN_S", -1.0)  # past the rescan interval every upload scans again
    before = len(scans)
    upload(1, "b")
    assert len(scans) > before


def test_sessions_are_bounded_swept_and_small(checkpoints, monkeypatch):
    with torch_threads(1), served_app(checkpoints, max_sessions=3) as (demo, url):
        analyze = fn_index(demo, "analyze")
        for _ in range(6):
            assert call(url, analyze, analyze_data(GOOD)).ok
        holder = demo.state_holder
        assert len(holder.session_data) <= 3
        results = [state for s in holder.session_data.values() for state in s.state_data.values()
                   if state is not None and hasattr(state, "photo_jpeg")]
        assert results and all(len(pickle.dumps(result)) < 300_000 for result in results)
        monkeypatch.setattr(guards, "STATE_TTL", 0)
        assert demo.guard.sweep(demo) == len(results) and len(holder.session_data) == 0


# --- 6: images that lie -----------------------------------------------------------------------------------------

def test_lying_and_invalid_images_are_refused_and_odd_sizes_accepted(server, tmp_path):
    _, url = server
    client = Client(url, verbose=False)
    cases = {"frame.jpg": (jpeg_over_frame(2000, 2000), "holds data for only about 2 %"),
             "nan.tif": (float_tiff([1.0, float("nan")]), "invalid values"),
             "flat.tif": (float_tiff([0.5]), "same value in every pixel")}
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(AppError) as caught:
            client.predict(handle_file(str(tmp_path / name)), "alpha", api_name="/analyze")
        assert reason in caught.value.message
        assert_human(caught.value.message, str(tmp_path))
    buffer = io.BytesIO()
    Image.new("RGB", (7999, 5999), (200, 40, 40)).save(buffer, "JPEG", quality=50)
    (tmp_path / "odd.jpg").write_bytes(buffer.getvalue())
    label = client.predict(handle_file(str(tmp_path / "odd.jpg")), "alpha", api_name="/analyze")[0]
    assert label["label"]


# --- 7: a sentence for every bad API input --------------------------------------------------------------------

BAD_INPUTS = [
    ({"target": 3}, "The class to explain must be given as text (a name from the list), not int 3."),
    ({"layer": ["layer4"]}, "The cam layer must be one value from its list, not list ['layer4']."),
    ({"opacity": "abc"}, "The heatmap opacity must be a number from 0 to 1, not 'abc'."),
    ({"opacity": None}, "The heatmap opacity must be a number from 0 to 1, not None."),
    ({"block": ["SE_5_2"]}, "The se block must be one value from its list, not list ['SE_5_2']."),
    ({"method": "nope"}, "Unknown cam method 'nope'; choose one of:"),
    ({"target": "Smallpox"}, "This model has no class 'Smallpox'; choose one of:"),
]


@pytest.mark.parametrize(("change", "sentence"), BAD_INPUTS, ids=lambda value: str(value)[:30])
def test_bad_inputs_get_a_sentence(server, change, sentence):
    demo, url = server
    method = change.pop("method", "gradcam")
    reply = call(url, fn_index(demo, "analyze"), analyze_data(GOOD, "alpha", method, **change))
    assert not reply.ok and reply.message.startswith(sentence), reply
    assert_human(reply.message[:200].split(";")[0] + ".")


def test_missing_values_server_paths_and_internal_handlers_are_refused(server):
    demo, url = server
    analyze = fn_index(demo, "analyze")
    missing = call(url, analyze, [GOOD, "alpha"])
    assert missing.status == 422 and missing.message.startswith("This endpoint takes 9 values (photo, model, ")
    for path in ("/etc/passwd", str(ROOT / "app.py"), "http://127.0.0.1:9/x.jpg"):
        reply = call(url, analyze, analyze_data(photo(path=path)))
        assert reply.status == 422 and reply.message.startswith(("The photo must be uploaded", "Photos given by URL"))
    with pytest.raises(ValidationError, match="heatmap opacity must be a number from 0 to 1"):
        Client(url, verbose=False).predict(handle_file(str(ROOT / "examples" / os.listdir(ROOT / "examples")[0])),
                                           "alpha", "gradcam", "", "", "abc", api_name="/analyze")
    for index, fn in demo.fns.items():
        if fn.name in guards.INTERNAL and fn.api_name not in guards.DOCUMENTED \
                and not any(event == "load" for _, event in fn.targets):
            reply = call(url, index, [None] * len(fn.inputs))
            assert reply.status == 400 and reply.message == guards.NOT_AN_API, (fn.name, reply)


def test_bad_channel_gets_a_sentence(server):
    demo, url = server
    name = session()
    assert call(url, fn_index(demo, "analyze"), analyze_data(GOOD), name).ok
    mute = fn_index(demo, "intervene_channel")  # the "mute this channel" button: block and channel from the page
    for channel, sentence in (("abc", "The channel must be a whole number, not 'abc'."),
                              ([3], "The channel (most different from the class average first) must be one "
                                    "value from its list, not list [3]."),  # refused before it is queued
                              (9999, "SE_5_2 has channels 0 to 511")):
        reply = call(url, mute, [None, "SE_5_2", channel], name)
        assert not reply.ok and reply.message.startswith(sentence), reply
        assert_human(reply.message)
    reply = call(url, mute, [None, "SE_9_9", 1], name)
    assert not reply.ok and "no SE block" in reply.message, reply
    assert call(url, mute, [None, "SE_5_2", 3], name).ok


# --- 9: a second copy on the same port --------------------------------------------------------------------------

def test_second_copy_on_a_taken_port_says_so_in_one_line():
    """Also checked by test_app; here through a real start with every guard installed."""
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        started = subprocess.run([sys.executable, "app.py", "--port", str(port), "--device", "cpu"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=240,
                                 env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert started.returncode != 0
    lines = [line for line in started.stderr.splitlines() if line.strip() and "Warning" not in line]
    assert lines[-1] == (f"app.py: error: port {port} on 127.0.0.1 is already in use; choose another with --port "
                         "(or stop the program that uses it)"), started.stderr[-2000:]
    assert "Traceback" not in started.stderr


def test_guards_do_not_slow_a_normal_analysis_down(server):
    """Sanity: guarded requests from several sessions at once all succeed (no refusals under normal use)."""
    demo, url = server
    analyze = fn_index(demo, "analyze")
    replies: list = []
    def one() -> None:
        replies.append(call(url, analyze, analyze_data(GOOD)))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(reply.ok for reply in replies), [reply.message for reply in replies]
    assert np.isfinite([reply.data[0]["confidences"][0]["confidence"] for reply in replies]).all()


# --- 1, 2 on every other endpoint that takes a photo or a file ----------------------------------------------------

PHOTO_ENDPOINTS = {  # api_name -> its inputs, with the photo first
    "compare": lambda image, method="gradcam": [image, ["alpha", "beta"], method, "light"],
    "report": lambda image, method="gradcam": [image, "alpha", method],
    "classify": lambda image, method="gradcam": [image, "alpha"],
    "explain": lambda image, method="gradcam": [image, "alpha", method],
}


@pytest.mark.parametrize("api_name", PHOTO_ENDPOINTS)
def test_every_photo_endpoint_checks_data_urls_and_paths_before_decoding(server, api_name):
    demo, url = server
    index, inputs = fn_index(demo, api_name), PHOTO_ENDPOINTS[api_name]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for image, start in ((photo(url=data_url(png_bomb(40000, 40000))), "The image is too large"),
                         (photo(url="data:image/png;base64," + "A" * (27 * 2**20)), "The file is too large (20.2 MB)"),
                         (photo(path="/etc/passwd"), "The photo must be uploaded to this server first"),
                         (photo(path="http://127.0.0.1:9/x.jpg"), "Photos given by URL are not fetched")):
        reply = call(url, index, inputs(image))
        assert reply.status == 422 and reply.message.startswith(start), (api_name, reply)
        assert_human(reply.message)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 200 * 1024  # KB: nothing was decoded
    lying = call(url, index, inputs(photo(url=data_url(jpeg_claiming(13000, 13000), "JPEG"))))
    assert not lying.ok and "incomplete" in lying.message, (api_name, lying)  # its header passes; its data does not
    good = call(url, index, inputs(fresh()))
    assert good.ok, (api_name, good.message)


def test_file_inputs_check_data_urls_and_paths(server):
    demo, url = server
    batch = fn_index(demo, "batch")
    for file in (photo(url="data:application/zip;base64," + "A" * (27 * 2**20)), photo(url=GOOD["url"])):
        inline = call(url, batch, [[file], "alpha"])  # Gradio would write it to disk past the upload limits
        assert inline.status == 422 and inline.message.startswith("Files for this input must be uploaded first"), \
            inline
    for path in ("/etc/passwd", "http://127.0.0.1:9/x.zip"):
        reply = call(url, batch, [[photo(path=path)], "alpha"])
        assert reply.status == 422 and reply.message.startswith(("The file must be uploaded", "Files given by URL")), \
            reply
        assert_human(reply.message)
    uploaded = httpx.post(url + "gradio_api/upload", files={"files": ("a.png", _png_bytes(), "image/png")}, timeout=60)
    done = call(url, batch, [[photo(path=uploaded.json()[0])], "alpha"])
    assert done.ok and done.data[1]["data"][0][1], done


@pytest.mark.parametrize("api_name", ["report", "explain"])
def test_slow_methods_of_the_report_and_the_explain_tool_take_the_slow_lane(server, api_name):
    demo, url = server
    index, inputs = fn_index(demo, api_name), PHOTO_ENDPOINTS[api_name]
    with guard_limits(slow_waiting=0), guards.LANES._slow:  # the lane is taken: one slow request may wait
        waiting = session()
        assert join(url, index, inputs(fresh(), "scorecam"), waiting) is None
        deadline = time.monotonic() + 60
        while guards.LANES.slow_count == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert guards.LANES.slow_count == 1
        busy = call(url, index, inputs(fresh(), "ablationcam"))
        assert not busy.ok and busy.message.startswith("Slow methods (Score-CAM, Ablation-CAM) are busy"), busy
        fast = call(url, index, inputs(fresh(), "gradcam"))  # same model, while a slow request waits for the lane
        assert fast.ok, fast.message
    assert outcome(url, waiting).ok


def test_own_model_uploads_pass_the_same_file_checks(checkpoints, tmp_path):
    """The "use your own model" panel: its file input gets the same refusals before queueing, and its larger upload
    limit (300 MB) lets a weights file over the photo limits through the body-size check."""
    with torch_threads(1), served_app(checkpoints, uploads=True) as (demo, url):
        add = fn_index(demo, "add_own_model")
        for file, start in ((photo(url="data:application/octet-stream;base64,AAAA"), "Files for this input must be "
                                                                                     "uploaded first"),
                            (photo(path=str(checkpoints / "alpha.safetensors")), "The file must be uploaded"),
                            (photo(path="http://127.0.0.1:9/m.pth"), "Files given by URL")):
            reply = call(url, add, [file, "a, b", ""])
            assert reply.status == 422 and reply.message.startswith(start), reply
        weights = os.urandom(25 * 2**20)  # over the 20 MB photo limit, under the 300 MB model limit
        uploaded = httpx.post(url + "gradio_api/upload", files={"files": ("m.safetensors", weights)}, timeout=120)
        assert uploaded.status_code == 200, uploaded.text
        reply = call(url, add, [photo(path=uploaded.json()[0]), "a, b", ""])
        assert not reply.ok and "Traceback" not in reply.message and reply.message, reply  # not a model: a sentence


def test_compare_offers_fast_methods_only(server):
    """Slow methods on several models at once would bypass the one-at-a-time slow lane: /compare refuses them."""
    demo, url = server
    reply = call(url, fn_index(demo, "compare"), PHOTO_ENDPOINTS["compare"](fresh(), "scorecam"))
    assert reply.status == 422 and reply.message.startswith("Unknown cam method 'scorecam'; choose one of:"), reply
    assert "scorecam" not in reply.message.split(":", 1)[1]


def test_refusals_before_queueing_follow_the_pages_language(server):
    demo, url = server
    body = {"data": analyze_data(photo(url=data_url(png_bomb(40000, 40000)))), "fn_index": fn_index(demo, "analyze"),
            "session_hash": session(), "trigger_id": None, "event_data": None}
    answers = {}
    for language in ("en-US", "zh-CN"):
        response = httpx.post(url + "gradio_api/queue/join", json=body, headers={"Accept-Language": language},
                              timeout=30)
        assert response.status_code == 422
        answers[language] = response.json()["detail"][0]["message"]
    assert answers["en-US"].startswith("The image is too large") and answers["zh-CN"].startswith("图片太大"), answers


def test_refusals_of_handlers_and_guards_are_chinese_on_a_chinese_page(server):
    """Before queueing (the guard), in the handler (the library's option errors, the intervention's) and a full
    queue: all in Chinese when the request carries a Chinese Accept-Language; only names and values stay Latin."""
    demo, url = server
    zh = {"Accept-Language": "zh-CN,zh;q=0.9"}
    analyze, mute = fn_index(demo, "analyze"), fn_index(demo, "intervene_channel")
    name = session()
    assert call(url, analyze, analyze_data(GOOD), name).ok  # the channel buttons act on this session's result
    said = [call(url, analyze, analyze_data(GOOD, "alpha", "nope"), headers=zh).message,
            call(url, analyze, analyze_data(GOOD, "alpha", target="Smallpox"), name, headers=zh).message,
            call(url, mute, [None, "SE_5_2", 9999], name, headers=zh).message]
    before = demo._queue.max_size
    demo._queue.max_size = 0
    try:
        said.append(join(url, analyze, analyze_data(GOOD), session(), headers=zh).message)
    finally:
        demo._queue.max_size = before
    assert said[0].startswith("未知的CAM 方法 'nope'；可选："), said
    assert said[1].startswith("这个模型没有类别 'Smallpox'；可选：水痘、"), said
    assert said[2] == "SE_5_2 的通道为 0 到 511，收到的是 9999。", said
    assert said[3].startswith("服务器正忙：已有 "), said
    names = re.compile(r"'nope'|'Smallpox'|SE_5_2|CAM|[a-z_]*cam[a-z_]*|[\d.,，：；。 ]")
    for message in said:
        assert not re.search(r"[A-Za-z]{2,}", names.sub("", message)), message
