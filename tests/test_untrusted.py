"""Untrusted files and requests against a launched app: nothing is unpickled, broken checkpoints are listed as
unavailable with a reason while the others work, client-supplied names and paths never reach the file system,
and the server is local and private unless asked otherwise."""

from __future__ import annotations

import http.server
import json
import pickle
import threading
from pathlib import Path

import httpx
import pytest
import torch
from app_server import LABELS, free_port, random_model, served_app, torch_threads, write_checkpoint
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError
from hostile_files import accepted_uploads

import senet
from senet.checkpoint import CheckpointError

pytestmark = pytest.mark.timeout(180)

# Everything /analyze takes after the image and the model name, at its defaults.
DEFAULT_OPTIONS = ["gradcam", "", "", 0.5, "paper", [], "light"]
BROKEN = ("evil", "evil_zip", "trojan", "corrupt", "wrong_labels", "bad_card", "escape")


class _Payload:
    """Unpickling this creates the marker file: proof that something ran pickle on it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def marker(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("marker") / "unpickled"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, marker) -> Path:
    directory = tmp_path_factory.mktemp("checkpoints")
    good = write_checkpoint(directory, "alpha", "se_resnet18", seed=1)
    card = json.loads(good.with_suffix(".json").read_text())
    payload = pickle.dumps(_Payload(marker), protocol=2)
    (directory / "evil.pth").write_bytes(payload)  # a classic pickle
    torch.save({"state_dict": _Payload(marker)}, directory / "evil_zip.pt")  # torch.save's zip format
    (directory / "trojan.safetensors").write_bytes(payload)  # a pickle under a safe name, with a valid card
    (directory / "trojan.json").write_text(json.dumps(card))
    (directory / "corrupt.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json" + bytes(64))
    (directory / "corrupt.json").write_text(json.dumps(card))
    wrong = senet.ModelCard(arch="se_resnet18", labels=LABELS[:3], input_size=(64, 64))
    senet.save_checkpoint(random_model("se_resnet18", 3, num_classes=6), wrong, directory / "wrong_labels")
    # A DenseNet's weights under a card that says SE-ResNet-18: only found when the model is built.
    arch = senet.save_checkpoint(random_model("se_densenet121", 4), senet.ModelCard(
        arch="se_densenet121", labels=LABELS, input_size=(64, 64)), directory / "wrong_arch")
    arch.with_suffix(".json").write_text(json.dumps(card))
    (directory / "bad_card.safetensors").write_bytes(good.read_bytes())
    (directory / "bad_card.json").write_text("{ this is not json")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "escape.safetensors").write_bytes(good.read_bytes())
    (outside / "escape.json").write_text(json.dumps(card))
    (directory / "escape.safetensors").symlink_to(outside / "escape.safetensors")
    (directory / "escape.json").symlink_to(outside / "escape.json")
    return directory


@pytest.fixture(scope="module")
def server(checkpoints, marker):
    calls = []
    real_load = torch.load

    def guarded_load(*args, **kwargs):
        calls.append((args, kwargs))
        if kwargs.get("weights_only") is not True:
            raise AssertionError("torch.load without weights_only=True")
        return real_load(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch, torch_threads(1):
        patch.setattr(torch, "load", guarded_load)
        with served_app(checkpoints) as (demo, url):
            yield demo, url, Client(url, verbose=False), calls
    assert not marker.exists(), "a checkpoint file was unpickled"


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    upload = next(upload for upload in accepted_uploads() if upload.name == "photo_lossy.webp")
    return upload.write(tmp_path_factory.mktemp("photo"))


def raw_analyze(url: str, image: object, model: object = "alpha") -> str:
    """Call /analyze with a hand-made payload (what a hostile client can send); returns the event stream."""
    response = httpx.post(f"{url}gradio_api/call/analyze", json={"data": [image, model, *DEFAULT_OPTIONS]},
                          timeout=30)
    if response.status_code != 200:
        return f"HTTP {response.status_code} {response.text}"
    event = response.json()["event_id"]
    return httpx.get(f"{url}gradio_api/call/analyze/{event}", timeout=60).text


def test_broken_checkpoints_are_listed_unavailable_with_a_reason(server, checkpoints, marker):
    demo, _, client, calls = server
    entries = demo.catalog.entries
    assert entries["alpha"].available
    reasons = {name: entries[name].error for name in BROKEN}
    for name, reason in reasons.items():
        assert reason, f"{name} should be unavailable"
        assert str(checkpoints) not in reason and "/tmp" not in reason, reason  # no server paths
    for name in ("evil", "evil_zip", "trojan"):
        assert "pickle" in reasons[name]
    assert "corrupt" in reasons["corrupt"]
    assert "labels" in reasons["wrong_labels"]
    assert "json" in reasons["bad_card"].lower()
    assert "outside" in reasons["escape"]
    assert not marker.exists() and not calls


@pytest.mark.parametrize("name", [*BROKEN, "wrong_arch"])
def test_broken_checkpoint_is_refused_and_the_others_keep_working(server, photo, marker, name):
    demo, _, client, calls = server
    with pytest.raises(AppError) as caught:
        client.predict(handle_file(str(photo)), name, api_name="/analyze")
    assert "unavailable" in caught.value.message and "Traceback" not in caught.value.message
    assert not demo.catalog.entries[name].available  # wrong_arch too, once something tried to use it
    label = client.predict(handle_file(str(photo)), "alpha", api_name="/analyze")[0]
    assert label["label"] in LABELS
    assert not marker.exists() and not calls


def test_the_planted_pickles_would_run_code(tmp_path):
    """The trap is real: unpickling either flavour creates its marker (so 'no marker' above means something)."""
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(_Payload(live), protocol=2))
    assert live.exists()
    live.unlink()
    torch.save({"state_dict": _Payload(live)}, tmp_path / "live.pt")
    torch.serialization.load(tmp_path / "live.pt", weights_only=False)  # the unguarded function, on purpose
    assert live.exists()


def test_pickles_are_never_unpickled_directly(checkpoints, marker, tmp_path):
    """senet.load_checkpoint itself refuses both pickle flavours dressed up as safetensors."""
    (tmp_path / "trojan_zip.safetensors").write_bytes((checkpoints / "evil_zip.pt").read_bytes())
    (tmp_path / "trojan_zip.json").write_text((checkpoints / "alpha.json").read_text())
    for path in (checkpoints / "trojan", tmp_path / "trojan_zip"):
        with pytest.raises(CheckpointError, match="pickle"):
            senet.load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "alpha.json", "alpha/../alpha",
                                  str(Path(__file__).resolve()), "x" * 5000])
def test_model_names_outside_the_list_are_refused(server, photo, name):
    _, _, client, _ = server
    with pytest.raises((AppError, ValidationError)) as caught:  # ValidationError: refused before it is queued
        client.predict(handle_file(str(photo)), name, api_name="/analyze")
    assert "root:" not in str(caught.value) and "Traceback" not in str(caught.value)


@pytest.mark.parametrize("path", ["/etc/passwd", "{checkpoints}/alpha.json", "{checkpoints}/alpha.safetensors",
                                  "{repo}/app.py", "{checkpoints}/../../../etc/hostname"])
def test_client_file_paths_are_never_read(server, checkpoints, path):
    """A hand-made FileData that points at a server file instead of an upload is refused without reading it."""
    _, url, _, _ = server
    path = path.format(checkpoints=checkpoints, repo=Path(__file__).resolve().parent.parent)
    stream = raw_analyze(url, {"path": path, "meta": {"_type": "gradio.FileData"}})
    assert "event: error" in stream or stream.startswith("HTTP 4")
    assert "root:" not in stream and '"label"' not in stream
    for route in (f"gradio_api/file={path}", f"file={path}"):
        response = httpx.get(f"{url}{route}", timeout=30)
        assert response.status_code in (403, 404), (route, response.status_code)


def test_urls_are_not_fetched_on_a_clients_behalf(server):
    """No server-side request forgery: image URLs pointing at local services are not downloaded."""
    _, url, _, _ = server
    hits = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # http.server calls this name
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    port = free_port()
    local = http.server.ThreadingHTTPServer(("127.0.0.1", port), Recorder)
    threading.Thread(target=local.serve_forever, daemon=True).start()
    try:
        for payload in ({"path": f"http://127.0.0.1:{port}/a.png", "meta": {"_type": "gradio.FileData"}},
                        {"url": f"http://localhost:{port}/b.png", "meta": {"_type": "gradio.FileData"}},
                        {"url": "file:///etc/passwd", "meta": {"_type": "gradio.FileData"}}):
            stream = raw_analyze(url, payload)  # refused before it is queued (HTTP 422) or by the handler
            assert ("event: error" in stream or stream.startswith("HTTP 4")) and "root:" not in stream
    finally:
        local.shutdown()
        local.server_close()
    assert hits == []


def test_upload_file_names_cannot_escape_the_cache(server, photo, tmp_path):
    _, url, _, _ = server
    target = tmp_path / "escaped.png"
    name = "../" * 12 + str(target).lstrip("/")
    response = httpx.post(f"{url}gradio_api/upload", files={"files": (name, photo.read_bytes(), "image/png")},
                          timeout=30)
    assert response.status_code == 200
    assert not target.exists()
    stored = Path(response.json()[0])
    assert stored.name == "escaped.png" and ".." not in stored.parts


def test_allowed_paths_stay_minimal():
    import app

    allowed = [Path(path).resolve() for path in app.launch_options().get("allowed_paths", [])]
    root = Path(app.__file__).resolve().parent
    assert allowed in ([], [root / "examples"])  # the examples gallery only: never the repo or checkpoints/
    assert not app.launch_options().get("share")


def test_local_by_default_public_only_when_asked(monkeypatch):
    import app

    for variable in ("GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "SPACE_ID", "GRADIO_SHARE"):
        monkeypatch.delenv(variable, raising=False)
    args = app.parse_args([])
    assert args.host == "127.0.0.1" and args.share is False
    assert app.parse_args(["--share"]).share is True
    monkeypatch.setenv("SPACE_ID", "someone/senet-explorer")
    assert app.parse_args([]).host == "0.0.0.0"
    monkeypatch.setenv("GRADIO_SERVER_NAME", "10.0.0.5")
    assert app.parse_args([]).host == "10.0.0.5"


def test_launched_server_is_local_and_has_no_share_link(server):
    demo, url, _, _ = server
    assert url.startswith("http://127.0.0.1:")
    assert demo.share is False and not getattr(demo, "share_url", None)
