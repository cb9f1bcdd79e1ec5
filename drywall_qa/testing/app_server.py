"""``python app.py`` started as a subprocess on a free loopback port, for tests and benchmarks that talk to it over
HTTP (``gradio_client``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class AppServer:
    url: str
    process: subprocess.Popen
    log: Path

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@contextmanager
def serve_app(model: str | Path, out: Path, roots: Sequence[Path] = (), timeout_s: float = 120,
              extra_env: dict[str, str] | None = None, extra_args: Sequence[str] = ()) -> Iterator[AppServer]:
    """Run ``python app.py --model MODEL`` on CPU on a free 127.0.0.1 port (offline, no analytics), wait until it
    serves, yield it, then stop it. ``roots`` are its ``--data-root`` folders; with none, an empty folder under ``out``
    is used so the machine's data folders are not scanned; ``extra_args`` are added to the command line. The server's
    output goes to ``out/app.log``."""
    out.mkdir(parents=True, exist_ok=True)
    if not roots:
        roots = [out / "no-data"]
        roots[0].mkdir(exist_ok=True)
    port = free_port()
    command = [sys.executable, "app.py", "--model", str(model), "--out", str(out / "outputs"), "--host", HOST,
               "--port", str(port), "--device", "cpu", *(arg for root in roots for arg in ("--data-root", str(root))),
               *extra_args]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", **(extra_env or {})}
    log = out / "app.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
    server = AppServer(f"http://{HOST}:{port}/", process, log)
    try:
        _wait_until_serving(server, timeout_s)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(server: AppServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the app exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the app did not serve {server.url} within {timeout_s:.0f} s:\n{server.log_tail()}")
