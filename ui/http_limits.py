"""HTTP limits as ASGI middleware: body sizes from ``Content-Length`` before a body is read, a per-client upload
rate, and a cap on the bytes in Gradio's upload cache (old uploads evicted first, then new ones refused)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from senet import texts
from senet.image_io import MAX_BYTES

from .limits import LIMITS, Limits
from .refusals import in_language

# Between scans the estimate misses only files Gradio itself writes (answers' images): a few MB at most.
CACHE_RESCAN_S = 5.0


class UploadLedger:
    """Per-client upload rate and the upload cache's size (Gradio's cache directory, shared by all sessions)."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        self.limits = limits
        self._recent: dict[str, deque[tuple[float, int]]] = defaultdict(deque)
        self._lock = threading.Lock()
        # The cache's size, scanned at most every CACHE_RESCAN_S and counted up by each admitted upload in between:
        # a scan stats every file (~7 ms for 450 files), which every upload paid before.
        self._cache: tuple[str, float, int] | None = None  # (directory, monotonic scan time, bytes)

    def admit(self, client: str, size: int, cache_dir: str | Path, largest: int = 0) -> str | None:
        """None when an upload of ``size`` bytes may go ahead, else the refusal. ``largest``: the biggest upload
        this server takes (a visitor's own model), which the per-minute and cache limits always let through."""
        now = time.monotonic()
        per_minute = max(self.limits.upload_bytes_per_minute, largest)
        cap = max(self.limits.upload_cache_bytes, largest)
        with self._lock:
            recent = self._recent[client]
            while recent and now - recent[0][0] > 60:
                recent.popleft()
            if len(recent) >= self.limits.uploads_per_minute or \
                    sum(n for _, n in recent) + size > per_minute:
                return "Too many uploads from your address in the last minute. Please wait a minute and try again."
            if len(self._recent) > 10_000:  # forget idle clients
                for key in [key for key, value in self._recent.items() if not value]:
                    del self._recent[key]
            directory = str(cache_dir)
            if self._cache is None or self._cache[0] != directory or now - self._cache[1] > CACHE_RESCAN_S:
                self._cache = (directory, now, cache_bytes(directory))
            if self._cache[2] + size > cap:  # near the cap the estimate is replaced by exact scans
                evict_uploads(directory, cap - size, self.limits.upload_keep_s)
                self._cache = (directory, now, cache_bytes(directory))
                if self._cache[2] + size > cap:
                    return "The server's upload space is full. Please try again in a few minutes."
            self._cache = (directory, self._cache[1], self._cache[2] + size)
            recent.append((now, size))
        return None


def _files(directory: str | Path) -> list[os.DirEntry]:
    found, stack = [], [str(directory)]
    while stack:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    found.append(entry)
    return found


def cache_bytes(directory: str | Path) -> int:
    """Bytes of the files under ``directory`` (0 when it does not exist)."""
    total = 0
    for entry in _files(directory):
        with contextlib.suppress(OSError):
            total += entry.stat(follow_symlinks=False).st_size
    return total


def evict_uploads(directory: str | Path, target_bytes: int, keep_s: float) -> None:
    """Delete the oldest uploads (older than ``keep_s``) until the cache holds at most ``target_bytes``."""
    entries = []
    for entry in _files(directory):
        with contextlib.suppress(OSError):
            info = entry.stat(follow_symlinks=False)
            entries.append((info.st_mtime, info.st_size, entry.path))
    total = sum(size for _, size, _ in entries)
    cutoff = time.time() - keep_s
    for mtime, size, path in sorted(entries):
        if total <= target_bytes or mtime > cutoff:
            break
        with contextlib.suppress(OSError):
            os.remove(path)
            total -= size


class RequestGuard:
    """ASGI middleware: body-size limits on every POST, upload rate and upload-cache cap on uploads."""

    def __init__(self, app: Any, limits: Limits = LIMITS, upload_bytes: int = 0) -> None:
        self.app = app
        self.limits = limits
        self.upload_bytes = upload_bytes  # the largest single file this server takes, when above the photo limits
        self.uploads = UploadLedger(limits)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        try:
            length = int(headers.get("content-length", ""))
        except ValueError:
            length = -1
        upload = scope["path"].rstrip("/").endswith("/upload")
        upload_limit = max(self.limits.upload_body_bytes, self.upload_bytes + 2**20)
        limit = upload_limit if upload else self.limits.json_body_bytes
        refusal = None
        if length < 0 and headers.get("transfer-encoding"):  # a body of unknown size: its size cannot be checked
            refusal = 411, "Please send the request with a Content-Length header."
        elif length > limit:
            refusal = 413, (f"The request is too large ({length / 2**20:.1f} MB); images are limited to "
                            f"{MAX_BYTES // 2**20} MB.")
        elif upload:
            cache_dir = getattr(scope.get("app"), "uploaded_file_dir", None)
            if cache_dir is not None:
                client = _client(scope, headers, self.limits.trusted_proxies)
                message = await asyncio.to_thread(self.uploads.admit, client, max(length, 0), cache_dir,
                                                  self.upload_bytes)
                if message:
                    refusal = 429 if "Too many" in message else 503, message
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message = refusal
        message = in_language(message, texts.language(headers.get("accept-language")))  # the page's language
        body = json.dumps({"detail": message}).encode() if not upload else message.encode()
        content_type = b"application/json" if not upload else b"text/plain; charset=utf-8"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _client(scope: dict, headers: dict[str, str], hops: int) -> str:
    """The address the upload rate is counted for: behind ``hops`` proxies, the entry of X-Forwarded-For that the
    farthest of them wrote about its peer (not one the client could have written); else the socket's peer."""
    peer = (scope.get("client") or ("unknown",))[0]
    entries = [entry.strip() for entry in headers.get("x-forwarded-for", "").split(",") if entry.strip()]
    if hops <= 0 or not entries:
        return peer
    return entries[-min(hops, len(entries))]
