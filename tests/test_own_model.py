"""Visitors' own models: private to their session, bounded, dropped at the end; the catalog rescans checkpoints/."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import seed_models as seeds
import torch
from app_server import served_app, write_checkpoint

from senet import create_model, list_models
from senet.catalog import Catalog, UnknownModel
from senet.private_models import PrivateModels, UploadRefused


def _seed_file(folder: Path, name: str = "mine.pth", classes: int = 2) -> Path:
    model = seeds.randomize(seeds.Seed003SEResNet([3, 4, 6, 3], num_classes=classes))
    path = folder / name
    torch.save({"state_dict": model.state_dict(), "epoch": 9}, path)
    return path


def _small_file(folder: Path, name: str, seed: int = 0) -> Path:
    path = folder / name
    torch.save(seeds.randomize(create_model("resnet18", num_classes=2), seed).state_dict(), path)
    return path


# --- the store ---------------------------------------------------------------------------------------------


def test_models_are_private_to_their_owner(tmp_path: Path) -> None:
    store = PrivateModels(max_models=3)
    held = store.add("alice", _seed_file(tmp_path), ["cat", "dog"], title="Pets")
    assert held.entry.name.startswith("own-") and held.entry.display_name.startswith("Pets · SE-ResNet-50")
    assert held.recognition.describe() == "SE-ResNet-50, SE reduction 16, SE layers without biases, 2 classes"
    model, card, entry = store.get("alice", held.entry.name)
    assert card.labels == ("cat", "dog") and entry is held.entry and not model.training
    with pytest.raises(UnknownModel, match="only available in the browser session that uploaded them"):
        store.get("bob", held.entry.name)
    assert [e.name for e in store.owned("alice")] == [held.entry.name] and store.owned("bob") == []
    assert store.drop_owner("alice") == 1 and len(store) == 0


def test_at_most_n_models_are_held_and_the_oldest_goes_first(tmp_path: Path) -> None:
    store = PrivateModels(max_models=2)
    names = [store.add(owner, _small_file(tmp_path, f"{i}.pth", i), ["a", "b"]).entry.name
             for i, owner in enumerate(["alice", "bob", "carol"])]
    assert len(store) == 2
    with pytest.raises(UnknownModel):
        store.get("alice", names[0])
    store.get("bob", names[1])  # used: now the newest
    store.add("dave", _small_file(tmp_path, "3.pth", 3), ["a", "b"])
    with pytest.raises(UnknownModel):
        store.get("carol", names[2])
    assert store.get("bob", names[1])


def test_models_expire_after_their_time_to_live(tmp_path: Path) -> None:
    store = PrivateModels(ttl_s=0.2)
    name = store.add("alice", _small_file(tmp_path, "r.pth"), ["a", "b"]).entry.name
    time.sleep(0.3)
    with pytest.raises(UnknownModel):
        store.get("alice", name)
    assert len(store) == 0


@pytest.mark.parametrize(
    ("name", "content", "labels", "message"),
    [("notes.txt", b"hello", ["a", "b"], r"^Upload a \.pth, \.pt or \.safetensors weights file, not \.txt\.$"),
     ("notes.pth", b"hello world, not weights\n" * 9, ["a", "b"], r"^notes\.pth is a text file, not model weights"),
     ("mine.pth", None, [], r"^This file holds SE-ResNet-50, .* 2 classes: type its 2 class names"),
     ("mine.pth", None, ["a", "b", "c"], r"^3 labels were given but the model has 2 outputs"),
     ("", b"", ["a", "b"], r"no session")],
)
def test_refusals_are_one_sentence(name: str, content: bytes | None, labels: list[str], message: str,
                                   tmp_path: Path) -> None:
    store = PrivateModels()
    path = _seed_file(tmp_path) if content is None else tmp_path / (name or "x.pth")
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UploadRefused, match=message) as caught:
        store.add("" if not name else "alice", path, labels)
    assert "\n" not in str(caught.value) and str(caught.value).endswith(".") and len(store) == 0


# --- the catalog picks up new and changed checkpoints without a restart -----------------------------------------


def test_rescan_finds_new_changed_and_removed_checkpoints(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, "one", "se_resnet18", seed=1)
    catalog = Catalog(tmp_path, device="cpu")
    assert catalog.available() == ["one"]
    model_one, _, entry_one = catalog.load("one")
    assert catalog.rescan() == [] and catalog.load("one")[0] is model_one and catalog.entries["one"] is entry_one

    write_checkpoint(tmp_path, "two", "resnet18", seed=2)
    assert catalog.rescan() == ["two"] and set(catalog.available()) == {"one", "two"}
    assert catalog.load("one")[0] is model_one  # unchanged: still the loaded model

    time.sleep(0.01)
    write_checkpoint(tmp_path, "one", "se_resnet18", seed=3)
    os.utime(tmp_path / "one.safetensors", ns=(time.time_ns(), time.time_ns() + 10**9))
    assert catalog.rescan() == ["one"]
    reloaded = catalog.load("one")[0]
    assert reloaded is not model_one
    assert not torch.equal(reloaded.state_dict()["fc.weight"], model_one.state_dict()["fc.weight"])

    (tmp_path / "two.safetensors").unlink()
    (tmp_path / "two.json").unlink()
    assert catalog.rescan() == ["two"] and catalog.available() == ["one"]
    with pytest.raises(UnknownModel):
        catalog.entry("two")


def test_the_session_catalog_answers_each_session_with_its_own_models(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from gradio.context import LocalContext

    from ui.own_model import SessionCatalog

    write_checkpoint(tmp_path, "shared", "resnet18", seed=1)
    catalog = SessionCatalog(tmp_path, device="cpu")
    name = catalog.private.add("alice", _small_file(tmp_path, "r.pth"), ["a", "b"]).entry.name
    token = LocalContext.request.set(SimpleNamespace(session_hash="alice"))  # what Gradio sets per event
    try:
        assert [value for _, value in catalog.choices()] == [name, "shared"]
        assert catalog.load(name)[1].labels == ("a", "b") and catalog.entry(name).name == name
        LocalContext.request.set(SimpleNamespace(session_hash="bob"))
        assert [value for _, value in catalog.choices()] == ["shared"]
        with pytest.raises(UnknownModel, match="only available in the browser session"):
            catalog.load(name)
        with pytest.raises(UnknownModel):
            catalog.entry(name)
    finally:
        LocalContext.request.reset(token)
    with pytest.raises(UnknownModel):  # outside any request: no session, no private models
        catalog.load(name)


def test_uploads_are_off_on_a_space_unless_the_owner_turns_them_on(monkeypatch: pytest.MonkeyPatch) -> None:
    import app
    from ui.own_model import uploads_enabled

    monkeypatch.delenv("SENET_UPLOADS", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert uploads_enabled() and uploads_enabled(False) is False
    monkeypatch.setenv("SPACE_ID", "someone/senet-explorer")
    assert not uploads_enabled()
    monkeypatch.setenv("SENET_UPLOADS", "1")
    assert uploads_enabled()
    assert app.parse_args(["--no-uploads"]).uploads is False and app.parse_args([]).uploads is None
    assert app.launch_options(uploads=True)["max_file_size"] == "300mb"
    assert app.launch_options()["max_file_size"] == "20mb"


# --- end to end through the real HTTP API --------------------------------------------------------------------


@pytest.mark.slow
def test_an_uploaded_model_is_used_by_its_session_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gradio_client import Client, handle_file

    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("SENET_UPLOADS", raising=False)
    shared = tmp_path / "checkpoints"
    shared.mkdir()
    write_checkpoint(shared, "shared_model", "se_resnet18", seed=1)
    upload = _seed_file(tmp_path, "my_pets.pth")
    photo = str(Path(__file__).resolve().parents[1] / "examples" / sorted(
        p.name for p in (Path(__file__).resolve().parents[1] / "examples").glob("*.jpg"))[0])
    with served_app(shared, uploads=True) as (demo, url):
        assert demo.uploads
        alice = Client(url, verbose=False, download_files=False)
        bob = Client(url, verbose=False, download_files=False)
        picker, status, _ = alice.predict(handle_file(str(upload)), "cat\ndog", "My pets", api_name="/add_own_model")
        name = picker["value"]
        assert name.startswith("own-") and "found SE-ResNet-50, SE reduction 16" in status
        assert "only this browser session" in status.lower()

        # The same refusals as the CLI, as one sentence.
        text = tmp_path / "notes.pth"
        text.write_text("not weights\n" * 50)
        with pytest.raises(Exception, match=r"notes\.pth is a text file, not model weights") as caught:
            alice.predict(handle_file(str(text)), "a, b", "", api_name="/add_own_model")
        assert "Traceback" not in str(caught.value)

        label, *_ = alice.predict(handle_file(photo), name, api_name="/analyze")
        assert {c["label"] for c in label["confidences"]} == {"cat", "dog"}
        alice_names = [value for _, value in alice.predict(api_name="/refresh_models")["choices"]]
        assert name in alice_names and "shared_model" in alice_names

        bob_names = [value for _, value in bob.predict(api_name="/refresh_models")["choices"]]
        assert name not in bob_names and "shared_model" in bob_names
        # Refused by the picker's own check (the name is not among this session's choices) or by the catalog.
        refused = "not in the list of choices|only available in the browser session that uploaded them"
        with pytest.raises(Exception, match=refused) as caught:
            bob.predict(handle_file(photo), name, api_name="/analyze")
        assert "My pets" not in str(caught.value) and "cat" not in str(caught.value)
        # The picker takes typed names (an empty one means the default model): the model note says no instead.
        note, card, *_ = bob.predict(name, api_name="/model_info")
        assert re.search(f"{refused}|This model is unavailable", note) and not card
        assert "My pets" not in note and "cat" not in note
        label, *_ = bob.predict(handle_file(photo), "shared_model", api_name="/analyze")
        assert label["label"]
        # Gradio now takes 300 MB files, but a photo is still held to 20 MB, with a sentence.
        big = tmp_path / "big.jpg"
        big.write_bytes(Path(photo).read_bytes() + bytes(21 * 2**20))
        with pytest.raises(Exception, match="too large"):
            bob.predict(handle_file(str(big)), "shared_model", api_name="/analyze")

        # A new checkpoint in the folder is listed without a restart.
        write_checkpoint(shared, "added_later", "resnet18", seed=2)
        assert "added_later" in [value for _, value in bob.predict(api_name="/refresh_models")["choices"]]

        # Closing the session (its heartbeat ends) drops its models.
        assert len(demo.catalog.private.owned(alice.session_hash)) == 1
        alice.close()
        deadline = time.monotonic() + 30
        while demo.catalog.private.owned(alice.session_hash) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert demo.catalog.private.owned(alice.session_hash) == []
        bob.close()


def test_resnext_uploads_work_when_registered(tmp_path: Path) -> None:
    if "resnext50_32x4d" not in list_models():
        pytest.skip("resnext50_32x4d is not registered in this tree")
    path = tmp_path / "rx.pth"
    torch.save(seeds.randomize(seeds.Seed001ResNeXt([3, 4, 6, 3])).state_dict(), path)
    held = PrivateModels().add("alice", path, ["a", "b"])
    assert held.entry.card is not None and held.entry.card.arch == "resnext50_32x4d"
