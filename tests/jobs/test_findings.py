"""Findings measured on drawn cracks of known geometry: straight and bent strokes drawn with drywall_qa.data.drawing at
widths 2–20 px and many orientations; plus instances, units, bands and scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from drywall_qa.data.drawing import CRACK_COLOUR, draw_polyline
from drywall_qa.jobs.findings import BAND_NAMES, MeasureSettings, label_instances, measure

SIDE = 720
WIDTHS = (2, 3, 5, 8, 12, 20)
ANGLES = (0, 30, 45, 60, 90, 135, 160)
LENGTH = 420


def drawn(points: list[tuple[float, float]], width: int) -> np.ndarray:
    """Where a crack polyline drawn on a plain wall photo lies (the photo itself is discarded)."""
    truth = np.zeros((SIDE, SIDE), bool)
    draw_polyline(Image.new("RGB", (SIDE, SIDE), (220, 218, 210)), points, CRACK_COLOUR, width, truth)
    return truth


def straight(angle: float, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A crack through the centre at ``angle`` degrees (counter-clockwise on screen), and its unit direction."""
    direction = np.array([math.cos(math.radians(angle)), -math.sin(math.radians(angle))])
    centre = np.array([SIDE / 2, SIDE / 2])
    ends = [tuple(centre - LENGTH / 2 * direction), tuple(centre + LENGTH / 2 * direction)]
    return drawn(ends, width), direction


def drawn_width(truth: np.ndarray, direction: np.ndarray) -> float:
    """The stroke's width as drawn: its pixels in the middle half of the axis, per pixel of axis."""
    rows, cols = np.nonzero(truth)
    along = (cols + 0.5 - SIDE / 2) * direction[0] + (rows + 0.5 - SIDE / 2) * direction[1]
    middle = np.abs(along) < LENGTH / 4
    return middle.sum() / (LENGTH / 2)


def only(findings: list) -> object:
    assert len(findings) == 1
    return findings[0]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("angle", ANGLES)
def test_straight_crack_length_width_and_orientation(angle: int, width: int) -> None:
    truth, direction = straight(angle, width)
    finding = only(measure(truth, truth.astype(np.float16)))
    assert finding.length == pytest.approx(LENGTH, rel=0.05)
    assert finding.mean_width == pytest.approx(drawn_width(truth, direction), abs=1.0)
    assert finding.max_width >= finding.mean_width
    assert min(abs(finding.orientation - angle), 180 - abs(finding.orientation - angle)) < 2


@pytest.mark.parametrize("width", WIDTHS)
def test_bent_crack_length(width: int) -> None:
    points = [(100, 620), (300, 320), (480, 460), (650, 120)]
    truth = drawn(points, width)
    finding = only(measure(truth, truth.astype(np.float16)))
    assert finding.length == pytest.approx(sum(math.dist(a, b) for a, b in zip(points, points[1:])), rel=0.05)


def test_scale_turns_pixels_into_millimetres() -> None:
    truth, _ = straight(30, 6)
    pixels = only(measure(truth, truth.astype(np.float16)))
    mm = only(measure(truth, truth.astype(np.float16), MeasureSettings(mm_per_pixel=0.25)))
    assert mm.length == pytest.approx(pixels.length * 0.25)
    assert mm.mean_width == pytest.approx(pixels.mean_width * 0.25)
    assert mm.area == pytest.approx(pixels.area * 0.25 ** 2)
    assert mm.bbox == pixels.bbox
    assert MeasureSettings(mm_per_pixel=0.25).unit == "mm" and MeasureSettings().unit == "px"


@pytest.mark.parametrize("width, band", [(2, "hairline"), (5, "fine"), (9, "medium"), (16, "wide")])
def test_width_bands_follow_the_configured_limits(width: int, band: str) -> None:
    truth, _ = straight(0, width)
    settings = MeasureSettings(bands=(3.0, 7.0, 12.0))
    assert only(measure(truth, truth.astype(np.float16), settings)).band == band
    assert band in BAND_NAMES


def test_default_bands_in_mm_and_pixels() -> None:
    assert MeasureSettings(mm_per_pixel=0.5).band(0.05) == "hairline"
    assert MeasureSettings(mm_per_pixel=0.5).band(2.0) == "medium"
    assert MeasureSettings().band(12.0) == "wide"


def test_instances_above_min_area_with_box_and_score() -> None:
    mask = np.zeros((200, 300), bool)
    mask[20:60, 30:130] = True          # a blob: 4000 px
    mask[150, 10:200] = True            # a 1-px line: 190 px, thin
    mask[100:105, 250:255] = True       # a speck: 25 px
    probabilities = np.where(mask, 0.8, 0.1).astype(np.float16)
    probabilities[20:40, 30:130] = 0.6
    findings = measure(mask, probabilities, MeasureSettings(min_area=30))
    assert [f.instance for f in findings] == [1, 2]
    blob, line = findings
    assert blob.bbox == (30, 20, 100, 40) and blob.area == 4000
    assert blob.score == pytest.approx(0.7, abs=1e-3)
    assert not blob.thin and blob.length is None and blob.band is None
    assert line.thin and line.length == pytest.approx(190, rel=0.05) and line.orientation == 0
    assert label_instances(mask, 20)[1] == 3


def test_diagonal_pixels_join_one_instance() -> None:
    mask = np.eye(100, dtype=bool)
    finding = only(measure(mask, mask.astype(np.float16), MeasureSettings(min_area=10)))
    assert finding.length == pytest.approx(100 * math.sqrt(2), rel=0.05)
    assert finding.orientation == pytest.approx(135)


@pytest.mark.parametrize("kwargs", [{"min_area": 0}, {"mm_per_pixel": 0.0}, {"mm_per_pixel": math.inf},
                                    {"bands": (3.0, 2.0, 5.0)}, {"bands": (0.0, 1.0, 2.0)}])
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        MeasureSettings(**kwargs)
