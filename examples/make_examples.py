"""Synthesise the demo images in this folder: drywall-like texture, a taped seam, a dark crack (no dataset images).

    python examples/make_examples.py        # rewrites examples/*.png, deterministic
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 640
HERE = Path(__file__).resolve().parent


def wall(rng: np.random.Generator, tint: tuple[int, int, int]) -> Image.Image:
    """Off-white wall: smooth low-frequency shading plus fine paper grain."""
    shade = Image.fromarray(rng.normal(0, 1, (8, 8)).astype(np.float32)).resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    noise = np.clip(128 + 40 * rng.normal(0, 1, (SIZE, SIZE)), 0, 255).astype(np.uint8)
    grain = np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(1.2)), np.float32) - 128
    light = 6 * np.asarray(shade) + 0.25 * grain
    return Image.fromarray(np.clip(np.asarray(tint, np.float32) + light[..., None], 0, 255).astype(np.uint8))


def taped_seam(image: Image.Image, rng: np.random.Generator, vertical: bool) -> None:
    """A feathered band of joint compound (slightly brighter, smoother) along a board edge."""
    centre, width = int(rng.integers(220, 420)), int(rng.integers(50, 80))
    band = Image.new("L", image.size, 0)
    box = (centre - width // 2, 0, centre + width // 2, SIZE) if vertical else (0, centre - width // 2, SIZE,
                                                                                  centre + width // 2)
    ImageDraw.Draw(band).rectangle(box, fill=255)
    mud = Image.new("RGB", image.size, (236, 234, 226)).filter(ImageFilter.GaussianBlur(2))
    image.paste(mud, mask=band.filter(ImageFilter.GaussianBlur(width / 5)))
    edge = ImageDraw.Draw(image)
    line = ((centre, 0), (centre, SIZE)) if vertical else ((0, centre), (SIZE, centre))
    edge.line(line, fill=(214, 211, 202), width=2)          # the paper tape's edge under the compound


def crack(image: Image.Image, rng: np.random.Generator, length: int) -> None:
    """A dark random-walk polyline, 1–3 px wide, with a short branch."""
    point = rng.uniform(120, 520, 2)
    heading = rng.uniform(0, 2 * np.pi)
    points = [tuple(point)]
    for _ in range(length):
        heading += rng.normal(0, 0.35)
        point = np.clip(point + 9 * np.array([np.cos(heading), np.sin(heading)]), 5, SIZE - 5)
        points.append(tuple(point))
    draw = ImageDraw.Draw(image)
    for start in range(0, len(points) - 1, 4):
        draw.line(points[start:start + 5], fill=(58, 54, 50), width=int(rng.integers(1, 4)), joint="curve")
    fork = points[len(points) // 2]
    draw.line([fork, (fork[0] + rng.uniform(-60, 60), fork[1] + rng.uniform(-60, 60))], fill=(70, 66, 60), width=1)


def make(name: str, seed: int, seam: bool | None, crack_length: int) -> Path:
    """``seam``: True vertical, False horizontal, None none; ``crack_length`` 0 draws no crack."""
    rng = np.random.default_rng(seed)
    image = wall(rng, (222, 219, 210))
    if seam is not None:
        taped_seam(image, rng, seam)
    if crack_length:
        crack(image, rng, crack_length)
    path = HERE / f"{name}.png"
    image.save(path, optimize=True)
    return path


EXAMPLES = {"seam_and_crack": (1, True, 40), "hairline_crack": (2, None, 55), "horizontal_seam": (3, False, 0),
            "plain_wall": (4, None, 0)}

if __name__ == "__main__":
    for name, args in EXAMPLES.items():
        print(make(name, *args))
