"""Drawn defects: dark random-walk cracks on an image, for the demo images and the robustness report's "crack"."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

CRACK_COLOUR, BRANCH_COLOUR = (58, 54, 50), (70, 66, 60)
#: the sizes the crack recipe was written for; other images scale its steps
REFERENCE_SIDE = 640


def draw_polyline(image: Image.Image, points: Sequence[tuple[float, float]], fill: tuple[int, int, int],
                  width: int, truth: np.ndarray | None = None) -> None:
    """Draw a polyline on the image and, when given, mark it in the boolean ``truth`` (image-sized)."""
    ImageDraw.Draw(image).line(list(points), fill=fill, width=width, joint="curve")
    if truth is not None:
        mark = Image.new("1", image.size, 0)
        ImageDraw.Draw(mark).line(list(points), fill=1, width=width, joint="curve")
        truth |= np.asarray(mark, bool)


def draw_crack(image: Image.Image, rng: np.random.Generator, steps: int, truth: np.ndarray | None = None) -> None:
    """A dark random-walk polyline, 1–3 px wide, with a short branch, starting in the middle of the image."""
    size = np.array(image.size, dtype=np.float64)
    scale = min(image.size) / REFERENCE_SIDE
    point = rng.uniform(size * 0.1875, size * 0.8125)
    heading = rng.uniform(0, 2 * np.pi)
    points = [tuple(point)]
    for _ in range(steps):
        heading += rng.normal(0, 0.35)
        point = np.clip(point + 9 * scale * np.array([np.cos(heading), np.sin(heading)]), 5, size - 5)
        points.append(tuple(point))
    for start in range(0, len(points) - 1, 4):
        draw_polyline(image, points[start:start + 5], CRACK_COLOUR, int(rng.integers(1, 4)), truth)
    fork = points[len(points) // 2]
    reach = 60 * scale
    end = (fork[0] + rng.uniform(-reach, reach), fork[1] + rng.uniform(-reach, reach))
    draw_polyline(image, [fork, end], BRANCH_COLOUR, 1, truth)
