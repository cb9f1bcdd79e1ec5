"""File names made from user text (image names, prompts): safe on every file system and in every shell."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

#: longest stem made from user text: ``{image}__{prompt}-NN.png`` stays far below the 255-byte name limit
MAX_STEM = 80


def safe_name(text: str, fallback: str = "image") -> str:
    """``text`` reduced to a file-name-safe ASCII stem of at most :data:`MAX_STEM` characters: accents dropped, runs of
    other characters (``/``, NUL, controls) become ``_``, no leading ``.`` (hidden) or ``-`` (read as an option);
    ``fallback`` when nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text).strip("._-")[:MAX_STEM] or fallback


def distinct_png_names(stems: Iterable[str]) -> list[str]:
    """``<stem>.png`` per stem, a repeated stem numbered ``<stem>-2.png``, ``<stem>-3.png``… so no file overwrites
    another (two prompts can reduce to the same safe name)."""
    names: list[str] = []
    for stem in stems:
        name, n = f"{stem}.png", 2
        while name in names:
            name, n = f"{stem}-{n}.png", n + 1
        names.append(name)
    return names
