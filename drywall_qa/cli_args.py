"""argparse value types shared by the command-line entry points."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def probability_arg(text: str) -> float:
    """A probability strictly between 0 and 1."""
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1 (exclusive)")
    return value


def count_arg(minimum: int) -> Callable[[str], int]:
    """An integer of at least ``minimum``."""
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} is below {minimum}")
        return value
    return parse


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--device`` and ``--threshold``, shared by the commands that run a Segmenter."""
    parser.add_argument("--model", help="checkpoint folder, alias (lite, clipseg) or hub id; default: bundled model")
    parser.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--threshold", type=probability_arg,
                        help="threshold for every prompt (default: the model's per-prompt thresholds, else 0.5)")
