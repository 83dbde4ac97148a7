"""Guards for serving the app to the public: fair queues, bounded uploads and request bodies, bounded and expiring
sessions, and a sentence for every bad API input.

Installed in two places: :func:`install` (from ``app.build_demo``: queue rules, internal handlers) and
:func:`launch_options` (merged into ``demo.launch`` keyword arguments: HTTP middleware, session capacity).

* **Lanes.** Fast analyses of one model take turns on that model's lock (a waiting request gives up after
  :data:`Limits.fast_wait_s` with a "busy" sentence). Slow CAM methods (``CAM_METHODS[m].slow``: Score-CAM,
  Ablation-CAM) run on a private copy of the model, one at a time in the whole app, at most one per session and
  at most :data:`Limits.slow_waiting` waiting; past that they are refused at once. So a slow request never holds
  a model's lock that a fast one needs, and the shared concurrency group is wide enough (:func:`heavy_events`)
  that requests waiting for one model never take all the slots another model could use.
* **Queue.** ``max_size`` with a message people understand, and at most :data:`Limits.session_events` requests
  waiting or running per browser session. Internal handlers (the page's own follow-up steps) are refused unless
  the request is the one the page itself would send (see :meth:`QueueGuard.internal_refusal`).
* **Uploads and bodies.** Every POST body has a size limit checked from ``Content-Length`` before it is read
  (request bodies carry base64 data URLs). Uploads have a per-client rate and a cap on the bytes in Gradio's
  upload cache; old uploads are evicted first, then new ones refused.
* **Sessions.** ``state_session_capacity`` bounds how many sessions Gradio keeps, and a sweeper drops sessions
  idle for longer than :data:`STATE_TTL` and gives the memory back to the OS.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ctypes
import gc
import json
import logging
import math
import os
import socket
import threading
import time
import weakref
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware
from torch import nn

from senet.catalog import Catalog, Entry
from senet.image_io import MAX_BYTES, ImageRejected, check_header, read_data_url

LOG = logging.getLogger("senet.guards")


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


STATE_TTL = _env_int("SENET_STATE_TTL", 900)  # seconds a session's last analysis is kept for the follow-up views


@dataclass
class Limits:
    """Every limit in one place; the defaults suit a 2-CPU Space. Environment variables override a few."""

    queue_size: int = _env_int("SENET_QUEUE_SIZE", 40)  # requests waiting in Gradio's queue, all sessions
    session_events: int = 3  # requests one session may have waiting or running
    slow_waiting: int = _env_int("SENET_SLOW_WAITING", 3)  # slow-method requests waiting behind the running one
    fast_wait_s: float = 120.0  # longest wait for a model's turn before "busy"
    max_sessions: int = _env_int("SENET_MAX_SESSIONS", 300)  # sessions Gradio keeps state for
    sweep_s: float = 30.0  # how often idle sessions are dropped
    upload_cache_bytes: int = _env_int("SENET_UPLOAD_CACHE_MB", 256) * 2**20
    upload_keep_s: float = 120.0  # uploads younger than this are never evicted (a request may be about to use them)
    uploads_per_minute: int = _env_int("SENET_UPLOADS_PER_MINUTE", 30)  # per client address
    upload_bytes_per_minute: int = 120 * 2**20
    upload_body_bytes: int = MAX_BYTES + 2**20  # one file plus multipart overhead
    json_body_bytes: int = math.ceil(MAX_BYTES * 4 / 3) + 2**20  # a base64 data URL of a 20 MB file, plus JSON


LIMITS = Limits()
INTERNAL = ("select_model", "analyze_if_image", "drill_pickers", "pick_example")

QUEUE_FULL = "The server is busy: {n} requests are already waiting. Please try again in a minute."
SESSION_BUSY = "You already have {n} requests waiting or running. Please wait for them to finish."
SLOW_BUSY = ("Slow methods (Score-CAM, Ablation-CAM) are busy: {n} are already waiting. Please try again in a "
             "minute, or use a fast method such as Grad-CAM.")
SLOW_SESSION = ("You already have a slow analysis (Score-CAM or Ablation-CAM) waiting or running. Please wait "
                "for it to finish.")
MODEL_BUSY = "This model is busy with other analyses. Please try again in a minute."
NOT_AN_API = ("This function is one of the page's own steps and cannot be called directly. Please call the "
              "/analyze endpoint instead.")


def _error(message: str) -> gr.Error:
    return gr.Error(message, print_exception=False)


# --- lanes: who runs when ---------------------------------------------------------------------------------

class Lanes:
    """Turns on the models: fast requests share each model's lock; slow methods have one app-wide lane with
    their own copy of each model."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        self.limits = limits
        self._slow = threading.Lock()  # the slow lane: one slow analysis at a time in the whole app
        self._books = threading.Lock()
        self._slow_count = 0  # running + waiting
        self._slow_sessions: set[str] = set()
        self._copies: dict[str, nn.Module] = {}

    @property
    def slow_count(self) -> int:
        return self._slow_count

    @contextlib.contextmanager
    def turn(self, entry: Entry, net: nn.Module, *, slow: bool, session: str | None) -> Iterator[nn.Module]:
        """Wait for this request's turn and yield the model to use.

        Raises:
            gr.Error: the slow lane is full, this session already has a slow request, or the model stayed busy.
        """
        if not slow:
            if not entry.lock.acquire(timeout=self.limits.fast_wait_s):
                raise _error(MODEL_BUSY)
            try:
                yield net
            finally:
                entry.lock.release()
            return
        session = session or "anonymous"
        with self._books:
            if session in self._slow_sessions:
                raise _error(SLOW_SESSION)
            if self._slow_count >= 1 + self.limits.slow_waiting:
                raise _error(SLOW_BUSY.format(n=self._slow_count - 1))
            self._slow_count += 1
            self._slow_sessions.add(session)
        try:
            with self._slow:
                yield self._copy(entry, net)
        finally:
            with self._books:
                self._slow_count -= 1
                self._slow_sessions.discard(session)

    def _copy(self, entry: Entry, net: nn.Module) -> nn.Module:
        """The slow lane's own copy of a model (made once, under the slow lane's lock), so that a minute-long
        Score-CAM never holds the lock fast requests to the same model wait on."""
        model = self._copies.get(entry.name)
        if model is None:
            with entry.lock:  # copy a model nobody is hooking into
                model = copy.deepcopy(net).eval()
            self._copies[entry.name] = model
        return model


