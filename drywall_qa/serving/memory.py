"""Keep the server's memory flat under concurrent requests (glibc only).

glibc gives each thread that allocates under contention its own malloc arena, up to 8 per core. Gradio runs
callbacks on a pool of worker threads, and every request allocates image-sized buffers (1–5 MB: the decoded photo,
probability maps, overlay, PNGs); each arena keeps its own high-water mark, so the resident memory kept climbing as
requests landed on new threads: 17 arenas and +75…110 MB over 200 requests of ``bench/load.py``; with 2 arenas the
load phase stays within ±10 MB.
"""

from __future__ import annotations

import ctypes
import os

#: arenas the server may use (the same as ``MALLOC_ARENA_MAX=2``)
MALLOC_ARENAS = 2
#: glibc's ``mallopt`` parameter number for the arena limit
_M_ARENA_MAX = -8


def cap_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Limit glibc's malloc arenas to ``arenas``; True when applied. Call it before any thread starts (glibc fixes
    the limit when the second arena is created). A no-op without glibc, or when ``MALLOC_ARENA_MAX`` is set."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt          # the C library already loaded into this process
    except (OSError, AttributeError):                 # not glibc (e.g. macOS, musl without mallopt)
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))
