"""Inspection-job throughput: ``drywall-qa job`` over a folder of photos against the way a user
scripts it today, ``drywall-qa predict`` once per photo in a fresh process.

Run from the repository root: ``python -m bench.jobs [--photos N] [--model M] [--size WxH] [--memory]``.

``--memory`` checks that memory stays flat instead: the job alone on ``N`` photos and on ``N // 10``, peak RSS of
each and their ratio (last line ``job_peak_rss_mb: <n photos> <n // 10 photos> ratio: <r>``).

Photos: ``N`` (default 20) generated 4032×3024 JPEGs of gypsum board, each with a board joint and a drawn crack
(:mod:`drywall_qa.data.drawing`); prompts "segment crack" and "segment taping area"; the bundled model and its
per-prompt scale policies (tiling auto). Both ways run as child processes with the same threads, one after the
other, so their times include start-up (the job's once, the naive way's once per photo); the job also measures,
exports and writes the report, which the naive way does not. Peak RSS is the largest resident set of each way's
processes, sampled every 50 ms. Last line: ``job_photos_per_min: <x> naive_photos_per_min: <y>``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from drywall_qa.data.drawing import CRACK_COLOUR, draw_crack, draw_polyline

PROMPTS = ["segment crack", "segment taping area"]
WIDTH, HEIGHT = 4032, 3024
BOARD = (176, 176, 172)


def make_photos(folder: Path, count: int, size: tuple[int, int] = (WIDTH, HEIGHT)) -> list[Path]:
    """``count`` wall photos of ``size`` (12 MP by default): shaded, grainy board with a vertical joint and a
    crack."""
    width, height = size
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        shade = np.asarray(Image.fromarray(rng.normal(0, 6, (6, 8)).astype(np.float32)).resize(
            (width, height), Image.Resampling.BICUBIC))
        grain = rng.integers(-8, 9, (height, width), dtype=np.int16)
        light = (shade + grain)[..., None]
        image = Image.fromarray(np.clip(np.asarray(BOARD, np.float32) + light, 0, 255).astype(np.uint8))
        joint = rng.uniform(0.3, 0.7) * width
        draw_polyline(image, [(joint, 0), (joint + rng.uniform(-40, 40), height)], (120, 120, 118), 12)
        draw_crack(image, rng, steps=60)
        draw_polyline(image, [(0.2 * width, 0.8 * height), (0.45 * width, 0.6 * height)], CRACK_COLOUR, 6)
        paths.append(folder / f"wall_{index:03d}.jpg")
        image.save(paths[-1], quality=90)
    return paths


def run_measured(command: list[str]) -> tuple[float, int]:
    """Run ``command``; its wall time in seconds and its peak resident set in bytes."""
    start = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]

    def sample() -> None:
        while process.poll() is None:
            try:
                peak[0] = max(peak[0], process.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} … failed:\n{stderr.decode()[-2000:]}")
    return time.perf_counter() - start, peak[0]


def job_command(folder: Path, out: Path, model: list[str]) -> list[str]:
    return [sys.executable, "-m", "drywall_qa.cli.job", str(folder), "--prompts", *PROMPTS, "--out", str(out), *model]


def memory_check(count: int, size: tuple[int, int], model: list[str]) -> None:
    """Peak RSS of the job on ``count`` photos against ``count // 10`` of them (the first ones)."""
    peaks = []
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        photos = make_photos(Path(tmp), count, size)
        for number in (count, count // 10):
            folder = Path(tmp) / f"set{number}"
            folder.mkdir()
            for photo in photos[:number]:
                (folder / photo.name).hardlink_to(photo)
            seconds, peak = run_measured(job_command(folder, Path(tmp) / f"job{number}", model))
            peaks.append(peak / 2**20)
            print(f"job on {number} photos at {size[0]}x{size[1]}: {seconds:.1f} s, peak RSS {peaks[-1]:.0f} MiB")
    print(f"job_peak_rss_mb: {peaks[0]:.0f} {peaks[1]:.0f} ratio: {peaks[0] / peaks[1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=20, help="photos in the folder (default 20)")
    parser.add_argument("--model", help="model for both ways (default: the bundled model)")
    parser.add_argument("--size", default=f"{WIDTH}x{HEIGHT}", help=f"photo size WxH (default {WIDTH}x{HEIGHT})")
    parser.add_argument("--memory", action="store_true", help="check that the job's memory stays flat instead")
    args = parser.parse_args()
    if args.photos < 1 or (args.memory and args.photos < 10):
        parser.error("--photos must be at least 1 (10 with --memory)")
    size = tuple(int(v) for v in args.size.lower().split("x"))
    model = ["--model", args.model] if args.model else []
    if args.memory:
        return memory_check(args.photos, size, model)
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        photos = make_photos(folder, args.photos, size)
        job_seconds, job_rss = run_measured(job_command(folder, Path(tmp) / "job", model))
        naive_seconds, naive_rss = 0.0, 0
        for index, photo in enumerate(photos):
            seconds, rss = run_measured([sys.executable, "-m", "drywall_qa.cli.predict", str(photo), "--prompts",
                                         *PROMPTS, "--out", str(Path(tmp) / "naive" / str(index)), *model])
            naive_seconds, naive_rss = naive_seconds + seconds, max(naive_rss, rss)
    job_rate, naive_rate = 60 * args.photos / job_seconds, 60 * args.photos / naive_seconds
    print(f"photos: {args.photos} at {size[0]}x{size[1]}, prompts: {', '.join(PROMPTS)}, "
          f"cores: {len(psutil.Process().cpu_affinity())}")
    print(f"job:   {job_seconds:7.1f} s, peak RSS {job_rss / 2**20:6.0f} MiB (one process)")
    print(f"naive: {naive_seconds:7.1f} s, peak RSS {naive_rss / 2**20:6.0f} MiB (largest of {args.photos} processes)")
    print(f"job_photos_per_min: {job_rate:.2f} naive_photos_per_min: {naive_rate:.2f}")


if __name__ == "__main__":
    main()