LANES = Lanes()  # one slow lane for the whole app


def heavy_events(catalog: Catalog, limits: Limits = LIMITS) -> dict[str, Any]:
    """``concurrency_limit`` / ``concurrency_id`` for every event that runs a model.

    One group, wide enough that every model can run a fast request and have one more waiting while the slow
    lane is full: waiting (for a model's lock or the slow lane) then never uses up the slots of another model.
    """
    models = max(1, len(catalog.available()))
    return {"concurrency_limit": 2 * models + 1 + limits.slow_waiting, "concurrency_id": "models"}


# --- inputs: a sentence for every bad value ------------------------------------------------------------------

def _text_or_empty(value: Any, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise _error(f"The {name} must be given as text (a name from the list), not {type(value).__name__} "
                     f"{_short(value)}.")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


def opacity_value(opacity: Any) -> float:
    """The heatmap opacity as a float in [0, 1], or a sentence saying what is wrong."""
    if isinstance(opacity, bool) or not isinstance(opacity, int | float) or not math.isfinite(opacity) \
            or not 0 <= opacity <= 1:
        raise _error(f"The opacity must be a number from 0 to 1, not {_short(opacity)}.")
    return float(opacity)


def check_options(method: Any, target: Any, layer: Any, opacity: Any, block: Any, compare: Any, theme: Any) -> None:
    """Types and simple ranges of the analysis options (names are then checked against the model).

    Raises:
        gr.Error: one sentence naming the option and what it must be.
    """
    for value, name in ((method, "CAM method"), (target, "class to explain"), (layer, "CAM layer"),
                        (block, "SE block")):
        _text_or_empty(value, name)
    opacity_value(opacity)
    if compare not in (None, "", "top", "all", "none"):
        raise _error(f"The comparison must be \"top\", \"all\" or \"none\", not {_short(compare)}.")
    if theme not in (None, "", "light", "dark"):
        raise _error(f"The chart theme must be \"light\" or \"dark\", not {_short(theme)}.")


def channel_index(result: Any, block: Any, channel: Any) -> tuple[str, int]:
    """The SE block and channel of a drill-down request, checked against the session's last analysis."""
    names = list(result.analysis.excitations)
    if not isinstance(block, str) or block not in names:
        raise _error(f"Unknown SE block {_short(block)}; this model's blocks are {names[0]} to {names[-1]}.")
    count = len(result.analysis.excitations[block])
    if isinstance(channel, str) and channel.strip().isdigit():
        channel = int(channel)
    if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < count:
        raise _error(f"The channel must be a whole number from 0 to {count - 1} for {block}, not {_short(channel)}.")
    return block, channel


def photo_payload(payload: Any, upload_dir: str | None = None) -> str | bytes | None:
    """The photo input's preprocessing: a path inside Gradio's upload cache, or the bytes of a data URL.

    Data URLs are size-checked from their length and their header is checked (format, pixel count, geometry)
    before anything decodes them; Gradio's own preprocessing would decode them first.

    Raises:
        gr.Error: the sentence for whatever is wrong with the payload.
    """
    if payload is None:
        return None
    url = getattr(payload, "url", None) or ""
    path = getattr(payload, "path", None) or ""
    if isinstance(url, str) and url.startswith("data:"):
        try:
            data = read_data_url(url)
            check_header(data)
        except ImageRejected as error:
            raise _error(str(error)) from None
        return data
    if not isinstance(path, str) or not path:
        raise _error("The photo must be an uploaded file or a data: URL. Please upload the image first.")
    return path


def _label(component: Any) -> str:
    """A component's English label (labels are i18n keys)."""
    from .i18n import TEXT

    label = getattr(component, "label", None)
    key = getattr(label, "key", label)
    return str(TEXT["en"].get(key, key) if isinstance(key, str) else type(component).__name__).lower()


def _choices(component: Any) -> list[Any]:
    return [choice[1] if isinstance(choice, list | tuple) else choice for choice in (component.choices or [])]


def _file_problem(demo: gr.Blocks, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return "The photo must be an uploaded file (a FileData object) or a data: URL."
    url, path = value.get("url"), value.get("path")
    if isinstance(url, str) and url.startswith("data:"):
        try:
            check_header(read_data_url(url))
        except ImageRejected as error:
            return str(error)
        value.pop("path", None)  # the data URL is the photo; Gradio would otherwise check (or fetch) this path
        return None
    if not isinstance(path, str) or not path:
        return "The photo must be an uploaded file (a FileData object) or a data: URL."
    if "://" in path or path.startswith(("data:", "//")):
        return ("Photos given by URL are not fetched by this server. Please upload the file or send it as a "
                "data: URL.")
    roots = [getattr(demo, "GRADIO_CACHE", None), getattr(getattr(demo, "app", None), "uploaded_file_dir", None),
             *getattr(demo, "allowed_paths", [])]
    try:
        resolved = Path(path).resolve()
    except (OSError, RuntimeError, ValueError):
        resolved = None
    if resolved is None or not any(root and resolved.is_relative_to(Path(root).resolve()) for root in roots):
        return ("The photo must be uploaded to this server first (POST /gradio_api/upload) or sent as a data: URL; "
                "paths to other files on the server are not accepted.")
    return None


def input_problem(demo: gr.Blocks, fn: Any, data: Any) -> tuple[str, str] | None:
    """The first input of a request that its component would reject, as (parameter name, sentence).

    Checked before the request is queued, on the raw JSON values: the number of values, photos (upload-cache paths
    or data URLs, whose size and header are checked here, before anything decodes them), numbers of sliders,
    and the choices of fixed lists. The handlers check names against the model afterwards.
    """
    inputs = list(fn.inputs)
    if not isinstance(data, list) or len(data) != len(inputs):
        got = len(data) if isinstance(data, list) else 0
        names = ", ".join(_label(component) for component in inputs if not isinstance(component, gr.State))
        return "data", f"This endpoint takes {len(inputs)} values ({names}); the request has {got}."
    for component, value in zip(inputs, data, strict=True):
        name = _label(component)
        if isinstance(component, gr.State):
            continue
        if isinstance(component, gr.Image) and component.preprocess is photo_payload:
            problem = _file_problem(demo, value)
        elif isinstance(component, gr.Slider):
            ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) \
                and component.minimum <= value <= component.maximum
            problem = None if ok else (f"The {name} must be a number from {component.minimum:g} to "
                                       f"{component.maximum:g}, not {_short(value)}.")
        elif isinstance(component, gr.Dropdown | gr.Radio) and not getattr(component, "multiselect", False):
            choices = _choices(component)
            if value is not None and not isinstance(value, str | int | float) or isinstance(value, bool):
                problem = f"The {name} must be one value from its list, not {type(value).__name__} {_short(value)}."
            elif not getattr(component, "allow_custom_value", False) and value not in choices and value is not None:
                listed = ", ".join(str(choice) for choice in choices[:12])
                problem = f"Unknown {name} {_short(value)}; choose one of: {listed}."
            else:
                problem = None
        elif isinstance(component, gr.Textbox):
            problem = None if value is None or isinstance(value, str) else \
                f"The {name} must be text, not {type(value).__name__} {_short(value)}."
        else:
            problem = None
        if problem:
            return name, problem
    return None


# --- the queue: size, per-session limits, internal handlers --------------------------------------------------

class QueueGuard:
    """Wraps a Blocks' queue ``push``: refusals before a request is queued, in sentences."""

    def __init__(self, demo: gr.Blocks, limits: Limits = LIMITS) -> None:
        self.demo_ref = weakref.ref(demo)
        self.limits = limits
        self._tokens: dict[tuple[str, int], int] = defaultdict(int)  # (session, parent fn) -> children allowed
        self._loaded: set[tuple[str, int]] = set()  # (session, fn) page-load steps already run
        self._sweeper: threading.Thread | None = None

    def wrap(self, queue: Any) -> None:
        if getattr(queue, "_senet_guarded", False):
            return
        original = queue.push
        queue.max_size = self.limits.queue_size

        async def push(body: Any, request: Any, username: Any) -> tuple[bool, Any, str]:
            self._start_sweeper()
            refusal = self.refusal(queue, body)
            if refusal:
                return False, *refusal
            success, message, code = await original(body, request, username)
            if code == "queue_full":
                message = QUEUE_FULL.format(n=len(queue))
            elif success and body.session_hash:
                self._tokens[(body.session_hash, body.fn_index)] += 1
            return success, message, code

        queue.push = push
        queue._senet_guarded = True

    def refusal(self, queue: Any, body: Any) -> tuple[Any, str] | None:
        """Why ``body`` may not be queued, as (message, Gradio's refusal code), or None."""
        demo = self.demo_ref()
        if demo is None or body.fn_index not in demo.fns:
            return None  # Gradio answers unknown functions itself
        fn = demo.fns[body.fn_index]
        session = body.session_hash or ""
        if fn.name in INTERNAL:
            refusal = self.internal_refusal(fn, body, session)
            if refusal:
                return refusal, "error"
        problem = input_problem(demo, fn, body.data)
        if problem:
            name, message = problem
            # Gradio's shape for a validation failure: HTTP 422, and gradio_client raises it as a ValidationError.
            return [{"__type__": "validate", "is_valid": False, "parameter_name": name, "message": message}], \
                "validator_error"
        if fn.concurrency_id == "models":
            busy = self._session_events(queue, session)
            if busy >= self.limits.session_events:
                return SESSION_BUSY.format(n=busy), "queue_full"
        return None

    def internal_refusal(self, fn: Any, body: Any, session: str) -> str | None:
        """Internal steps run only as the page runs them: a follow-up step once per completed parent request of
        the same session, a page-load step once per session, and a widget's own event only from that widget."""
        if fn.trigger_after is not None:
            key = (session, fn.trigger_after)
            if self._tokens.get(key, 0) <= 0:
                return NOT_AN_API
            self._tokens[key] -= 1
            return None
        events = {event for _, event in fn.targets}
        if "load" in events:
            if (session, fn._id) in self._loaded:
                return NOT_AN_API
            self._loaded.add((session, fn._id))
            return None
        widgets = {block for block, _ in fn.targets}
        if body.trigger_id not in widgets:
            return NOT_AN_API
        if fn.name == "pick_example" and not isinstance(body.event_data, dict):
            return NOT_AN_API
        return None

    @staticmethod
    def _session_events(queue: Any, session: str) -> int:
        waiting = sum(1 for q in queue.event_queue_per_concurrency_id.values() for event in q.queue
                      if event.session_hash == session)
        running = sum(1 for jobs in queue.active_jobs if jobs for event in jobs if event.session_hash == session)
        return waiting + running

    def _start_sweeper(self) -> None:
        if self._sweeper is None:
            self._sweeper = threading.Thread(target=self._sweep, name="senet-session-sweeper", daemon=True)
            self._sweeper.start()

    def _sweep(self) -> None:
        while True:
            time.sleep(self.limits.sweep_s)
            demo = self.demo_ref()
            if demo is None or not demo.is_running:
                return
            self.sweep(demo)
            del demo

    def sweep(self, demo: gr.Blocks) -> int:
        """Drop sessions idle for longer than STATE_TTL and give the freed memory back; returns how many."""
        holder = getattr(demo, "state_holder", None)
        if holder is None:
            return 0
        cutoff = time.time() - STATE_TTL
        with holder.lock:
            idle = [session for session, used in holder.time_last_used.items() if used.timestamp() < cutoff]
        for session in idle:
            holder.delete_state(session)  # runs the State delete callbacks
            with holder.lock:
                holder.session_data.pop(session, None)
                holder.time_last_used.pop(session, None)
        live = set(holder.session_data)
        self._tokens = defaultdict(int, {key: n for key, n in self._tokens.items() if key[0] in live and n > 0})
        self._loaded = {key for key in self._loaded if key[0] in live}
        if idle:
            gc.collect()
            release_memory()
        return len(idle)


def release_memory() -> None:
    """Return freed heap pages to the OS (glibc keeps them otherwise, so RSS would never come down)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def install(demo: gr.Blocks, limits: Limits = LIMITS) -> QueueGuard:
    """Queue rules and internal handlers of a built Blocks (call at the end of ``build_demo``)."""
    for fn in demo.fns.values():
        if fn.name in INTERNAL:
            fn.api_visibility = "private"  # hidden from the API page and refused by Gradio's clients
    guard = QueueGuard(demo, limits)
    guard.wrap(demo._queue)
    original_queue = demo.queue

    def queue(*args: Any, **kwargs: Any) -> gr.Blocks:
        kwargs["max_size"] = limits.queue_size
        result = original_queue(*args, **kwargs)
        guard.wrap(demo._queue)
        return result

    demo.queue = queue
    demo.guard = guard
    return guard


# --- HTTP: body sizes, upload rate and upload cache ---------------------------------------------------------

class UploadLedger:
    """Per-client upload rate and the upload cache's size (Gradio's cache directory, shared by all sessions)."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        self.limits = limits
        self._recent: dict[str, deque[tuple[float, int]]] = defaultdict(deque)
        self._lock = threading.Lock()

    def admit(self, client: str, size: int, cache_dir: str | Path) -> str | None:
        """None when an upload of ``size`` bytes may go ahead, else the refusal."""
        now = time.monotonic()
        with self._lock:
            recent = self._recent[client]
            while recent and now - recent[0][0] > 60:
                recent.popleft()
            if len(recent) >= self.limits.uploads_per_minute or \
                    sum(n for _, n in recent) + size > self.limits.upload_bytes_per_minute:
                return "Too many uploads from your address in the last minute. Please wait a minute and try again."
            if len(self._recent) > 10_000:  # forget idle clients
                for key in [key for key, value in self._recent.items() if not value]:
                    del self._recent[key]
            if cache_bytes(cache_dir) + size > self.limits.upload_cache_bytes:
                evict_uploads(cache_dir, self.limits.upload_cache_bytes - size, self.limits.upload_keep_s)
                if cache_bytes(cache_dir) + size > self.limits.upload_cache_bytes:
                    return "The server's upload space is full. Please try again in a few minutes."
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

    def __init__(self, app: Any, limits: Limits = LIMITS) -> None:
        self.app = app
        self.limits = limits
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
        limit = self.limits.upload_body_bytes if upload else self.limits.json_body_bytes
        refusal = None
        if length < 0 and headers.get("transfer-encoding"):  # a body of unknown size: its size cannot be checked
            refusal = 411, "Please send the request with a Content-Length header."
        elif length > limit:
            refusal = 413, (f"The request is too large ({length / 2**20:.1f} MB); images are limited to "
                            f"{MAX_BYTES // 2**20} MB.")
        elif upload:
            cache_dir = getattr(scope.get("app"), "uploaded_file_dir", None)
            if cache_dir is not None:
                message = await asyncio.to_thread(self.uploads.admit, _client(scope, headers), max(length, 0),
                                                  cache_dir)
                if message:
                    refusal = 429 if "Too many" in message else 503, message
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message = refusal
        body = json.dumps({"detail": message}).encode() if not upload else message.encode()
        content_type = b"application/json" if not upload else b"text/plain; charset=utf-8"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _client(scope: dict, headers: dict[str, str]) -> str:
    forwarded = headers.get("x-forwarded-for", "").split(",")[0].strip()  # a Space sits behind a proxy
    return forwarded or (scope.get("client") or ("unknown",))[0]


def launch_options(limits: Limits = LIMITS) -> dict[str, Any]:
    """``demo.launch`` keyword arguments: the HTTP middleware and the session capacity."""
    return {
        "app_kwargs": {"middleware": [Middleware(RequestGuard, limits=limits)]},
        "state_session_capacity": limits.max_sessions,
    }


def check_port(host: str, port: int) -> None:
    """Exit with one line when ``host:port`` is taken (e.g. a second copy of the app), instead of a traceback."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is not "in use"
        try:
            probe.bind((host, port))
        except OSError:
            raise SystemExit(f"app.py: error: port {port} on {host} is already in use (is the app already "
                             "running?); start it with --port N to use another port") from None


__all__ = ["LANES", "LIMITS", "STATE_TTL", "Lanes", "Limits", "QueueGuard", "RequestGuard", "channel_index",
           "check_options", "check_port", "heavy_events", "install", "launch_options", "opacity_value",
           "photo_payload", "release_memory"]
