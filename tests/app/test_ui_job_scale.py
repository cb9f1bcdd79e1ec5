"""The Jobs tab's scale from a drawn line: a straight stroke of known length gives mm per pixel of the photo."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from drywall_qa.app.jobs.scale import ScaleForm, scale_from_drawing, set_scale, stroke_length


def stroke(size: tuple[int, int], start: tuple[float, float], end: tuple[float, float], width: int) -> bytes:
    """An RGBA editor layer with one round-capped stroke, as PNG bytes."""
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    draw.line([start, end], fill=(255, 45, 45, 255), width=width)
    for x, y in (start, end):
        draw.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=(255, 45, 45, 255))
    out = io.BytesIO()
    layer.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def photo(tmp_path: Path) -> str:
    path = tmp_path / "wall.png"
    Image.new("RGB", (800, 600), (180, 180, 175)).save(path)
    return str(path)


@pytest.mark.parametrize("angle", [0, 30, 90, 135])
@pytest.mark.parametrize("width", [2, 6, 14])
def test_a_drawn_line_gives_the_scale_of_its_length(photo: str, angle: int, width: int) -> None:
    length = 400
    dx, dy = length * math.cos(math.radians(angle)), length * math.sin(math.radians(angle))
    start = (400 - dx / 2, 300 - dy / 2)
    layer = stroke((800, 600), start, (start[0] + dx, start[1] + dy), width)
    scale = scale_from_drawing(ScaleForm({"background": photo, "layers": [layer]}, 1200))
    assert scale == pytest.approx(1200 / length, rel=0.03)


def test_a_canvas_drawn_smaller_than_the_photo_is_scaled_to_it(photo: str) -> None:
    layer = stroke((400, 300), (50, 150), (250, 150), 4)           # the same 400 photo-pixel line, half size
    assert scale_from_drawing(ScaleForm({"background": photo, "layers": [layer]}, 100)) == pytest.approx(0.25, rel=0.03)


def test_stroke_length_of_a_dot_is_about_zero() -> None:
    mask = np.zeros((50, 50), bool)
    mask[20:26, 20:26] = True
    assert stroke_length(mask) < 2 and stroke_length(np.zeros((5, 5), bool)) == 0


@pytest.mark.parametrize("drawing, length, problem", [
    ({"background": None, "layers": []}, 100, "no photo"),
    ({"layers": []}, 100, "no photo"),
    ("photo-only", 100, "nothing is drawn"),
    ("short", 100, "px long"),
    ("line", 0, "not a length"),
    ("line", float("nan"), "not a length"),
    ("line", None, "no length given"),
    ("two lines", 100, "not one straight line"),
    ("corner", 100, "not one straight line"),
])
def test_what_cannot_give_a_scale_says_why_and_keeps_the_box(photo: str, drawing, length, problem: str) -> None:
    layers = {"photo-only": [], "short": [stroke((800, 600), (10, 10), (18, 10), 2)],
              "line": [stroke((800, 600), (10, 10), (300, 10), 2)],
              "two lines": [stroke((800, 600), (10, 10), (300, 10), 4), stroke((800, 600), (10, 400), (300, 400), 4)],
              "corner": [stroke((800, 600), (10, 10), (300, 10), 4), stroke((800, 600), (300, 10), (300, 300), 4)]}
    if isinstance(drawing, str):
        drawing = {"background": photo, "layers": layers[drawing]}
    value, note = set_scale(ScaleForm(drawing, length))
    assert problem in note and note.startswith("**Error:**")
    assert not isinstance(value, float)          # gr.skip(): the mm-per-pixel box keeps its value


def test_the_note_gives_the_measured_pixels(photo: str) -> None:
    value, note = set_scale(ScaleForm({"background": photo, "layers": [stroke((800, 600), (100, 100), (500, 100), 4)]},
                                      1000))
    assert value == pytest.approx(2.5, rel=0.03) and "mm per pixel" in note and "1000 mm" in note
