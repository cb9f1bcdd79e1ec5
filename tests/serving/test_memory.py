"""The app caps glibc's malloc arenas so its memory stays flat under concurrent requests (see bench/load.py)."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: 16 threads allocate 2.4 MB buffers at once (like request workers), then the process reports its arena count
PROBE = """
import ctypes, sys, threading
if sys.argv[1] == "capped":
    from drywall_qa.serving.memory import cap_malloc_arenas
    assert cap_malloc_arenas()
import numpy as np
def work():
    for _ in range(100):
        buffers = [np.ones(300_000) for _ in range(4)]
threads = [threading.Thread(target=work) for _ in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc = ctypes.CDLL(None)
libc.open_memstream.restype = ctypes.c_void_p
text, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = ctypes.c_void_p(libc.open_memstream(ctypes.byref(text), ctypes.byref(size)))
libc.malloc_info(0, stream)
libc.fclose(stream)
print(text.value.decode().count("<heap nr="))
"""


def arenas(mode: str) -> int:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}            # no MALLOC_ARENA_MAX inherited
    result = subprocess.run([sys.executable, "-c", PROBE, mode], cwd=REPO, env=env, capture_output=True, text=True,
                            check=True)
    return int(result.stdout)


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "malloc_info"), reason="glibc only")
def test_capped_process_uses_two_arenas_where_threads_would_get_many() -> None:
    assert arenas("capped") == 2
    assert arenas("default") > 2
