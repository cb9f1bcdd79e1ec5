"""How much model work one request may ask for, and how many very large requests are held in memory at once.

A request's work is its photo's pixels times the views its prompts run (a prompt predicted from the whole photo
and from windows runs two views): it grows with the time the model takes and with the full-size maps the request
keeps. Above :data:`MAX_WORK` a request is refused with one line saying what to change. From :data:`LARGE_WORK` on,
a request is *large*: only one large request is predicted at a time (:class:`LargeRequests`), the others wait for
it, so the server's peak memory holds one large request's maps whatever arrives; small requests never wait here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from drywall_qa.core.errors import DrywallQAError, InputError

#: most pixel-views one request may run: a 50 MP photo with 8 prompts of two views each (a tiled pass and a
#: zoomed-out one)
MAX_WORK = 800_000_000
#: from here on a request is large and waits for any other large one: a 12 MP photo with 4 one-view prompts
LARGE_WORK = 48_000_000
#: longest a large request waits for the one before it
LARGE_WAIT_S = 300.0


class ServerBusy(DrywallQAError):
    """The request could not be admitted in time; trying again later may work."""


def check_work(work: int, width: int, height: int, views: int) -> None:
    """Refuse a request of ``work`` pixel-views (a ``width×height`` photo, ``views`` over all its prompts) above
    :data:`MAX_WORK`."""
    if work > MAX_WORK:
        raise InputError("request size", f"the {width}×{height} photo with {views} prompt view(s) is "
                         f"{work / 1e6:,.0f} M pixel-views of model work; the limit is {MAX_WORK / 1e6:,.0f} M",
                         "use fewer prompts, tiling off, or a smaller photo")


class LargeRequests:
    """Lets one large request (work ≥ ``large``) predict at a time; smaller ones pass straight through."""

    def __init__(self, large: int = LARGE_WORK, max_wait_s: float = LARGE_WAIT_S) -> None:
        self.large, self.max_wait_s = large, max_wait_s
        self._one = threading.Lock()

    @contextmanager
    def admit(self, work: int) -> Iterator[None]:
        """Hold the large-request place while the body runs when ``work`` is large; :class:`ServerBusy` after
        waiting ``max_wait_s`` for it."""
        if work < self.large:
            yield
            return
        start = time.monotonic()
        if not self._one.acquire(timeout=self.max_wait_s):
            raise ServerBusy(f"waited {time.monotonic() - start:.0f} s while another very large photo was being "
                             "segmented. Try again in a few minutes, or send a smaller photo or fewer prompts")
        try:
            yield
        finally:
            self._one.release()
