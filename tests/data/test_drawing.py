"""Drawn cracks: they mark in the truth exactly what they darken, stay inside small images, and repeat per seed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from drywall_qa.data.drawing import draw_crack


@pytest.mark.parametrize("size", [(640, 640), (96, 160)])
def test_crack_truth_is_what_was_drawn(size: tuple[int, int]) -> None:
    image = Image.new("RGB", size, (200, 200, 200))
    truth = np.zeros(size[::-1], bool)
    draw_crack(image, np.random.default_rng(3), steps=40, truth=truth)
    changed = (np.asarray(image) != 200).any(axis=2)
    assert changed.any() and np.array_equal(changed, truth)
    assert not truth[0].any() and not truth[-1].any()          # clipped 5 px inside the border
    assert truth.mean() < 0.2


def test_crack_is_reproducible_per_seed() -> None:
    drawn = []
    for seed in (1, 1, 2):
        image = Image.new("RGB", (128, 128), (200, 200, 200))
        draw_crack(image, np.random.default_rng(seed), steps=20)
        drawn.append(np.asarray(image))
    assert np.array_equal(drawn[0], drawn[1]) and not np.array_equal(drawn[0], drawn[2])
