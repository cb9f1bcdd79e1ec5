"""Status lines for the UI: every failure becomes a readable message, never a stack trace in the browser."""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from drywall_qa.core.errors import DrywallQAError

log = logging.getLogger("drywall_qa.app")
Outputs = TypeVar("Outputs", bound=tuple)

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def escape_md(text: str) -> str:
    """``text`` with Markdown emphasis, link, table and HTML characters backslash-escaped, so paths and user text
    show literally."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


#: server folders (absolute, longest first) shown as ``…/`` in messages to clients, see :func:`hide_server_paths`
_hidden_prefixes: list[str] = []


def hide_server_paths(folders: Sequence[Path | str]) -> None:
    """From now on, messages shown to clients name files inside ``folders`` relative to them: a remote user learns
    which split or image is at fault, not where the server keeps it."""
    resolved = {str(Path(folder).resolve()) for folder in folders}
    _hidden_prefixes[:] = sorted((p for p in resolved if p != os.sep), key=len, reverse=True)


def without_server_paths(text: str) -> str:
    """``text`` with the absolute folders given to :func:`hide_server_paths` replaced by ``…`` where they start a
    path (followed by ``/`` or the end of the path), never inside a word."""
    for prefix in _hidden_prefixes:
        text = re.sub(rf"{re.escape(prefix)}(?=/|\b|$)(?!\w)", "…", text)
    return text


def error_message(err: BaseException) -> str:
    """A Markdown status line for ``err`` (server folders hidden); unexpected errors are logged with their traceback
    on the server."""
    if isinstance(err, DrywallQAError):
        return f"**Error:** {escape_md(without_server_paths(str(err)))}"
    log.error("unexpected error in a UI callback", exc_info=err)
    return (f"**Unexpected error** ({escape_md(type(err).__name__)}): {escape_md(without_server_paths(str(err)))}. "
            "The details are in the server log; please report it.")


def cleared(outputs: type[Outputs], status: str) -> Outputs:
    """An ``outputs`` named tuple holding ``status`` and nothing else, so no stale result sits next to it."""
    return outputs(status, *[None] * (len(outputs._fields) - 1))  # type: ignore[attr-defined]


def guarded(outputs: type[Outputs]) -> Callable[[Callable[..., Outputs]], Callable[..., Outputs]]:
    """Decorate a callback returning an ``outputs`` named tuple (status first; its fields are the event's output
    components): any exception returns the :func:`cleared` tuple with the error message instead."""

    def decorate(callback: Callable[..., Outputs]) -> Callable[..., Outputs]:
        @functools.wraps(callback)
        def run(*args: Any, **kwargs: Any) -> Outputs:
            try:
                return callback(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 — the UI must keep serving whatever happened
                return cleared(outputs, error_message(err))

        return run

    return decorate


def skipped_note(split: object) -> str | None:
    """The note shown when a split's annotation file had annotations or polygons with nothing to draw (None when it
    had none): they are not in the ground truth the scores use."""
    annotations, polygons = getattr(split, "skipped_annotations", 0) or 0, getattr(split, "skipped_polygons", 0) or 0
    if not annotations and not polygons:
        return None
    return (f"{getattr(split, 'root', Path('split')).name}: {annotations} annotation(s) with nothing to draw and "
            f"{polygons} degenerate polygon(s) skipped, not in the ground truth")
