"""Test support: random-weight checkpoints and the real app launched on a free local port.

Random weights are fine for serving tests (they check the plumbing, not accuracy); batch norms are randomised
too so that the outputs depend on the image (zero-initialised residual branches would make them nearly flat).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import model_helpers
import torch

import senet

LABELS = ("Chickenpox", "Cowpox", "HFMD", "Healthy", "Measles", "Monkeypox")


def random_model(arch: str, seed: int, num_classes: int = len(LABELS)) -> torch.nn.Module:
    return model_helpers.random_model(arch, seed, num_classes)


def write_checkpoint(directory: Path, name: str, arch: str, *, seed: int = 0, size: int = 64) -> Path:
    """A small random-weight checkpoint ``directory/name.{safetensors,json}``; returns its weights path."""
    card = senet.ModelCard(arch=arch, labels=LABELS, input_size=(size, size), title=f"{arch} test model",
                           data={"name": f"test_{name}", "positive": "Monkeypox"})
    return senet.save_checkpoint(random_model(arch, seed), card, directory / name)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Every test talks to its server from 127.0.0.1, many uploads a minute: per-client upload rates are lifted unless
# a test sets them (the limits are read when a request arrives, so they can change while a server runs).
TEST_LIMITS = {"uploads_per_minute": 100_000, "upload_bytes_per_minute": 2**40}


@contextlib.contextmanager
def guard_limits(**changes: object) -> Iterator[object]:
    """``ui.guards.LIMITS`` with some fields changed, restored afterwards."""
    from ui import guards

    before = {name: getattr(guards.LIMITS, name) for name in changes}
    for name, value in changes.items():
        setattr(guards.LIMITS, name, value)
    try:
        yield guards.LIMITS
    finally:
        for name, value in before.items():
            setattr(guards.LIMITS, name, value)


@contextlib.contextmanager
def served_app(checkpoint_dir: Path, *, uploads: bool = False, **limits: object) -> Iterator[tuple[object, str]]:
    """``app.build_demo`` on ``checkpoint_dir``, launched as ``python app.py`` would (same launch options) on
    127.0.0.1 and a free port; yields (demo, url) and closes the server afterwards.

    Args:
        uploads: with the "use your own model" panel (and its 300 MB upload limit); off, the 20 MB limit holds.
        limits: fields of ``ui.guards.LIMITS`` changed while it runs.
    """
    import app

    # Its own upload / output folder: Gradio names cached files by content, and a server closing (here or in
    # another test process) deletes the files it created, which another server may be serving at that moment.
    previous = os.environ.get("GRADIO_TEMP_DIR")
    cache = tempfile.mkdtemp(prefix="senet-gradio-")
    os.environ["GRADIO_TEMP_DIR"] = cache
    try:
        with guard_limits(**{**TEST_LIMITS, **limits}):
            demo = app.build_demo(checkpoint_dir, device="cpu", uploads=uploads)
            demo.queue(default_concurrency_limit=2)
            options = app.launch_options(uploads=demo.uploads)
            demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                        **options)
            try:
                yield demo, demo.local_url
            finally:
                demo.close()
    finally:
        if previous is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = previous
        shutil.rmtree(cache, ignore_errors=True)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Few intra-op threads: several requests at once on 2 shared cores are much faster without OpenMP
    oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
