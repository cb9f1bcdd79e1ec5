"""A new client's small Inspect beside heavy work: how long it waits, and the server's peak memory meanwhile.

Run from the repository root: ``python -m bench.fairness [--model DIR|tiny] [--cases photo,job,evaluation]``.

Starts ``python app.py`` on a free 127.0.0.1 port, measures a 640 px Inspect of 2 prompts from a new client on the
idle server (the median of ``--alone`` requests), then for each case starts the heavy work from another client,
waits ``--settle`` seconds so it is under way, and sends the same small Inspect from a new client ``--probes``
times, one after another with a second between them, while the heavy work lasts; the slowest answer is the case's
figure (a heavy job holds the model only part of the time, so one probe may slip through a gap):

- ``photo``: one 8640×5760 (50 MP) JPEG with 8 prompts (the registered ones plus typed ones), tiling on, through
  ``/segment``;
- ``job``: a Jobs run (``/run_job``) of ``--job-photos`` 4000×3000 photos with 8 prompts, tiling on;
- ``evaluation``: ``/evaluate`` of a generated split of 6 images of 3000×3000 px (its crack prompts tile).

The server's resident memory is sampled throughout each case (until the heavy work ends) and its peak printed.
The last line reads ``fairness: alone_s <s> photo_s <s> job_s <s> evaluation_s <s> peak_rss_mb <mb>``: the alone
median, each case's slowest probe and the highest peak (a case not run prints ``-``). Loopback only; every request
has a timeout, so the script stops by itself.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from bench.clients import Client, MemoryMonitor, Request, wall_photos
from bench.load import TYPED_PROMPTS, resolve_model
from drywall_qa.app.prompts import KNOWN_PROMPTS
from drywall_qa.testing.app_server import serve_app
from drywall_qa.testing.splits import make_split

CASES = ("photo", "job", "evaluation")
SMALL = Request("", ["segment crack", "segment taping area"], "")
EIGHT_TYPED = ", ".join([*TYPED_PROMPTS, "segment nail pop", "segment dent"][:8 - len(KNOWN_PROMPTS)])
TIMEOUT_S = 900.0


def tiled_photo(source: str, path: Path, width: int, height: int) -> str:
    """A ``width×height`` JPEG made by repeating the wall photo ``source`` (cheap to build, real JPEG size)."""
    tile = np.asarray(Image.open(source).convert("RGB"))
    reps = (-(-height // tile.shape[0]), -(-width // tile.shape[1]), 1)
    Image.fromarray(np.tile(tile, reps)[:height, :width]).save(path, quality=85)
    return str(path)


def heavy_photo(client: Client, folder: Path, wall: str) -> object:
    photo = tiled_photo(wall, folder / "wide.jpg", 8640, 5760)
    from gradio_client import handle_file
    return client.client.submit(image=handle_file(photo), selected=list(KNOWN_PROMPTS), typed=EIGHT_TYPED,
                                tiling="on", api_name="/segment")


def heavy_job(client: Client, folder: Path, wall: str, photos: int) -> object:
    from gradio_client import handle_file
    files = [handle_file(tiled_photo(wall, folder / f"job{i}.jpg", 4000, 3000)) for i in range(photos)]
    return client.client.submit(photos=files, selected=list(KNOWN_PROMPTS), typed=EIGHT_TYPED, tiling="on",
                                api_name="/run_job")


def heavy_evaluation(client: Client, split: Path) -> object:
    return client.client.submit(split=str(split), selected=list(KNOWN_PROMPTS), typed="", limit=6, panels=0,
                                api_name="/evaluate")


def small_inspect(url: str, wall: str) -> float:
    """Seconds a new client waits for a 640 px Inspect of 2 prompts; raises when it fails."""
    outcome = Client(url, TIMEOUT_S).send(Request(wall, SMALL.selected, SMALL.typed))
    if outcome.error:
        raise RuntimeError(outcome.error)
    return outcome.seconds


def run_case(url: str, pid: int, start_heavy: Callable[[Client], object], wall: str, settle_s: float,
             probes: int) -> tuple[list[float], float, float, str]:
    """``(small requests' seconds, peak RSS MiB, heavy work's seconds, its status)`` for one case."""
    memory, start = MemoryMonitor(pid), time.monotonic()
    heavy = start_heavy(Client(url, TIMEOUT_S))
    time.sleep(settle_s)
    small = [small_inspect(url, wall)]
    while len(small) < probes and not heavy.done():
        time.sleep(1.0)
        small.append(small_inspect(url, wall))
    result = heavy.result(timeout=TIMEOUT_S)
    status = str(result[0] if isinstance(result, (list, tuple)) else result)
    return small, memory.stop(), time.monotonic() - start, status


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lite", help="checkpoint folder, 'lite' (bundled, default) or 'tiny'")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--alone", type=int, default=5, help="small requests on the idle server (default 5)")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds between heavy and small (default 8)")
    parser.add_argument("--probes", type=int, default=5, help="small requests per case (default 5)")
    parser.add_argument("--job-photos", type=int, default=3, help="photos of the Jobs case (default 3)")
    parser.add_argument("--threads", default="1", help="the app's --threads (default 1)")
    args = parser.parse_args(argv)
    cases = [case for case in args.cases.split(",") if case]
    if unknown := set(cases) - set(CASES):
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    figures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="drywall-qa-fairness-") as scratch:
        scratch = Path(scratch)
        model = args.model if args.model == "lite" else resolve_model(args.model, scratch)
        root = scratch / "data"
        split = make_split(root / "walls" / "valid", n=6, size=3000)
        wall = wall_photos(scratch, count=1)[0]
        with serve_app(model, scratch / "server", roots=[root], extra_args=["--threads", args.threads]) as server:
            small_inspect(server.url, wall)                                       # first-call costs
            alone = statistics.median(small_inspect(server.url, wall) for _ in range(args.alone))
            figures["alone_s"] = f"{alone:.2f}"
            print(f"alone: a new client's 640 px Inspect of 2 prompts: {alone:.2f} s (median of {args.alone})")
            starts = {"photo": lambda c: heavy_photo(c, scratch, wall),
                      "job": lambda c: heavy_job(c, scratch, wall, args.job_photos),
                      "evaluation": lambda c: heavy_evaluation(c, split)}
            for case in cases:
                small, peak, heavy_s, status = run_case(server.url, server.process.pid, starts[case], wall,
                                                        args.settle, args.probes)
                figures[f"{case}_s"], figures["peak_rss_mb"] = f"{max(small):.2f}", \
                    f"{max(peak, float(figures.get('peak_rss_mb', 0))):.0f}"
                print(f"{case}: small Inspect answered in {', '.join(f'{s:.2f}' for s in small)} s (slowest "
                      f"{max(small) / alone:.1f}× alone); peak RSS {peak:.0f} MiB; heavy work {heavy_s:.0f} s: "
                      f"{status[:110]!r}", flush=True)
    print("fairness: " + " ".join(f"{key} {figures.get(key, '-')}" for key in
                                  ("alone_s", "photo_s", "job_s", "evaluation_s", "peak_rss_mb")))


if __name__ == "__main__":
    main()
