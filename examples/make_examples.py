"""Synthesise the demo images in this folder (no dataset images): gypsum board with the joints between boards, as in
the taping data, and dark cracks on board or on a painted wall.

    python -m examples.make_examples        # rewrites examples/*.png, deterministic

``render(name)`` also gives where the joints and cracks were drawn, which ``tests/test_examples.py`` checks the
bundled model finds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from drywall_qa.data.drawing import draw_crack, draw_polyline

SIZE = 640
HERE = Path(__file__).resolve().parent
GREY_BOARD, GREEN_BOARD, PAINT = (176, 176, 172), (112, 186, 160), (226, 222, 214)


@dataclass(frozen=True)
class Spec:
    """One demo image: surface colour, joints (``"v"`` vertical, ``"h"`` horizontal) and crack length in steps."""

    seed: int
    surface: tuple[int, int, int]
    joints: str = ""
    crack_steps: int = 0


@dataclass
class Example:
    image: Image.Image
    #: where the board joints (thin lines) and cracks were drawn, boolean ``SIZE×SIZE``
    joints: np.ndarray
    cracks: np.ndarray


EXAMPLES = {
    "seam_and_crack": Spec(10, GREY_BOARD, joints="v", crack_steps=40),
    "hairline_crack": Spec(2, PAINT, crack_steps=55),
    "horizontal_seam": Spec(3, GREEN_BOARD, joints="h"),
    "plain_wall": Spec(4, GREY_BOARD),
}


def surface(rng: np.random.Generator, tint: tuple[int, int, int]) -> Image.Image:
    """Board or paint: smooth low-frequency shading, fine paper grain and sparse dark and light specks."""
    shade = Image.fromarray(rng.normal(0, 1, (8, 8)).astype(np.float32)).resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    noise = np.clip(128 + 40 * rng.normal(0, 1, (SIZE, SIZE)), 0, 255).astype(np.uint8)
    grain = np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(1.2)), np.float32) - 128
    specks = rng.choice([-45.0, 0.0, 35.0], (SIZE, SIZE), p=[0.002, 0.996, 0.002])
    light = 3 * np.asarray(shade) + 0.25 * grain + specks
    return Image.fromarray(np.clip(np.asarray(tint, np.float32) + light[..., None], 0, 255).astype(np.uint8))


def board_joint(image: Image.Image, truth: np.ndarray, rng: np.random.Generator, vertical: bool) -> None:
    """The butt joint between two boards: a thin dark straight line across the image, slightly off the axis, with
    the lit edge of the next board beside it."""
    start, end = rng.uniform(200, 440), rng.uniform(200, 440)
    colour = np.asarray(image, np.float32)[SIZE // 2, SIZE // 2]
    for offset, gain, width in ((3.0, 1.12, 1), (0.0, 0.7, 2)):
        a, b = start + offset, end + offset
        points = [(a, 0.0), (b, float(SIZE))] if vertical else [(0.0, a), (float(SIZE), b)]
        fill = tuple(int(min(255, gain * c)) for c in colour)
        draw_polyline(image, points, fill, width, truth)


def render(name: str) -> Example:
    """The demo image ``name`` (a key of ``EXAMPLES``) and where its joints and cracks are."""
    spec = EXAMPLES[name]
    rng = np.random.default_rng(spec.seed)
    example = Example(surface(rng, spec.surface), np.zeros((SIZE, SIZE), bool), np.zeros((SIZE, SIZE), bool))
    for direction in spec.joints:
        board_joint(example.image, example.joints, rng, vertical=direction == "v")
    if spec.crack_steps:
        draw_crack(example.image, rng, spec.crack_steps, example.cracks)
    return example


if __name__ == "__main__":
    for name in EXAMPLES:
        path = HERE / f"{name}.png"
        render(name).image.save(path, optimize=True)
        print(path)
