"""Eager PyTorch against the inference engine (ONNX Runtime encoder and decoder), same run, same threads, bundled model.

Run from the repository root: ``python -m bench.engine [--repeats N] [--threads T] [--engine onnxruntime]``.

Rows: the image encoder on 4 windows × 384 px (the crack windows of a tiled photo) and 1 × 480 px (a whole view);
the decoder (prompt MLP, FiLM decoder, head) on those features with 2 prompts; ``Segmenter.predict`` on a 640 px
photo with 5 prompts (ms per image per prompt) and on a 4032×3024 photo (the demo wall enlarged) with 2 prompts
(crack, taping) and 4 (and two paraphrases), default scale policies; the time each added prompt costs; a new prompt
on the 12 MP photo whose features are already encoded (a ``FeatureCache``, as the app keeps). Then the largest
absolute probability difference and the share of identical mask pixels, engine against eager and reused features
against a fresh encoding. Both models load from the same checkpoint; runs alternate between them so load from other
processes hits both alike; medians are reported. The last line:
``engine: <name> speedup_12mp: <x> s_12mp_2prompts: <s> added_prompt_s: <s> reused_prompt_s: <s> max_prob_diff: <d>``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from bench.multiprompt import PROMPTS as PROMPTS_640
from bench.multiprompt import wall_image
from bench.wide_shot import DEMO_PHOTO, PHOTO_12MP
from drywall_qa.core.backends import repeat_features
from drywall_qa.core.backends.feature_cache import FeatureCache
from drywall_qa.core.engine import ENGINES, set_threads
from drywall_qa.core.segmenter import Segmenter

PROMPTS_12MP = ["segment crack", "segment taping area", "segment wall crack", "segment joint/tape"]


def paired(eager: Callable[[], object], engine: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall seconds of each, after a warm-up call of each; the calls alternate, so load from other processes
    hits both alike."""
    runs, times = (eager, engine), ([], [])
    for run in runs:
        run()
    for _ in range(repeats):
        for run, spent in zip(runs, times):
            start = time.perf_counter()
            run()
            spent.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def part_rows(eager: Segmenter, engine: Segmenter, repeats: int) -> list[tuple[str, float, float]]:
    """(row, eager ms, engine ms): the encoder at two inputs, and the decoder on each one's own features (eager:
    channels-last; engine: as its encoder graph returns them), 2 prompts."""
    rows, text = [], eager.backend.encode_prompts(PROMPTS_640[:2])
    for label, shape in (("4x384", (4, 3, 384, 384)), ("1x480", (1, 3, 480, 480))):
        pixels, prompts = torch.rand(shape) * 2 - 1, text.repeat(shape[0], 1)
        with torch.inference_mode():
            slow, fast = paired(lambda: eager.backend.encode_image(pixels),
                                lambda: engine.backend.encode_image(pixels), repeats)
            rows.append((f"encoder {label} (ms)", 1000 * slow, 1000 * fast))
            features = [repeat_features(s.backend.encode_image(pixels), len(text)) for s in (eager, engine)]
            slow, fast = paired(lambda: eager.backend.decode(features[0], prompts),
                                lambda: engine.backend.decode(features[1], prompts), repeats)
            rows.append((f"decoder {label} x {len(text)} prompts (ms)", 1000 * slow, 1000 * fast))
    return rows


def compare(a: list, b: list, diffs: list[float], agree: list[float]) -> None:
    """Record the largest probability difference and the mask agreement of two prediction lists."""
    for x, y in zip(a, b):
        diffs.append(float(np.abs(x.probabilities.astype(np.float32) - y.probabilities.astype(np.float32)).max()))
        agree.append(float((x.mask == y.mask).mean()))


