"""Decoder fine-tuning throughput: the naive loop (full CLIPSeg forward every step) against the cached loop (frozen
CLIP activations from ``FeatureCache``).

Run from the repository root: ``python -m bench.train_throughput [--images 8] [--batch-size 4] [--steps 3]``.

Model: the full-size CLIPSeg architecture with random weights (``bench.multiprompt.full_size_backend``: ViT-B/16
vision tower run at 352 px, reduce_dim 64, extract layers 3/6/9, complex transposed convolution; nothing may be
downloaded here and speed does not depend on the weights). CLIP is frozen and the decoder trains with AdamW in both
loops; the loss is BCE + Dice against a generated crack mask.

Naive step: load the batch's 640×640 images, run the processor (image and text), the whole CLIPSeg forward, loss,
backward (through the decoder only) and the optimizer step. Cached step, as ``drywall-qa train`` does it: features of
the batch's images from the cache (computed once per image in a warm-up pass, reported separately), prompt
embeddings from the training loop's prompt cache, decoder forward, loss, backward, optimizer step. Both loops run
the same batches, interleaved (so load from other processes hits both alike), after one untimed step each; the
median step time is reported. Before any step, both compute the loss of the same batch with the same weights: the
cache stores float16, so they agree closely but not bit for bit (about 6e-6 relative here); the benchmark fails if
they differ by more than 1e-2.

On a machine shared with other jobs, pass ``--threads 1``: with more threads than free cores, the cached loop's small
kernels spend most of their time waiting for each other (measured on 2 busy cores: 2 threads gave 0.20 images/s
naive and 1.43 cached, 1 thread gave 0.79 and 16.2).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from bench.multiprompt import PROMPTS, full_size_backend
from drywall_qa.core.backends.clipseg import ClipSegBackend
from drywall_qa.core.imaging import load_image
from drywall_qa.training.feature_cache import FeatureCache
from drywall_qa.training.loop import PromptCache, TrainStep
from drywall_qa.training.losses import LOSSES

IMAGE_SIDE = 640
LOSS_TOLERANCE = 1e-2
Batch = tuple[list[str], list[str], torch.Tensor]  # image files, prompts, targets [B, S, S]


def write_images(directory: Path, count: int, size: int) -> list[tuple[str, torch.Tensor]]:
    """``count`` textured walls with a dark random-walk crack, as PNG files; returns (file, target at ``size``)."""
    rng = np.random.default_rng(0)
    written = []
    for index in range(count):
        image = rng.normal(200, 12, (IMAGE_SIDE, IMAGE_SIDE, 3))
        mask = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=bool)
        y, x = rng.uniform(100, 540, 2)
        for _ in range(3 * IMAGE_SIDE):
            y, x = np.clip([y + rng.normal(0.6, 1), x + rng.normal(0.3, 1)], 3, IMAGE_SIDE - 4)
            mask[int(y) - 2:int(y) + 2, int(x) - 2:int(x) + 2] = True
        image[mask] = 70
        path = directory / f"wall_{index}.png"
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(path)
        target = F.interpolate(torch.from_numpy(mask).float()[None, None], size=(size, size), mode="area")[0, 0]
        written.append((str(path), target))
    return written


def make_batches(images: list[tuple[str, torch.Tensor]], batch_size: int) -> list[Batch]:
    batches = []
    for start in range(0, len(images) - batch_size + 1, batch_size):
        chunk = images[start:start + batch_size]
        prompts = [PROMPTS[(start + i) % len(PROMPTS)] for i in range(batch_size)]
        batches.append(([f for f, _ in chunk], prompts, torch.stack([t for _, t in chunk])))
    return batches


def naive_loss(backend: ClipSegBackend, batch: Batch) -> torch.Tensor:
    files, prompts, targets = batch
    inputs = backend.processor(text=prompts, images=[load_image(f) for f in files], padding=True,
                               return_tensors="pt")
    return LOSSES["bce+dice"](backend.model(**inputs).logits, targets)


def cached_loss(step: TrainStep, cache: FeatureCache, prompt_cache: PromptCache, batch: Batch) -> torch.Tensor:
    files, prompts, targets = batch
    return LOSSES["bce+dice"](step(cache.batch(files), prompt_cache(prompts)), targets)


def timed_step(optimizer: torch.optim.Optimizer, loss: Callable[[], torch.Tensor]) -> float:
    start = time.perf_counter()
    loss().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8, help="generated 640×640 images (default 8)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per loop after one untimed (default 3)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch CPU threads (default: the cores this process may use)")
    args = parser.parse_args()
    if min(args.batch_size, args.steps, args.threads) < 1 or args.images < args.batch_size:
        parser.error("--batch-size, --steps and --threads must be at least 1, --images at least --batch-size")
    torch.set_num_threads(args.threads)

    backend = full_size_backend()
    step = TrainStep(backend).train()
    optimizer = torch.optim.AdamW(list(backend.trainable_parameters()), lr=1e-5)
    with tempfile.TemporaryDirectory() as scratch:
        batches = make_batches(write_images(Path(scratch), args.images, backend.input_size), args.batch_size)
        cache, prompt_cache = FeatureCache(backend, Path(scratch) / "cache"), PromptCache(backend)
        start = time.perf_counter()
        cache.batch([f for files, _, _ in batches for f in files])
        feature_seconds = (time.perf_counter() - start) / cache.computed

        naive = naive_loss(backend, batches[0]).item()
        cached = cached_loss(step, cache, prompt_cache, batches[0]).item()
        relative = abs(cached - naive) / abs(naive)
        times: dict[str, list[float]] = {"naive": [], "cached": []}
        for index in range(args.steps + 1):
            batch = batches[index % len(batches)]
            naive_time = timed_step(optimizer, lambda: naive_loss(backend, batch))
            cached_time = timed_step(optimizer, lambda: cached_loss(step, cache, prompt_cache, batch))
            if index:  # the first round is the warm-up
                times["naive"].append(naive_time)
                times["cached"].append(cached_time)

    rates = {key: args.batch_size / statistics.median(values) for key, values in times.items()}
    print(f"device: cpu, {torch.get_num_threads()} threads; full-size CLIPSeg (ViT-B/16, reduce_dim 64, random init); "
          f"{args.images} images {IMAGE_SIDE}x{IMAGE_SIDE}, batch {args.batch_size}, median of {args.steps} steps "
          "after 1 warm-up")
    print(f"feature pass (once per image, then cached): {feature_seconds:.2f} s per image")
    print(f"naive loop (full forward every step): {rates['naive']:8.3f} images/s")
    print(f"cached loop (FeatureCache):           {rates['cached']:8.3f} images/s")
    print(f"same batch, same weights: loss naive {naive:.6f}, cached {cached:.6f} (relative difference {relative:.1e})")
    if relative > LOSS_TOLERANCE:
        raise SystemExit(f"the cached loss differs from the naive one by {relative:.1e} (> {LOSS_TOLERANCE})")
    print(f"speedup: {rates['cached'] / rates['naive']:.1f}")


if __name__ == "__main__":
    main()
