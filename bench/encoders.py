"""The EfficientNet-Lite sizes drywall-qa-lite can use, against Lite0 at 384 px (the bundled model's): inference
time per image per prompt and training samples per second, same run, same threads.

Run from the repository root: ``python -m bench.encoders [--sizes 384 512] [--repeats 5] [--steps 3]``.

Every model is the bundled model's architecture with the named encoder and random weights (speed does not depend on
the weights). Inference goes through ``Segmenter.predict`` on one 640×640 image with 5 prompts (one image encoding,
the prompts decoded in one batch, prompt embeddings cached), with tiling off, so the photo is shown once at the
model's input size. Training is what ``drywall-qa train`` runs per step: forward, BCE + Dice, backward and an AdamW
step on a batch of 256 px crops, with the stem and first three blocks frozen; its samples per second set the sample
budgets of an equal-time comparison. Repetitions interleave the models so load from other processes hits all alike;
medians are reported, and ratios are to Lite0 at the first size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from bench.multiprompt import PROMPTS, wall_image
from drywall_qa.core.backends.lite import LiteBackend, LiteConfig, LiteModel
from drywall_qa.core.backends.lite.encoder import ARCHITECTURES
from drywall_qa.core.backends.lite.prompt_encoder import SentenceEncoder
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.training.losses import LOSSES


def predict_ms(segmenter: Segmenter, image: np.ndarray) -> float:
    start = time.perf_counter()
    segmenter.predict(image, PROMPTS, tiling="off")
    return (time.perf_counter() - start) * 1000 / len(PROMPTS)


def train_step_s(model: LiteModel, optimizer: torch.optim.Optimizer, batch: tuple[torch.Tensor, ...]) -> float:
    pixels, embeddings, targets = batch
    start = time.perf_counter()
    loss = LOSSES["bce+dice"](model(pixels, embeddings), targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[384, 512], help="model input sides (default 384 512)")
    parser.add_argument("--repeats", type=int, default=5, help="timed predictions per model after warm-up")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per encoder after one untimed")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    image = wall_image()
    text_encoder = None
    segmenters = {}
    for architecture in ARCHITECTURES:
        backend = LiteBackend(LiteModel(LiteConfig(encoder=architecture)).eval(), text_encoder)
        text_encoder = backend.text_encoder
        for size in args.sizes:
            segmenters[(architecture, size)] = segmenter = Segmenter(backend)
            backend.resize_input(size)
            predict_ms(segmenter, image)  # warm-up, fills the prompt cache
    times = {key: [] for key in segmenters}
    for _ in range(args.repeats):
        for (architecture, size), segmenter in segmenters.items():
            segmenter.backend.resize_input(size)
            times[(architecture, size)].append(predict_ms(segmenter, image))
    steps = train_steps(args, text_encoder)
    base_ms = statistics.median(times[(next(iter(ARCHITECTURES)), args.sizes[0])])
    base_rate = steps[next(iter(ARCHITECTURES))]
    print(f"threads: {args.threads}; image 640x640, tiling off; prompts: {len(PROMPTS)}; training batch "
          f"{args.batch_size} x 256 px")
    for architecture in ARCHITECTURES:
        parameters = sum(p.numel() for p in segmenters[(architecture, args.sizes[0])].backend.model.parameters())
        rate = steps[architecture]
        print(f"{architecture}: {parameters / 1e6:.2f} M parameters; training {rate:.1f} samples/s "
              f"({rate / base_rate:.2f}x Lite0)")
        for size in args.sizes:
            ms = statistics.median(times[(architecture, size)])
            print(f"  {size} px: {ms:6.1f} ms per image per prompt ({ms / base_ms:.2f}x Lite0 at {args.sizes[0]})")


def train_steps(args: argparse.Namespace, text_encoder: SentenceEncoder) -> dict[str, float]:
    """Training samples per second of every encoder (median over interleaved steps)."""
    generator = torch.Generator().manual_seed(0)
    pixels = torch.rand(args.batch_size, 3, 256, 256, generator=generator) * 2 - 1
    targets = (torch.rand(args.batch_size, 256, 256, generator=generator) > 0.9).float()
    embeddings = text_encoder(PROMPTS[:1] * args.batch_size)
    models = {a: LiteModel(LiteConfig(encoder=a)).train() for a in ARCHITECTURES}
    optimizers = {a: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
                  for a, m in models.items()}
    seconds = {a: [] for a in models}
    for step in range(args.steps + 1):
        for architecture, model in models.items():
            elapsed = train_step_s(model, optimizers[architecture], (pixels, embeddings, targets))
            if step:
                seconds[architecture].append(elapsed)
    return {a: args.batch_size / statistics.median(s) for a, s in seconds.items()}


if __name__ == "__main__":
    main()
