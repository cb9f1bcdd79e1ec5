"""Status lines for the UI: every failure becomes a readable message, never a stack trace in the browser."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any

from drywall_qa.errors import DrywallQAError

log = logging.getLogger("drywall_qa.ui")

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def escape_md(text: str) -> str:
    """``text`` with Markdown emphasis, link, table and HTML characters backslash-escaped, so paths and user text
    show literally."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def error_message(err: BaseException) -> str:
    """A Markdown status line for ``err``; unexpected errors are logged with their traceback on the server."""
    if isinstance(err, DrywallQAError):
        return f"**Error:** {escape_md(str(err))}"
    log.error("unexpected error in a UI callback", exc_info=err)
    return (f"**Unexpected error** ({escape_md(type(err).__name__)}): {escape_md(str(err))}. "
            "The details are in the server log; please report it.")


def guarded(outputs: int) -> Callable[[Callable[..., tuple]], Callable[..., tuple]]:
    """Decorate a callback returning ``(status, *outputs)``: any exception returns ``(message, None, …)`` instead,
    which clears the ``outputs`` components so no stale result sits next to the error."""

    def decorate(callback: Callable[..., tuple]) -> Callable[..., tuple]:
        @functools.wraps(callback)
        def run(*args: Any, **kwargs: Any) -> tuple:
            try:
                return callback(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 — the UI must keep serving whatever happened
                return (error_message(err), *([None] * outputs))

        return run

    return decorate


def skipped_note(count: int) -> str:
    """The note shown when a split's annotation file had annotations with nothing to draw."""
    return (f"{count} annotation{'s' * (count != 1)} of the split had nothing to draw (degenerate polygons or boxes "
            "outside the image) and were skipped")
