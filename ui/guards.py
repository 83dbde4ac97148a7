"""Guards for serving the app to the public: fair queues, bounded uploads, request bodies and sessions, and a
sentence for every bad API input (issue 16). Gradio-only.

Installed in two places: :func:`install` (end of ``app.build_demo``: queue size, per-session limits, input checks
before queueing, internal handlers) and :func:`launch_options` (merged into ``demo.launch``'s keyword arguments:
HTTP middleware, session capacity). The pieces live in ``ui/limits.py`` (every limit), ``ui/lanes.py`` (who runs
when), ``ui/request_checks.py`` (sentences for bad inputs, the photo preprocessing) and ``ui/http_limits.py``
(body sizes, upload rate and cache); the names the handlers use are re-exported here.

* Queue: ``max_size`` with a message people understand, and at most ``Limits.session_events`` requests waiting or
  running per browser session. Internal handlers (the page's own follow-up steps) are refused unless the request
  is the one the page itself sends (see :meth:`QueueGuard.internal_refusal`).
* Sessions: ``state_session_capacity`` bounds how many sessions Gradio keeps, and a sweeper drops sessions idle
  for longer than ``STATE_TTL`` and gives the memory back to the OS.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import threading
import time
import weakref
from collections import defaultdict
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from .http_limits import RequestGuard, cache_bytes, evict_uploads
from .i18n import lang
from .lanes import LANES, MODEL_BUSY, SLOW_BUSY, SLOW_SESSION, Lanes, heavy_events, is_slow
from .limits import LIMITS, STATE_TTL, Limits
from .refusals import in_language
from .request_checks import channel_index, check_options, input_problem, opacity_value, photo_payload

INTERNAL = ("select_model", "analyze_if_image", "drill_pickers", "pick_example")  # the page's own steps
DOCUMENTED: tuple[str, ...] = ()  # api_names of internal handlers that stay an API (the picker's is switch_model)
QUEUE_FULL = "The server is busy: {n} requests are already waiting. Please try again in a minute."
SESSION_BUSY = "You already have {n} requests waiting or running. Please wait for them to finish."
NOT_AN_API = ("This function is one of the page's own steps and cannot be called directly. Please call the "
              "/analyze endpoint instead.")


def _internal(fn: Any) -> bool:
    return fn.name in INTERNAL and fn.api_name not in DOCUMENTED


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
                message, code = refusal
                language = lang(request)  # the page's language; API clients send none and get English
                if isinstance(message, list):  # an input's sentence (Gradio's validation shape)
                    message = [{**item, "message": in_language(item["message"], language)} for item in message]
                else:
                    message = in_language(message, language)
                return False, message, code
            success, message, code = await original(body, request, username)
            if code == "queue_full":
                message = in_language(QUEUE_FULL.format(n=len(queue)), lang(request))
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
        if _internal(fn):
            refusal = self.internal_refusal(fn, body, session)
            if refusal:
                return refusal, "error"
        if fn.concurrency_id == "models":  # the cheap refusals first
            busy = self._session_events(queue, session)
            if busy >= self.limits.session_events:
                return SESSION_BUSY.format(n=busy), "queue_full"
            # A slow method the slow lane cannot take: refused here, before the photo is even read.
            slow = isinstance(body.data, list) and any(isinstance(value, str) and is_slow(value)
                                                       for value in body.data)
            lane = LANES.refusal(session or "anonymous") if slow else None
            if lane:
                return lane, "queue_full"
        problem = input_problem(demo, fn, body.data)
        if problem:
            name, message = problem
            # Gradio's shape for a validation failure: HTTP 422, and gradio_client raises it as a ValidationError.
            return [{"__type__": "validate", "is_valid": False, "parameter_name": name, "message": message}], \
                "validator_error"
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
        queue = getattr(demo, "_queue", None)
        with holder.lock:
            idle = [session for session, used in holder.time_last_used.items() if used.timestamp() < cutoff]
        if queue is not None:  # not a session whose events are waiting or running
            idle = [session for session in idle if not self._session_events(queue, session)]
        messages = getattr(queue, "pending_messages_per_session", {})
        # Gradio adds every event's id here and removes them only when an event is cancelled
        event_ids = getattr(queue, "pending_event_ids_session", {})
        for session in idle:
            holder.delete_state(session)  # runs the State delete callbacks
            with holder.lock:
                holder.session_data.pop(session, None)
                holder.time_last_used.pop(session, None)
            pending = messages.get(session)
            if pending is not None and pending.empty():  # the session's event stream, long read
                messages.pop(session, None)
            event_ids.pop(session, None)
        live = set(holder.session_data)
        self._tokens = defaultdict(int, {key: n for key, n in self._tokens.items() if key[0] in live and n > 0})
        self._loaded = {key for key in self._loaded if key[0] in live}
        if idle:
            gc.collect()
            release_memory()
        return len(idle)


M_ARENA_MAX = -8  # glibc's mallopt parameter number


def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to tune
        return None


def limit_arenas(count: int = 2) -> None:
    """Let glibc's malloc keep at most ``count`` heaps: by default every worker thread that meets contention gets its
    own arena, and freed memory scattered over many arenas stays in RSS long after the sessions that used it."""
    libc = _libc()
    if libc is not None:
        with contextlib.suppress(AttributeError):
            libc.mallopt(M_ARENA_MAX, count)


def release_memory() -> None:
    """Return freed heap pages to the OS (glibc keeps them otherwise, so RSS would never come down)."""
    libc = _libc()
    if libc is not None:
        with contextlib.suppress(AttributeError):
            libc.malloc_trim(0)


def install(demo: gr.Blocks, limits: Limits = LIMITS) -> QueueGuard:
    """Queue rules and internal handlers of a built Blocks (call at the end of ``build_demo``)."""
    limit_arenas()  # before the server's worker threads start
    for fn in demo.fns.values():
        if _internal(fn):
            fn.api_visibility = "private"  # hidden from the API page and refused by Gradio's clients
    guard = QueueGuard(demo, limits)
    guard.wrap(demo._queue)
    original_queue = demo.queue

    def queue(*args: Any, **kwargs: Any) -> gr.Blocks:
        kwargs["max_size"] = limits.queue_size
        result = original_queue(*args, **kwargs)
        guard.wrap(demo._queue)
        return result

    demo.queue = queue  # every later queue() call keeps the guards
    demo.guard = guard  # type: ignore[attr-defined]  # for tests and scripts; Blocks has no typed slot
    return guard


def launch_options(upload_bytes: int = 0, limits: Limits = LIMITS) -> dict[str, Any]:
    """``demo.launch`` keyword arguments: the HTTP middleware and the session capacity.

    Args:
        upload_bytes: the largest file the server takes when that is more than the photo and Batch limits (a
            visitor's own model).
    """
    return {
        "app_kwargs": {"middleware": [Middleware(RequestGuard, limits=limits, upload_bytes=upload_bytes)]},
        "state_session_capacity": limits.max_sessions,
    }


__all__ = ["DOCUMENTED", "INTERNAL", "LANES", "LIMITS", "MODEL_BUSY", "NOT_AN_API", "QUEUE_FULL", "SESSION_BUSY",
           "SLOW_BUSY", "SLOW_SESSION", "STATE_TTL", "Lanes", "Limits", "QueueGuard", "RequestGuard", "cache_bytes",
           "channel_index", "check_options", "evict_uploads", "heavy_events", "input_problem", "install",
           "is_slow", "launch_options", "limit_arenas", "opacity_value", "photo_payload", "release_memory"]
