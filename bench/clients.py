"""Pieces the app benchmarks share: generated wall photos, a ``gradio_client`` session sending Inspect requests, and
a sampler of the server's resident memory."""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
from PIL import Image, ImageDraw

IMAGE_SIDE = 640
IMAGES = 6
SAMPLE_EVERY_S = 0.2


@dataclass(frozen=True)
class Request:
    image: str
    selected: list[str]
    typed: str

    @property
    def prompts(self) -> int:
        return len(self.selected) + len([p for p in self.typed.split(",") if p.strip()])


@dataclass
class Outcome:
    seconds: float
    error: str | None = None


def wall_photos(folder: Path, count: int = IMAGES, side: int = IMAGE_SIDE, seed: int = 0) -> list[str]:
    """``count`` JPEG "walls": shaded noisy plaster with a dark crack polyline and a light taped seam."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        shade = np.linspace(0, 30, side)[None, :, None]
        pixels = rng.normal(200, 12, (side, side, 3)) - shade
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        x = int(rng.integers(side // 5, 4 * side // 5))
        draw.rectangle([x, 0, x + 40, side], fill=(226, 224, 218))
        points = np.cumsum(rng.normal(0, 14, (24, 2)), axis=0) + rng.integers(100, side - 100, 2)
        draw.line([tuple(p) for p in points.clip(0, side - 1)], fill=(70, 66, 60), width=2)
        path = folder / f"wall{i}.jpg"
        image.save(path, quality=90)
        paths.append(str(path))
    return paths


class Client:
    """One ``gradio_client`` session sending requests one after another."""

    def __init__(self, url: str, timeout_s: float) -> None:
        import httpx
        from gradio_client import Client as GradioClient

        # no read timeout: the client's event stream idles between requests (``result(timeout)`` bounds each wait);
        # httpx's default 5 s would fail uploads on a saturated machine. ssl_verify=False: plain HTTP on loopback,
        # nothing to verify, and httpx then skips loading the CA bundle for each of gradio_client's per-call
        # connections (that was 70% of the clients' CPU, taken from the server on the same machine)
        timeout = httpx.Timeout(timeout_s, read=None)
        self.client = GradioClient(url, verbose=False, download_files=False, analytics_enabled=False,
                                   ssl_verify=False, httpx_kwargs={"timeout": timeout})
        self.timeout_s = timeout_s

    def send(self, request: Request) -> Outcome:
        from gradio_client import handle_file

        start, job = time.perf_counter(), None
        try:
            job = self.client.submit(handle_file(request.image), request.selected, request.typed, True, 0.5, 0.5,
                                     api_name="/segment")
            status, _, _, masks, _ = job.result(timeout=self.timeout_s)
        except Exception as err:  # noqa: BLE001 — every failure is counted, whatever it is
            if job is not None:
                job.cancel()
            return Outcome(time.perf_counter() - start, f"{type(err).__name__}: {err}")
        seconds = time.perf_counter() - start
        if status.startswith("**") or len(masks or []) != request.prompts:
            return Outcome(seconds, f"error status: {status[:200]}")
        return Outcome(seconds)

    def run(self, plan: list[Request], deadline: float, new_sessions: bool = False) -> list[Outcome]:
        """Send ``plan`` in turn until ``deadline``; with ``new_sessions`` each request comes from a new session (as
        from a new visitor: the server keeps per-session state for each)."""
        outcomes = []
        for request in plan:
            if time.monotonic() >= deadline:
                break
            if new_sessions:
                self.client.reset_session()
            outcomes.append(self.send(request))
        return outcomes


@dataclass
class MemoryMonitor:
    """Samples the resident memory of a process (MiB) in a background thread."""

    pid: int
    #: ``(monotonic time, MiB)``
    samples: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._process = psutil.Process(self.pid)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def now(self) -> float:
        return self._process.memory_info().rss / 2**20

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the process has used so far."""
        times = self._process.cpu_times()
        return times.user + times.system

    def settled(self, seconds: float = 2.0) -> float:
        """The median RSS over ``seconds`` of idle time (what the process holds, not a transient peak)."""
        values = []
        for _ in range(max(1, int(seconds / SAMPLE_EVERY_S))):
            values.append(self.now())
            time.sleep(SAMPLE_EVERY_S)
        return statistics.median(values)

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            try:
                self.samples.append((time.monotonic(), self.now()))
            except psutil.Error:
                return

    def between(self, start: float, end: float, parts: int = 4) -> list[float]:
        """The highest RSS in each of ``parts`` equal slices of the time from ``start`` to ``end``."""
        step = (end - start) / parts
        return [max((mib for t, mib in self.samples if start + i * step <= t <= start + (i + 1) * step),
                    default=float("nan")) for i in range(parts)]

    def stop(self) -> float:
        """Stop sampling; the peak RSS seen."""
        self._stop.set()
        self._thread.join()
        return max((mib for _, mib in self.samples), default=0.0)
