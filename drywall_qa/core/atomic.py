"""Crash-safe file writes: a temp file in the same folder, fsync, then rename — a kill leaves the old file or the new
one, never half of either."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

#: the mode ``open()`` would give a new file (``mkstemp`` makes 0600 files, unreadable to other users)
_UMASK = os.umask(0)
os.umask(_UMASK)
NEW_FILE_MODE = 0o666 & ~_UMASK


def write_atomic(path: Path, data: bytes | str | Callable[[BinaryIO], None]) -> None:
    """Write text (UTF-8), bytes, or what ``data(handle)`` writes, to a temp file next to ``path``, fsync it and
    rename it over ``path``."""
    write = data if callable(data) else (lambda handle: handle.write(data.encode() if isinstance(data, str) else data))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), NEW_FILE_MODE)
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
