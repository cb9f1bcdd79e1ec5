"""Load test of the app's ``/segment`` endpoint: several concurrent ``gradio_client`` clients against
``python app.py`` on a free 127.0.0.1 port.

Run from the repository root: ``python -m bench.load [--model DIR|tiny] [--clients 8] [--requests 25]``.

Model: the bundled ``drywall_qa/weights/drywall-qa-lite`` by default; ``--model DIR`` for a checkpoint folder, or
``--model tiny`` for a tiny random drywall-qa-lite built with ``drywall_qa/testing/tiny_lite.py`` (its model call is
nearly free, so the figures show the app's own cost per request).
Requests: a generated 640×640 JPEG wall photo and 1–3 prompts each (registered prompts ticked, a free-text one
typed), the model's tuned thresholds, like a user pressing Segment. Phases, in one run against one server process:

1. warm-up: a few sequential requests (first-call costs);
2. single-request baseline: ``--single`` sequential requests from one client, median latency;
3. concurrent warm-up: ``--warmup`` requests per client, all clients at once (every session exists);
4. load: ``--clients`` clients × ``--requests`` requests, each client sending its next request when the previous
   one is answered;
5. new sessions: ``--new-sessions`` sequential requests of 8 prompts, each from a new session (visitors who come
   once: the server must not keep each one's results), and the idle RSS before and after.

Latency is the client's wall time from submit to answer. A request fails when it raises (queue full, timeout,
connection) or its status line is an error. The server's resident memory (psutil RSS) is sampled every 0.2 s;
growth is the highest RSS in the last quarter of phase 4 minus the highest in its first quarter (both under the same
load, so buffers in flight count alike; the idle RSS after phases 3 and 4 is printed too). Bounded: at most 32
clients × 500 requests, every request times out after ``--request-timeout`` s and no request is started after
``--time-limit`` s (requests not sent count as errors). Loopback only. The clients run on the same machine and take
CPU from the server; other processes do too, so the load average is printed before and after.
The last line reads ``requests: <n> errors: <n> p95_over_single: <ratio> memory_growth_mb: <mb>
new_sessions: <n> new_session_growth_mb: <mb>``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.clients import IMAGE_SIDE, Client, MemoryMonitor, Outcome, Request, wall_photos
from drywall_qa.app.prompts import KNOWN_PROMPTS
from drywall_qa.core.backends import BUNDLED_DIR
from drywall_qa.testing.app_server import AppServer, serve_app

#: typed (free-text) prompts mixed with the registered ones
TYPED_PROMPTS = ("segment hole in the wall", "segment screw head", "segment water stain")
MAX_CLIENTS, MAX_REQUESTS = 32, 500


def request_plan(images: list[str], count: int, rng: random.Random) -> list[Request]:
    """``count`` requests with 1–3 prompts: registered ones ticked, sometimes one free-text prompt typed."""
    plan = []
    for _ in range(count):
        n = rng.randint(1, 3)
        typed = rng.choice(TYPED_PROMPTS) if rng.random() < 0.3 else ""
        plan.append(Request(rng.choice(images), rng.sample(KNOWN_PROMPTS, n - bool(typed)), typed))
    return plan


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
    parser.add_argument("--new-sessions", type=bounded(0, MAX_REQUESTS), default=200,
                        help="requests of 8 prompts, each from a new session, after the load (default 200)")
    parser.add_argument("--request-timeout", type=float, default=120.0, help="seconds per request (default 120)")
    parser.add_argument("--time-limit", type=float, default=600.0,
                        help="no request is started after this many seconds (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def resolve_model(model: str, scratch: Path) -> str:
    if model == "tiny":
        from drywall_qa.testing.tiny_lite import make_tiny_lite

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
    new_sessions: list[Outcome]


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
    every_prompt = [Request(rng.choice(images), list(KNOWN_PROMPTS), ", ".join(TYPED_PROMPTS))
                    for _ in range(args.new_sessions)]
    rss["before_new_sessions"] = memory.settled()
    visitors = single.run(every_prompt, deadline, new_sessions=True)
    rss["after_new_sessions"] = memory.settled()
    return Results(baseline, outcomes, after, args.clients * args.requests, end - start, cpu_used, client_used, rss,
                   quarters, visitors)


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
    growth = r.rss["after_new_sessions"] - r.rss["before_new_sessions"]
    print(f"new sessions: {len(r.new_sessions)} requests of 8 prompts, each from a new session, "
          f"{sum(o.error is not None for o in r.new_sessions)} failed; idle RSS {r.rss['before_new_sessions']:.0f} "
          f"-> {r.rss['after_new_sessions']:.0f} MiB")
    print(f"requests: {len(r.load)} errors: {len(errors) + r.planned - len(r.load)} "
          f"p95_over_single: {p95 / single_s:.2f} memory_growth_mb: {r.rss_quarters[-1] - r.rss_quarters[0]:.1f} "
          f"new_sessions: {len(r.new_sessions)} new_session_growth_mb: {growth:.1f}")


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