def photo_rows(eager: Segmenter, engine: Segmenter, repeats: int) -> tuple[list, list[float], list[float]]:
    """(row, eager, engine) for the 640 px and 12 MP photos, with the differences of their predictions."""
    rows, diffs, agree = [], [], []
    wall = wall_image()
    slow, fast = paired(lambda: eager.predict(wall, PROMPTS_640), lambda: engine.predict(wall, PROMPTS_640), repeats)
    rows.append(("640 px, 5 prompts (ms/image/prompt)", 1000 * slow / len(PROMPTS_640), 1000 * fast / len(PROMPTS_640)))
    compare(eager.predict(wall, PROMPTS_640), engine.predict(wall, PROMPTS_640), diffs, agree)
    photo = np.asarray(Image.open(DEMO_PHOTO).convert("RGB").resize(PHOTO_12MP, Image.Resampling.BICUBIC))
    for count in (2, 4):
        prompts = PROMPTS_12MP[:count]
        rows.append((f"4032x3024, {count} prompts (s)",
                     *paired(lambda: eager.predict(photo, prompts), lambda: engine.predict(photo, prompts), repeats)))
        compare(eager.predict(photo, prompts), engine.predict(photo, prompts), diffs, agree)
    rows.append(("each added prompt (s)", *((rows[-1][i] - rows[-2][i]) / 2 for i in (1, 2))))
    rows.append(("new prompt, photo encoded (s)", *reused_prompt(eager, engine, photo, repeats, diffs, agree)))
    return rows, diffs, agree


def reused_prompt(eager: Segmenter, engine: Segmenter, photo: np.ndarray, repeats: int, diffs: list[float],
                  agree: list[float]) -> tuple[float, float]:
    """Seconds of one more prompt on the 12 MP photo once its 2-prompt run encoded it (a :class:`FeatureCache`
    without a budget: the app keeps one only within ``--state-mb``), and that its answer is a fresh encoding's."""
    caches = [FeatureCache() for _ in (eager, engine)]
    for segmenter, cache in zip((eager, engine), caches):
        segmenter.predict(photo, PROMPTS_12MP[:2], features=cache)
    added = PROMPTS_12MP[2]
    times = paired(lambda: eager.predict(photo, added, features=caches[0]),
                   lambda: engine.predict(photo, added, features=caches[1]), repeats)
    compare(engine.predict(photo, added, features=caches[1]), engine.predict(photo, added), diffs, agree)
    print(f"encoded 12 MP photo kept: {caches[1].nbytes() / 2**20:.0f} MiB of features")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions after a warm-up (default 3)")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads, both engines (default 0: "
                        "drywall_qa.core.engine.default_threads)")
    parser.add_argument("--engine", choices=ENGINES[2:], default="onnxruntime", help="the engine against eager")
    args = parser.parse_args()
    threads = set_threads(args.threads)
    eager, engine = Segmenter.load(engine="torch"), Segmenter.load(engine=args.engine)
    rows = part_rows(eager, engine, max(args.repeats, 10))
    more, diffs, agree = photo_rows(eager, engine, args.repeats)
    rows += more
    print(f"model: {engine.name}; threads: {threads}; engine: {engine.backend.engine}; medians of {args.repeats} "
          f"alternating runs (parts: {max(args.repeats, 10)})")
    print(f"| {'':<40} | {'eager':>9} | {'engine':>9} | {'speed-up':>8} |")
    print(f"|{'-' * 42}|{'-' * 10}:|{'-' * 10}:|{'-' * 9}:|")
    for label, slow, fast in rows:
        print(f"| {label:<40} | {slow:9.3f} | {fast:9.3f} | {slow / fast:7.2f}x |")
    print(f"max abs probability difference: {max(diffs):.2e}; identical mask pixels: {min(agree):.4%} (worst "
          f"prediction); peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (both models)")
    by_label = {label: (slow, fast) for label, slow, fast in rows}
    slow_2, fast_2 = by_label["4032x3024, 2 prompts (s)"]
    print(f"engine: {engine.backend.engine} speedup_12mp: {slow_2 / fast_2:.2f} s_12mp_2prompts: {fast_2:.2f} "
          f"added_prompt_s: {by_label['each added prompt (s)'][1]:.2f} "
          f"reused_prompt_s: {by_label['new prompt, photo encoded (s)'][1]:.2f} max_prob_diff: {max(diffs):.1e}")


if __name__ == "__main__":
    main()
