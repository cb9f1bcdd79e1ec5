"""Inspect runs kept for re-rendering, shared by all sessions within one memory budget.

A session's ``gr.State`` holds only a key. The runs themselves live here, least recently used first, and the oldest
are dropped once their arrays exceed the budget — so memory stays flat however many sessions come and go, and a
session whose run was dropped is asked to press Segment again. A run larger than the whole budget (a very large
photo with many prompts) is not kept at all: the budget is a bound, not a target.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from typing import Any, Protocol

#: default budget for all kept runs together
DEFAULT_BUDGET_MB = 48


class Sized(Protocol):
    def nbytes(self) -> int: ...


class ResultStore:
    """A thread-safe LRU of runs by key, bounded by the sum of their ``nbytes()``."""

    def __init__(self, budget_mb: float = DEFAULT_BUDGET_MB) -> None:
        self.budget = int(budget_mb * 1e6)
        self._runs: OrderedDict[str, Any] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def put(self, run: Sized, key: str | None = None) -> str:
        """Keep ``run`` (unless it alone is over the budget); returns its key, ``key`` if given (a run that grew is
        put again under its key, to count its new size). Older runs beyond the budget are dropped."""
        key, size = key or uuid.uuid4().hex, run.nbytes()
        if size > self.budget:
            return key
        with self._lock:
            self._runs.pop(key, None)
            self._runs[key], self._sizes[key] = run, size
            while sum(self._sizes.values()) > self.budget:
                oldest, _ = self._runs.popitem(last=False)
                del self._sizes[oldest]
        return key

    def get(self, key: str | None) -> Any | None:
        """The run kept under ``key``, or None when it was dropped (or never existed)."""
        with self._lock:
            if key not in self._runs:
                return None
            self._runs.move_to_end(key)
            return self._runs[key]

    def nbytes(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)
