"""Hostile and unusual uploads through the real upload path: a launched app, ``gradio_client``, ``handle_file``.

Every refused file must come back as a short human message (``AppError``), never Python text, and the server must
keep serving good photos afterwards.
"""

from __future__ import annotations

import resource
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from app_server import served_app, torch_threads, write_checkpoint
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from hostile_files import accepted_uploads, assert_human, big_phone_photo, rejected_uploads
from PIL import Image

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")]

REJECTED = rejected_uploads()
# A representative subset of the accepted files (each costs a full analysis): modes, formats, animation, EXIF.
ACCEPTED_NAMES = ("grey16_I16.png", "rgb48.png", "cmyk.jpg", "bilevel_1.png", "palette_transparent.png",
                  "animated.gif", "animated.webp", "photo.tif", "progressive.jpg", "jpeg_named.png",
                  "phone_exif_6.jpg", "phone_exif_3.jpg")
ACCEPTED = [upload for upload in accepted_uploads() if upload.name in ACCEPTED_NAMES] + [big_phone_photo()]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    checkpoints = tmp_path_factory.mktemp("checkpoints")
    write_checkpoint(checkpoints, "alpha", "se_resnet18", seed=1)
    with torch_threads(1), served_app(checkpoints, session_events=64) as (demo, url):
        yield demo, url, Client(url, verbose=False)


@pytest.fixture(scope="module")
def uploads_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("uploads")


def analyze(client: Client, path) -> tuple:
    return client.predict(handle_file(str(path)), "alpha", api_name="/analyze")


def assert_serves(client: Client, uploads_dir) -> None:
    good = next(upload for upload in accepted_uploads() if upload.name == "photo_lossy.webp")
    label = analyze(client, good.write(uploads_dir))[0]
    assert label["label"] in {entry["label"] for entry in label["confidences"]}


@pytest.mark.parametrize("upload", REJECTED, ids=lambda upload: upload.name)
def test_hostile_upload_gets_a_human_message(server, uploads_dir, upload):
    _, _, client = server
    with pytest.raises(AppError) as caught:
        analyze(client, upload.write(uploads_dir))
    message = caught.value.message
    assert upload.reason in message.lower(), message
    assert_human(message, str(uploads_dir), upload.name)


@pytest.mark.parametrize("upload", ACCEPTED, ids=lambda upload: upload.name)
def test_unusual_image_is_analysed(server, uploads_dir, upload):
    _, _, client = server
    label, overlay, heatmap, *_ = analyze(client, upload.write(uploads_dir))
    confidences = [entry["confidence"] for entry in label["confidences"]]
    assert confidences == sorted(confidences, reverse=True) and 0 < sum(confidences) <= 1 + 1e-6
    assert label["label"] == label["confidences"][0]["label"]
    with Image.open(overlay) as shown, Image.open(heatmap) as heat:
        width, height = upload.size
        # The overlay is drawn on the upright photo (at most 640 px): same orientation as the scene.
        assert (shown.width >= shown.height) == (width >= height)
        assert shown.size == heat.size


def test_bombs_do_not_reach_the_decoder(server, uploads_dir):
    """A 1.6-gigapixel PNG would need 1.6 GB as greyscale (4.8 GB as RGB): the process peak must not move."""
    _, _, client = server
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for upload in (upload for upload in REJECTED if upload.name.startswith("bomb")):
        with pytest.raises(AppError, match="too large"):
            analyze(client, upload.write(uploads_dir))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - peak_before < 300


def test_oversized_upload_is_refused_by_the_server(server):
    _, url, _ = server
    huge = b"\xff\xd8\xff\xe0" + bytes(21 * 2**20)
    response = httpx.post(f"{url}gradio_api/upload", files={"files": ("huge.jpg", huge, "image/jpeg")}, timeout=60)
    assert response.status_code == 413
    assert "Traceback" not in response.text


def test_missing_image_is_a_human_message(server):
    _, url, _ = server
    data = [None, "alpha", "gradcam", "", "", 0.5, "paper", "top", "light"]
    event = httpx.post(f"{url}gradio_api/call/analyze", json={"data": data}, timeout=30).json()["event_id"]
    stream = httpx.get(f"{url}gradio_api/call/analyze/{event}", timeout=60).text
    assert "event: error" in stream and "Please upload an image first." in stream


def test_server_keeps_serving_after_a_burst_of_hostile_uploads(server, uploads_dir):
    _, _, client = server
    paths = [upload.write(uploads_dir) for upload in REJECTED]

    def send(path):
        try:
            analyze(client, path)
        except AppError as error:
            return error.message
        return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        messages = list(pool.map(send, paths))
    assert all(messages), "every hostile upload must be refused"
    assert_serves(client, uploads_dir)
