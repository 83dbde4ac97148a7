"""Every limit of the public-service guards in one place; the defaults suit a 2-CPU Space, and environment
variables override a few (``SENET_QUEUE_SIZE``, ``SENET_SLOW_WAITING``, ``SENET_MAX_SESSIONS``,
``SENET_UPLOAD_CACHE_MB``, ``SENET_UPLOADS_PER_MINUTE``, ``SENET_STATE_TTL``, ``SENET_TRUSTED_PROXIES``)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from senet.archive import MAX_TOTAL_BYTES
from senet.image_io import MAX_BYTES


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def _on_space() -> bool:
    return os.environ.get("SYSTEM") == "spaces" or bool(os.environ.get("SPACE_ID"))


STATE_TTL = _env_int("SENET_STATE_TTL", 900)  # seconds a session's last analysis is kept for the follow-up views


@dataclass
class Limits:
    """The limits; fields are read when a request arrives, so a test may change them on a running server."""

    queue_size: int = _env_int("SENET_QUEUE_SIZE", 40)  # requests waiting in Gradio's queue, all sessions
    session_events: int = 4  # requests one session may have waiting or running (the page chains a few)
    slow_waiting: int = _env_int("SENET_SLOW_WAITING", 3)  # slow-method requests waiting behind the running one
    fast_wait_s: float = 120.0  # longest wait for a model's turn before "busy"
    max_sessions: int = _env_int("SENET_MAX_SESSIONS", 300)  # sessions Gradio keeps state for
    sweep_s: float = 30.0  # how often idle sessions are dropped
    upload_cache_bytes: int = _env_int("SENET_UPLOAD_CACHE_MB", 512) * 2**20  # Gradio's upload folder, all clients
    upload_keep_s: float = 120.0  # uploads younger than this are never evicted (a request may be about to use them)
    uploads_per_minute: int = _env_int("SENET_UPLOADS_PER_MINUTE", 120)  # per client address (a script that
    # analyses a folder one photo at a time sends 2-4 a second on a CPU; the byte limit below bounds the disk)
    upload_bytes_per_minute: int = 256 * 2**20  # per client address (a full Batch upload fits)
    # Proxies in front of the app that append the address they saw to X-Forwarded-For (a Space has one). The
    # client address is that many entries from the right: entries further left are whatever the client sent, so
    # trusting the first one would let a script give itself a fresh allowance per request. 0: the socket's peer.
    trusted_proxies: int = _env_int("SENET_TRUSTED_PROXIES", 1 if _on_space() else 0)
    # One upload request: the browser sends a Batch tab's photos in one request (Gradio still holds each file to
    # its max_file_size while it streams them to disk); with visitors' own models on, a 300 MB weights file.
    upload_body_bytes: int = MAX_TOTAL_BYTES + 2**20
    json_body_bytes: int = math.ceil(MAX_BYTES * 4 / 3) + 2**20  # a base64 data URL of a 20 MB file, plus JSON


LIMITS = Limits()
