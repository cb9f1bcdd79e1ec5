"""A bounded lane for the app's heavy jobs (Review's Score, Evaluate), so a flood of them cannot fill gradio's queue.

Gradio's queue has one size limit for every event together: jobs that wait there for a concurrency slot take room
that Inspect needs. Heavy events therefore get enough gradio slots to enter their callback at once, and this lane
decides there: ``running`` jobs run, up to ``waiting`` more wait in line (their Stop button still works), and one
client — one network address, whatever session it claims — holds at most ``per_client`` of those places. Anything
beyond is refused at once with a message, so the queue drains in milliseconds. While a job runs, its model work is
done for its client at batch priority (:mod:`drywall_qa.serving.scheduler`), so Inspect goes first.

Behind a reverse proxy every client shares the proxy's address unless the app trusts the proxy
(:mod:`drywall_qa.serving.clients`); the global bound holds either way.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from drywall_qa.core.errors import DrywallQAError
from drywall_qa.serving.budget import ServerBusy
from drywall_qa.serving.clients import client_address
from drywall_qa.serving.scheduler import Caller, Priority, acting_for

__all__ = ["HeavyLane", "JobStopped", "ServerBusy", "client_address"]


class JobStopped(DrywallQAError):
    """The user pressed Stop while the job was waiting or running."""


class HeavyLane:
    """Admission control for heavy jobs; see the module docstring."""

    def __init__(self, running: int = 1, waiting: int = 4, per_client: int = 1, max_wait_s: float = 900) -> None:
        self.running, self.waiting, self.per_client, self.max_wait_s = running, waiting, per_client, max_wait_s
        self._slots = threading.Semaphore(running)
        self._lock = threading.Lock()
        self._holders: Counter[str] = Counter()

    @property
    def capacity(self) -> int:
        """Jobs admitted at once (running and waiting): the gradio concurrency the heavy events need."""
        return self.running + self.waiting

    def admitted(self) -> int:
        with self._lock:
            return sum(self._holders.values())

    @contextmanager
    def admit(self, client: str, stopped: Callable[[], bool] = lambda: False,
              waiting: Callable[[int], None] = lambda ahead: None) -> Iterator[None]:
        """Hold a place for ``client`` while the body runs: :class:`ServerBusy` at once when there is none, and
        :class:`JobStopped` when ``stopped()`` turns true while waiting. ``waiting(ahead)`` is told how many jobs are
        ahead while it waits. The body's model work is done for ``client`` at batch priority."""
        self._enter(client)
        try:
            self._acquire(stopped, waiting)
            try:
                with acting_for(Caller(client, Priority.BATCH)):
                    yield
            finally:
                self._slots.release()
        finally:
            with self._lock:
                self._holders[client] -= 1
                if self._holders[client] <= 0:
                    del self._holders[client]

    def _enter(self, client: str) -> None:
        with self._lock:
            total = sum(self._holders.values())
            if self._holders[client] >= self.per_client:
                raise ServerBusy(f"this client already has {self._holders[client]} heavy job(s) (Score, Evaluate, "
                                 "Jobs) running or waiting. Wait for it to finish, or press Stop")
            if total >= self.capacity:
                raise ServerBusy(f"the server is busy: {total} heavy jobs (Score, Evaluate, Jobs) are running or "
                                 f"waiting (at most {self.capacity}). Try again in a few minutes; Inspect still works")
            self._holders[client] += 1

    def _acquire(self, stopped: Callable[[], bool], waiting: Callable[[int], None]) -> None:
        deadline = time.monotonic() + self.max_wait_s
        while not self._slots.acquire(timeout=0.25):
            if stopped():
                raise JobStopped("stopped while waiting for another job to finish; nothing was run")
            if time.monotonic() > deadline:
                raise ServerBusy(f"waited {self.max_wait_s:.0f} s for other jobs to finish. Try again later")
            waiting(max(0, self.admitted() - 1))
