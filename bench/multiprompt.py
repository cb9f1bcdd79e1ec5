"""Multi-prompt inference: the stock per-prompt CLIPSeg pipeline against ``Segmenter.predict``.

Run from the repository root: ``python -m bench.multiprompt [--repeats N] [--threads T]``.

Model: the full-size CLIPSeg architecture of ``CIDAS/clipseg-rd64-refined`` (CLIPSegConfig defaults with a ViT-B/16
vision tower: patch 16, 12 layers, hidden 768, trained at 224 and run at 352 with interpolated position embeddings;
text tower 12 layers, hidden 512, vocabulary 49408; reduce_dim 64, extract layers (3, 6, 9), complex transposed
convolution) with random weights, because nothing may be downloaded here. Speed does not depend on the weights.
Tokenizer: CLIP's BPE vocabulary cannot be downloaded either, so the character-level byte-BPE tokenizer of
``drywall_qa/testing/tiny_clipseg.py`` is used; its ids are valid in the 49408-token embedding. It spells a prompt
with ~3× more tokens than CLIP's BPE, which makes the (already small) text-tower cost slightly larger for both
pipelines.

Naive: ``model(**processor(text=p, images=image))`` one prompt at a time, as the published examples do: the image
is preprocessed and the whole vision tower runs once per prompt. Segmenter: one partial vision pass per image,
prompt embeddings from its cache, all prompts decoded in one batch; its time also includes sigmoid + resizing every
probability map back to 640×640, which the naive loop does not do. Each repetition runs both pipelines back to back
(interleaved, so load from other processes hits both alike); the median is reported. The segmenter is also timed
with its prompt cache cleared before every call ("cold prompts").
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from transformers import CLIPSegConfig, CLIPSegForImageSegmentation

from drywall_qa.core.backends.clipseg import ClipSegBackend
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.testing.tiny_clipseg import make_processor, make_tokenizer, token_config

PROMPTS = ["segment crack", "segment wall crack", "segment taping area", "segment joint/tape", "segment drywall seam"]
IMAGE_SIDE = 640
INPUT_SIZE = 352


def full_size_backend() -> ClipSegBackend:
    """Random-weight CLIPSeg rd64-refined architecture with the tiny tokenizer."""
    torch.manual_seed(0)
    tokenizer = make_tokenizer()
    config = CLIPSegConfig(text_config={**token_config(tokenizer), "vocab_size": 49408},
                           vision_config={"patch_size": 16}, use_complex_transposed_convolution=True)
    return ClipSegBackend(CLIPSegForImageSegmentation(config), make_processor(tokenizer, INPUT_SIZE))


def wall_image() -> np.ndarray:
    """A grey textured wall with a dark diagonal crack."""
    rng = np.random.default_rng(0)
    image = rng.normal(200, 12, (IMAGE_SIDE, IMAGE_SIDE, 3))
    for t in np.linspace(0, 1, 4 * IMAGE_SIDE):
        y, x = int(100 + 400 * t), int(80 + 480 * t + 30 * np.sin(12 * t))
        image[y - 2:y + 2, x - 2:x + 2] = 70
    return image.clip(0, 255).astype(np.uint8)


def naive(backend: ClipSegBackend, image: np.ndarray) -> torch.Tensor:
    logits = []
    for prompt in PROMPTS:
        logits.append(backend.model(**backend.processor(text=prompt, images=image, return_tensors="pt")).logits)
    return torch.cat(logits)


def timed(function: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions after one warm-up (default 5)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch CPU threads (default: the cores this process may use)")
    args = parser.parse_args()
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be at least 1")
    torch.set_num_threads(args.threads)

    backend = full_size_backend()
    segmenter = Segmenter(backend)
    image = wall_image()
    times: dict[str, list[float]] = {"naive": [], "segmenter": [], "segmenter, cold prompts": []}
    with torch.inference_mode():
        for repeat in range(args.repeats + 1):
            naive_time, reference = timed(lambda: naive(backend, image))
            cached_time, predictions = timed(lambda: segmenter.predict(image, PROMPTS))
            segmenter.clear_prompt_cache()
            cold_time, _ = timed(lambda: segmenter.predict(image, PROMPTS))
            if repeat:  # the first round is the warm-up
                for key, seconds in zip(times, (naive_time, cached_time, cold_time)):
                    times[key].append(seconds)

    ours = torch.stack([p.logits for p in predictions])
    max_rel_diff = ((ours - reference).abs().max() / reference.abs().max()).item()
    differing = int(((ours > 0) != (reference > 0)).sum())
    per_prompt = {key: 1000 * statistics.median(values) / len(PROMPTS) for key, values in times.items()}
    print(f"device: cpu, {torch.get_num_threads()} threads; image {IMAGE_SIDE}x{IMAGE_SIDE}, {len(PROMPTS)} prompts, "
          f"median of {args.repeats} after 1 warm-up")
    for key, ms in per_prompt.items():
        print(f"{key:>24}: {ms:8.1f} ms per image per prompt")
    verdict = "identical" if differing == 0 else f"{differing} pixels differ"
    print(f"masks (logit > 0 at {INPUT_SIZE}x{INPUT_SIZE}): {verdict}")
    print(f"cold-prompt speedup: {per_prompt['naive'] / per_prompt['segmenter, cold prompts']:.2f}")
    print(f"speedup: {per_prompt['naive'] / per_prompt['segmenter']:.2f} max_rel_diff: {max_rel_diff:.2e}")


if __name__ == "__main__":
    main()
