"""Errors a user can act on: each names the file or field at fault and what to do."""

from __future__ import annotations


class DrywallQAError(Exception):
    """Base class for every error this package raises on purpose."""


class InputError(DrywallQAError, ValueError):
    """Bad user input: an image, an annotation file, a prompt or a path."""

    def __init__(self, what: str, problem: str, hint: str = "") -> None:
        self.what, self.problem, self.hint = what, problem, hint
        message = f"{what}: {problem}"
        super().__init__(f"{message}. {hint}" if hint else message)


class ModelLoadError(DrywallQAError, OSError):
    """A checkpoint could not be loaded (no network, bad directory, unknown model type)."""


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for quoting a bad value in a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
