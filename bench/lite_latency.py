"""Latency of drywall-qa-lite against the CLIPSeg backend: one 640×640 image, 5 prompts, same run, same threads.

Run from the repository root: ``python -m bench.lite_latency [--repeats N] [--threads T]``.

Both go through ``Segmenter.predict`` (one image encoding, all prompts decoded in one batch, probabilities resized
back to 640×640). Lite: the bundled checkpoint (``drywall_qa/weights/drywall-qa-lite``), or the same architecture
with random weights when it is absent (speed does not depend on the weights). CLIPSeg: the full-size rd64-refined
architecture with random weights (see ``bench/multiprompt.py``). Prompt embeddings are cached after the warm-up, as
in the app where the same prompts are reused; the "cold" figure clears that cache before every call. Repetitions
interleave the models so load from other processes hits both alike; medians are reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from bench.multiprompt import PROMPTS, full_size_backend, wall_image
from drywall_qa.core.backends import BUNDLED_DIR, load_backend
from drywall_qa.core.backends.lite import LiteBackend, LiteConfig, LiteModel
from drywall_qa.core.segmenter import Segmenter


def lite_segmenter() -> tuple[Segmenter, str]:
    if (BUNDLED_DIR / "config.json").exists():
        return Segmenter(load_backend(BUNDLED_DIR)), "bundled checkpoint"
    torch.manual_seed(0)
    model = LiteModel(LiteConfig()).eval()  # the bundled model's architecture
    return Segmenter(LiteBackend(model)), "random weights (bundled checkpoint absent)"


def per_prompt_ms(segmenter: Segmenter, image, cold: bool = False) -> float:
    if cold:
        segmenter.clear_prompt_cache()
    start = time.perf_counter()
    segmenter.predict(image, PROMPTS)
    return (time.perf_counter() - start) * 1000 / len(PROMPTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed repetitions after warm-up (default 10)")
    parser.add_argument("--clipseg-repeats", type=int, default=3, help="CLIPSeg repetitions (slow on a CPU)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    image = wall_image()
    lite, origin = lite_segmenter()
    clipseg = Segmenter(full_size_backend())
    for segmenter in (lite, clipseg):
        per_prompt_ms(segmenter, image)  # warm-up, fills the prompt cache
    lite_ms, lite_cold, clip_ms = [], [], []
    for repeat in range(args.repeats):
        lite_ms.append(per_prompt_ms(lite, image))
        lite_cold.append(per_prompt_ms(lite, image, cold=True))
        if repeat < args.clipseg_repeats:
            clip_ms.append(per_prompt_ms(clipseg, image))
    lite_median, clip_median = statistics.median(lite_ms), statistics.median(clip_ms)
    print(f"threads: {args.threads}; image 640x640; prompts: {len(PROMPTS)}; lite: {origin}")
    print(f"lite (cached prompts): {lite_median:8.1f} ms per image per prompt")
    print(f"lite (cold prompts):   {statistics.median(lite_cold):8.1f} ms per image per prompt")
    print(f"clipseg:               {clip_median:8.1f} ms per image per prompt")
    print(f"lite is {clip_median / lite_median:.1f}x faster than CLIPSeg")
    print(f"lite_ms_per_image_prompt: {lite_median:.1f} clipseg_ms_per_image_prompt: {clip_median:.1f}")


if __name__ == "__main__":
    main()
