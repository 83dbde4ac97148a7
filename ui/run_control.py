"""Which analysis of a browser session is still wanted (Gradio-free).

Gradio's ``cancels=`` drops an older job in the browser and on the queue, but a handler already running in a
worker thread keeps going (a slow CAM method holds the model's lock for 20-40 s). Each analysis takes a ticket
when it starts; a newer analysis of the same session, or the Cancel button, makes older tickets stale, and the
analysis's progress callback stops it at its next report by raising :class:`Cancelled`.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable

MAX_SESSIONS = 10_000  # sessions remembered (a few bytes each); the oldest are forgotten first


class Cancelled(Exception):
    """The visitor cancelled this analysis or started a newer one."""


class Runs:
    """The newest ticket of each session."""

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self._latest: OrderedDict[str, int] = OrderedDict()
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._max = max_sessions

    def _bump(self, session: str, *, cancel: bool = False) -> int:
        with self._lock:
            ticket = next(self._numbers)
            self._latest[session] = -ticket if cancel else ticket  # negative: the visitor pressed Cancel
            self._latest.move_to_end(session)
            while len(self._latest) > self._max:
                self._latest.popitem(last=False)
            return ticket

    def start(self, session: str | None) -> tuple[str | None, int]:
        """A ticket for a new analysis of ``session``; older analyses of the session become stale."""
        return session, (self._bump(session) if session else 0)

    def cancel(self, session: str | None) -> None:
        """Make every running analysis of ``session`` stale (the Cancel button)."""
        if session:
            self._bump(session, cancel=True)

    def current(self, ticket: tuple[str | None, int]) -> bool:
        session, number = ticket
        if not session:  # API calls without a session are never superseded
            return True
        with self._lock:
            return self._latest.get(session) == number

    def cancelled(self, ticket: tuple[str | None, int]) -> bool:
        """Whether ``ticket``'s session pressed Cancel after it started (rather than starting a newer one)."""
        session, _ = ticket
        with self._lock:
            return session is not None and self._latest.get(session, 0) < 0

    def watch(self, ticket: tuple[str | None, int],
              report: Callable[[float], None] | None) -> Callable[[float], None]:
        """A progress callback that forwards to ``report`` and raises :class:`Cancelled` once ``ticket`` is stale."""
        def progress(fraction: float) -> None:
            if not self.current(ticket):
                raise Cancelled
            if report is not None:
                report(fraction)
        return progress
