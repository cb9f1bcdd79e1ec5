"""Load test of the app's ``/segment`` endpoint: several concurrent ``gradio_client`` clients against
``python app.py`` on a free 127.0.0.1 port.

Run from the repository root: ``python -m bench.load [--model DIR|tiny] [--clients 8] [--requests 25]``.

Model: the bundled ``drywall_qa/weights/drywall-qa-lite`` by default; ``--model DIR`` for a checkpoint folder, or
``--model tiny`` for a tiny random drywall-qa-lite built with ``tests/tiny_lite.py`` (its model call is nearly free, so
the figures show the app's own cost per request).
Requests: a generated 640×640 JPEG wall photo and 1–3 prompts each (registered prompts ticked, a free-text one
typed), the model's tuned thresholds, like a user pressing Segment. Phases, in one run against one server process:

1. warm-up: a few sequential requests (first-call costs);
2. single-request baseline: ``--single`` sequential requests from one client, median latency;
3. concurrent warm-up: ``--warmup`` requests per client, all clients at once (every session exists);
4. load: ``--clients`` clients × ``--requests`` requests, each client sending its next request when the previous
   one is answered.

Latency is the client's wall time from submit to answer. A request fails when it raises (queue full, timeout,
connection) or its status line is an error. The server's resident memory (psutil RSS) is sampled every 0.2 s;
growth is the highest RSS in the last quarter of phase 4 minus the highest in its first quarter (both under the same
load, so buffers in flight count alike; the idle RSS after phases 3 and 4 is printed too). Bounded: at most 32
clients × 500 requests, every request times out after ``--request-timeout`` s and no request is started after
``--time-limit`` s (requests not sent count as errors). Loopback only. The clients run on the same machine and take
CPU from the server; other processes do too, so the load average is printed before and after.
The last line reads ``requests: <n> errors: <n> p95_over_single: <ratio> memory_growth_mb: <mb>``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
from PIL import Image, ImageDraw

from drywall_qa.backends import BUNDLED_DIR
from drywall_qa.ui.prompts import KNOWN_PROMPTS
from tests.app_server import AppServer, serve_app

#: typed (free-text) prompts mixed with the registered ones
TYPED_PROMPTS = ("segment hole in the wall", "segment screw head", "segment water stain")
IMAGE_SIDE = 640
IMAGES = 6
MAX_CLIENTS, MAX_REQUESTS = 32, 500
SAMPLE_EVERY_S = 0.2


@dataclass(frozen=True)
class Request:
    image: str
    selected: list[str]
    typed: str

    @property
    def prompts(self) -> int:
        return len(self.selected) + bool(self.typed)


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


def request_plan(images: list[str], count: int, rng: random.Random) -> list[Request]:
    """``count`` requests with 1–3 prompts: registered ones ticked, sometimes one free-text prompt typed."""
    plan = []
    for _ in range(count):
        n = rng.randint(1, 3)
        typed = rng.choice(TYPED_PROMPTS) if rng.random() < 0.3 else ""
        plan.append(Request(rng.choice(images), rng.sample(KNOWN_PROMPTS, n - bool(typed)), typed))
    return plan


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

    def run(self, plan: list[Request], deadline: float) -> list[Outcome]:
        return [self.send(request) for request in plan if time.monotonic() < deadline]


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


def run_concurrently(clients: list[Client], plans: list[list[Request]], deadline: float) -> list[Outcome]:
    with ThreadPoolExecutor(len(clients)) as pool:
        results = pool.map(lambda pair: pair[0].run(pair[1], deadline), zip(clients, plans))
        return [outcome for outcome_list in results for outcome in outcome_list]


def bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}…{high}")
        return value
    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(BUNDLED_DIR),
                        help="checkpoint folder (default: the bundled drywall-qa-lite) or 'tiny' (random tiny lite)")
    parser.add_argument("--clients", type=bounded(1, MAX_CLIENTS), default=8, help="concurrent clients (default 8)")
    parser.add_argument("--requests", type=bounded(1, MAX_REQUESTS), default=25,
                        help="requests per client under load (default 25)")
    parser.add_argument("--single", type=bounded(3, MAX_REQUESTS), default=20,
                        help="sequential requests for the single-request baseline (default 20)")
    parser.add_argument("--warmup", type=bounded(0, 50), default=10,
                        help="untimed requests per client before the load phase (default 10)")
    parser.add_argument("--request-timeout", type=float, default=120.0, help="seconds per request (default 120)")
    parser.add_argument("--time-limit", type=float, default=600.0,
                        help="no request is started after this many seconds (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def resolve_model(model: str, scratch: Path) -> str:
    if model == "tiny":
        from tests.tiny_lite import make_tiny_lite

        return str(make_tiny_lite(scratch / "tiny-lite"))
    if not (Path(model) / "config.json").is_file():
        raise SystemExit(f"python -m bench.load: error: {model} is not a checkpoint folder (no config.json); "
                         "pass --model DIR, or --model tiny for a tiny random model")
    return model


@dataclass
class Results:
    single: list[Outcome]
    load: list[Outcome]
    after: list[Outcome]
    planned: int
    seconds: float
    server_cpu_s: float
    client_cpu_s: float
    rss: dict[str, float]
    rss_quarters: list[float]


def measure(args: argparse.Namespace, server: AppServer, images: list[str]) -> Results:
    """Phases 1–4 of the module docstring, then a few single requests again."""
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.time_limit
    memory = MemoryMonitor(server.process.pid)
    rss = {"start": memory.now()}
    single = Client(server.url, args.request_timeout)
    single.run(request_plan(images, 3, rng), deadline)
    baseline = single.run(request_plan(images, args.single, rng), deadline)
    clients = [Client(server.url, args.request_timeout) for _ in range(args.clients)]
    run_concurrently(clients, [request_plan(images, args.warmup, rng) for _ in clients], deadline)
    rss["warm"] = memory.settled()
    plans = [request_plan(images, args.requests, rng) for _ in clients]
    start, cpu_start, client_start = time.monotonic(), memory.cpu_seconds(), time.process_time()
    outcomes = run_concurrently(clients, plans, deadline)
    end, cpu_used, client_used = time.monotonic(), memory.cpu_seconds() - cpu_start, time.process_time() - client_start
    rss["end"] = memory.settled()
    quarters = memory.between(start, end)
    rss["peak"] = memory.stop()
    after = single.run(request_plan(images, 5, rng), deadline)
    return Results(baseline, outcomes, after, args.clients * args.requests, end - start, cpu_used, client_used, rss,
                   quarters)


def median_ok(outcomes: list[Outcome]) -> float | None:
    """Median latency of the requests that succeeded."""
    ok = [o.seconds for o in outcomes if o.error is None]
    return statistics.median(ok) if ok else None


def report(args: argparse.Namespace, r: Results) -> None:
    single_s, after_s = median_ok(r.single), median_ok(r.after)
    if single_s is None or not r.load:
        raise SystemExit(f"no single-request baseline or no request under load succeeded: "
                         f"{[o.error for o in r.single + r.load][:3]}")
    latencies = [o.seconds for o in r.load]
    errors = [o.error for o in r.load if o.error is not None]
    p50, p95, p99 = (float(np.percentile(latencies, q)) for q in (50, 95, 99))
    print(f"single request: median {1000 * single_s:.0f} ms, p95 "
          f"{1000 * np.percentile([o.seconds for o in r.single], 95):.0f} ms ({len(r.single)} sequential requests, "
          f"{sum(o.error is not None for o in r.single)} failed)")
    print(f"load: {args.clients} clients × {args.requests} requests (1–3 prompts, {IMAGE_SIDE}×{IMAGE_SIDE} JPEG): "
          f"{len(r.load)} of {r.planned} sent in {r.seconds:.1f} s = {len(r.load) / r.seconds:.2f} requests/s")
    print(f"latency: p50 {1000 * p50:.0f} ms, p95 {1000 * p95:.0f} ms, p99 {1000 * p99:.0f} ms, "
          f"max {1000 * max(latencies):.0f} ms; p95 / single = {p95 / single_s:.2f}")
    print(f"CPU time per request: server {1000 * r.server_cpu_s / len(r.load):.0f} ms, clients (this process) "
          f"{1000 * r.client_cpu_s / len(r.load):.0f} ms")
    print(f"errors: {len(errors)}" + "".join(f"\n  {e}" for e in sorted(set(errors))[:5]))
    print(f"server RSS: {r.rss['start']:.0f} MiB at start, idle {r.rss['warm']:.0f} MiB after warm-up and "
          f"{r.rss['end']:.0f} MiB after the load, peak {r.rss['peak']:.0f} MiB; highest in each quarter of the "
          f"load phase: {', '.join(f'{q:.0f}' for q in r.rss_quarters)} MiB")
    if after_s is not None:
        print(f"single request again after the load (not used above; shows how much the machine's other load "
              f"drifted): median {1000 * after_s:.0f} ms, p95 under load / that = {p95 / after_s:.2f}")
    print(f"CPU load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"requests: {len(r.load)} errors: {len(errors) + r.planned - len(r.load)} "
          f"p95_over_single: {p95 / single_s:.2f} memory_growth_mb: {r.rss_quarters[-1] - r.rss_quarters[0]:.1f}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server too when the benchmark is killed
    with tempfile.TemporaryDirectory(prefix="drywall-qa-load-") as scratch:
        scratch = Path(scratch)
        model = resolve_model(args.model, scratch)
        images = wall_photos(scratch)
        print(f"model: {model}; CPU load average (1 min) before start: {os.getloadavg()[0]:.2f} on "
              f"{os.cpu_count()} CPUs (other processes compete for them)")
        with serve_app(model, scratch / "server") as server:
            print(f"server: pid {server.process.pid} on {server.url}")
            report(args, measure(args, server, images))


if __name__ == "__main__":
    main()
