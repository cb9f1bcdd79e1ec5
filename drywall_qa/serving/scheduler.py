"""One model, many requests: model work is cut into units of bounded cost and the units of different clients take
turns.

A unit is one backend call sequence that must not be interleaved with another's: a prompt-embedding lookup, the
whole view of a photo, or one batch of tiling windows (:mod:`drywall_qa.core.views`). Before each unit a request asks
the :class:`Scheduler` for a :meth:`~Scheduler.turn`; between units it holds nothing, so the photo's blending, resizing
and drawing run beside another request's model work.

When a turn ends, the next goes to the most urgent class that has a unit waiting (:class:`Priority`: interactive
before batch), and within it round-robin over clients: the client served longest ago goes first, and one client's
own requests go in the order they asked. A 640 px Inspect therefore waits for at most the unit that is running,
whatever large photo, job or evaluation is under way, and two batch jobs of different clients advance alike.

Who is asking travels with the request as a :class:`Caller` in a context variable (:func:`acting_for`), so code that
calls the model (the job and evaluation runners) needs no extra argument.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import IntEnum


class Priority(IntEnum):
    """How urgent a request's units are; lower goes first."""

    #: someone waits on the answer now: Inspect, the API's /segment, Review's row view
    INTERACTIVE = 0
    #: a job, evaluation or scoring run that goes on for minutes
    BATCH = 1


@dataclass(frozen=True)
class Caller:
    """Who a unit of model work is for: the client (its network address) and its priority."""

    client: str = "local"
    priority: Priority = Priority.INTERACTIVE


_caller: ContextVar[Caller] = ContextVar("drywall_qa_caller", default=Caller())


def current_caller() -> Caller:
    """The caller the running code works for (an interactive local caller when none was set)."""
    return _caller.get()


@contextmanager
def acting_for(caller: Caller) -> Iterator[Caller]:
    """Model work inside the block is done for ``caller``."""
    token = _caller.set(caller)
    try:
        yield caller
    finally:
        _caller.reset(token)


class _Waiter:
    """One unit waiting for its turn."""

    __slots__ = ("granted",)

    def __init__(self) -> None:
        self.granted = False


class Scheduler:
    """Grants turns on one model one at a time; see the module docstring."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        #: per priority: client → its waiting units, clients in round-robin order
        self._queues: dict[Priority, OrderedDict[str, deque[_Waiter]]] = {p: OrderedDict() for p in Priority}
        #: turns granted so far (tests and benchmarks read it)
        self.turns = 0

    def waiting(self) -> int:
        """Units waiting for a turn now."""
        with self._cond:
            return sum(len(units) for queue in self._queues.values() for units in queue.values())

    @contextmanager
    def turn(self, caller: Caller | None = None) -> Iterator[None]:
        """Hold the model for one unit of ``caller``'s work (the current caller when None)."""
        self._acquire(caller or current_caller())
        try:
            yield
        finally:
            self._release()

    def _acquire(self, caller: Caller) -> None:
        with self._cond:
            if not self._busy:
                self._busy = True
                self.turns += 1
                return
            waiter = _Waiter()
            self._queues[caller.priority].setdefault(caller.client, deque()).append(waiter)
            try:
                while not waiter.granted:
                    self._cond.wait()
            except BaseException:
                self._abandon(caller, waiter)
                raise

    def _abandon(self, caller: Caller, waiter: _Waiter) -> None:
        """An interrupted wait: give the turn on if it was granted meanwhile, else leave the queue."""
        if waiter.granted:
            self._release_locked()
            return
        units = self._queues[caller.priority].get(caller.client)
        if units is not None and waiter in units:
            units.remove(waiter)
            if not units:
                del self._queues[caller.priority][caller.client]

    def _release(self) -> None:
        with self._cond:
            self._release_locked()

    def _release_locked(self) -> None:
        """Hand the model to the next unit (see the module docstring), or mark it free."""
        for priority in Priority:
            queue = self._queues[priority]
            if queue:
                client, units = next(iter(queue.items()))
                waiter = units.popleft()
                del queue[client]
                if units:
                    queue[client] = units          # back of the line: the other clients go first
                waiter.granted = True
                self.turns += 1
                self._cond.notify_all()
                return
        self._busy = False
