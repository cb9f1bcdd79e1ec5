"""Stop buttons for long jobs: which sessions have a job waiting or running, and which of them asked it to stop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def session_of(request: object | None) -> str:
    """A gradio request's session (``"local"`` for a direct call without one)."""
    return getattr(request, "session_hash", None) or "local"


class StopRequests:
    """Stop requests per session, cleared when the session's job ends (so the next one is not stopped)."""

    def __init__(self) -> None:
        self._active: set[str] = set()
        self._asked: set[str] = set()
        self._lock = threading.Lock()

    def ask(self, session: str) -> bool:
        """Ask the session's job to stop; False when it has none."""
        with self._lock:
            if session in self._active:
                self._asked.add(session)
            return session in self._active

    @contextmanager
    def job(self, session: str) -> Iterator[Callable[[], bool]]:
        """Mark the session's job active while the body runs; yields ``stopped()``, true once Stop was pressed."""
        with self._lock:
            self._active.add(session)
        try:
            yield lambda: session in self._asked
        finally:
            with self._lock:
                self._active.discard(session)
                self._asked.discard(session)
