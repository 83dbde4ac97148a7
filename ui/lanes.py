"""Who runs when: fast requests take turns on each model's lock, slow CAM methods have one lane for the whole app.

A slow method (``CAM_METHODS[m].slow``: Score-CAM, Ablation-CAM) runs on the lane's own copy of the model, one at
a time, at most one per session and at most ``Limits.slow_waiting`` waiting; so it never holds the lock
(``senet.hooks.model_lock``) that fast requests to the same model wait on. While fast analyses run, the slow one
pauses at its next progress report (after each batch of forward passes), and it runs on the lane's own thread at
a lower CPU priority (``nice`` 15), so on a small CPU the fast ones barely share their cores with it. Every
handler that can run a slow method (Explore's analysis, the PDF report, the ``/explain`` tool) takes its turn
here.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from gradio.context import LocalContext
from torch import nn

import senet
from senet.catalog import Catalog

from .limits import LIMITS, Limits
from .refusals import refuse

SLOW_BUSY = ("Slow methods (Score-CAM, Ablation-CAM) are busy: {n} are already waiting. Please try again in a "
             "minute, or use a fast method such as Grad-CAM.")
SLOW_SESSION = ("You already have a slow analysis (Score-CAM or Ablation-CAM) waiting or running. Please wait "
                "for it to finish.")
MODEL_BUSY = "This model is busy with other analyses. Please try again in a minute."
NICE = 15  # the slow lane thread's CPU priority (0 normal, 19 lowest)
PAUSE_S = 2.0  # longest pause of a slow analysis per progress report (under endless fast traffic it still moves)


T = TypeVar("T")


def _lower_priority() -> None:
    """Run this thread (the slow lane's) at a lower CPU priority; Linux gives each thread its own nice value."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)


def is_slow(method: str | None) -> bool:
    """Whether ``method`` names a slow CAM method (unknown names are left to ``analyze`` to refuse)."""
    spec = senet.CAM_METHODS.get(method or "gradcam")
    return bool(spec and spec.slow)


def _session() -> str:
    request = LocalContext.request.get(None)
    return str(getattr(request, "session_hash", "") or "anonymous")


class Lanes:
    """Turns on the models: fast requests share each model's lock; slow methods have one app-wide lane with
    their own copy of each model."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        self.limits = limits
        self._slow = threading.Lock()  # the slow lane: one slow analysis at a time in the whole app
        self._books = threading.Lock()
        self._slow_count = 0  # running + waiting
        self._slow_sessions: set[str] = set()
        self._fast_running = 0
        # one thread is enough: one slow analysis runs at a time; made on first use
        self._thread: ThreadPoolExecutor | None = None
        # a model -> the slow lane's copy of it; dropped with the model (e.g. a visitor's own model)
        self._copies: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()

    @property
    def slow_count(self) -> int:
        """Slow requests running or waiting."""
        return self._slow_count

    def refusal(self, session: str) -> str | None:
        """Why a slow request of ``session`` would be refused right now (checked again when it runs), or None."""
        with self._books:
            if session in self._slow_sessions:
                return SLOW_SESSION
            if self._slow_count >= 1 + self.limits.slow_waiting:
                return SLOW_BUSY.format(n=self._slow_count - 1)
        return None

    @contextlib.contextmanager
    def turn(self, net: nn.Module, *, slow: bool, session: str | None = None) -> Iterator[nn.Module]:
        """Wait for this request's turn on ``net`` and yield the model to use (``net`` or the slow lane's copy).

        Args:
            net: the model the request wants.
            slow: the request runs a slow CAM method.
            session: the browser session (default: the calling request's).
        Raises:
            gr.Error: the slow lane is full, this session already has a slow request, or the model stayed busy.
        """
        if not slow:
            lock = senet.hooks.model_lock(net)
            if not lock.acquire(timeout=self.limits.fast_wait_s):
                raise refuse(MODEL_BUSY)
            with self._books:
                self._fast_running += 1
            try:
                yield net
            finally:
                with self._books:
                    self._fast_running -= 1
                lock.release()
            return
        session = session or _session()
        with self._books:
            if session in self._slow_sessions:
                raise refuse(SLOW_SESSION)
            if self._slow_count >= 1 + self.limits.slow_waiting:
                raise refuse(SLOW_BUSY.format(n=self._slow_count - 1))
            self._slow_count += 1
            self._slow_sessions.add(session)
        try:
            with self._slow:
                yield self._copy(net)
        finally:
            with self._books:
                self._slow_count -= 1
                self._slow_sessions.discard(session)

    def run(self, slow: bool, work: Callable[[], T]) -> T:
        """``work()``: on the calling thread, or for a slow analysis on the slow lane's low-priority thread (with
        the caller's context, so Gradio's progress bar still reaches the page)."""
        if not slow:
            return work()
        with self._books:
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="senet-slow-lane", initializer=_lower_priority)
        return self._thread.submit(contextvars.copy_context().run, work).result()

    def analyze(self, net: nn.Module, card: Any, photo: Any, *, method: str = "gradcam",
                progress: Callable[[float], None] | None = None, waited: Callable[[], None] | None = None,
                **options: Any) -> senet.Analysis:
        """``senet.analyze`` in its lane: after this request's turn on ``net``; a slow method on the lane's copy,
        on its thread, paced (``progress`` gets its reports). ``waited()`` runs once the turn has come (e.g. to
        give up because a newer request arrived meanwhile)."""
        slow = is_slow(method)
        with self.turn(net, slow=slow) as lane_net:
            if waited is not None:
                waited()
            return self.run(slow, lambda: senet.analyze(lane_net, card, photo, method=method,
                                                        progress=self.paced(progress) if slow else None, **options))

    def paced(self, progress: Callable[[float], None] | None = None) -> Callable[[float], None]:
        """A progress callback for a slow analysis: it waits (at most PAUSE_S) while fast analyses run, then
        forwards to ``progress``."""
        def report(fraction: float) -> None:
            deadline = time.monotonic() + PAUSE_S
            while self._fast_running and time.monotonic() < deadline:
                time.sleep(0.01)
            if progress is not None:
                progress(fraction)
        return report

    def _copy(self, net: nn.Module) -> nn.Module:
        """The slow lane's own copy of a model (made once, under the slow lane's lock), so that a minute-long
        Score-CAM never holds the lock fast requests to the same model wait on."""
        model = self._copies.get(net)
        if model is None:
            with senet.hooks.model_lock(net):  # copy a model nobody is hooking into
                model = copy.deepcopy(net).eval()
            self._copies[net] = model
        return model


LANES = Lanes()  # one slow lane for the whole app


def heavy_events(catalog: Catalog, limits: Limits = LIMITS) -> dict[str, Any]:
    """``concurrency_limit`` / ``concurrency_id`` for every event that runs a model.

    One group, wide enough that every model can run a fast request and have one more waiting while the slow
    lane is full: waiting (for a model's lock or the slow lane) then never uses up the slots of another model.
    """
    models = max(1, len(catalog.available()))
    return {"concurrency_limit": 2 * models + 1 + limits.slow_waiting, "concurrency_id": "models"}
