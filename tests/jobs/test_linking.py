"""Pieces of one crack linked into one finding, measured whole; separate cracks kept apart; the same wall at more
pixels gives the same instances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from drywall_qa.data.drawing import CRACK_COLOUR, draw_polyline
from drywall_qa.jobs.findings import MeasureSettings, find_instances, measure

SIDE = 720


def drawn(strokes: list[list[tuple[float, float]]], width: int, side: int = SIDE) -> np.ndarray:
    """Where crack polylines drawn on a plain wall photo lie."""
    truth = np.zeros((side, side), bool)
    photo = Image.new("RGB", (side, side), (220, 218, 210))
    for points in strokes:
        draw_polyline(photo, points, CRACK_COLOUR, width, truth)
    return truth


def broken(start: tuple[float, float], angle: float, pieces: int, piece: float, gap: float) -> list:
    """``pieces`` collinear segments of length ``piece`` separated by ``gap``, from ``start`` at ``angle`` degrees."""
    step = np.array([math.cos(math.radians(angle)), -math.sin(math.radians(angle))])
    origin = np.array(start, float)
    return [[tuple(origin + i * (piece + gap) * step), tuple(origin + (i * (piece + gap) + piece) * step)]
            for i in range(pieces)]


@pytest.mark.parametrize("angle", [0, 35, 90, 150])
def test_a_crack_broken_by_small_gaps_is_one_finding_measured_whole(angle: float) -> None:
    start = (SIDE / 2 - 250 * math.cos(math.radians(angle)), SIDE / 2 + 250 * math.sin(math.radians(angle)))
    truth = drawn(broken(start, angle, pieces=4, piece=110, gap=20), width=4)
    assert find_instances(truth, MeasureSettings(link=False)).count == 4
    finding, = measure(truth, truth.astype(np.float16))
    assert finding.length == pytest.approx(4 * 110 + 3 * 20, rel=0.05)
    assert finding.mean_width == pytest.approx(4, abs=1.0)       # the gaps are not part of the area


def test_a_bent_crack_broken_at_its_bends_is_one_finding() -> None:
    points = [(100, 600), (300, 500), (420, 330), (600, 250)]
    strokes = []
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        length = math.hypot(x1 - x0, y1 - y0)
        trim = 7 / length                                          # a 14 px gap at every bend
        strokes.append([(x0 + (x1 - x0) * trim, y0 + (y1 - y0) * trim), (x1 - (x1 - x0) * trim, y1 - (y1 - y0) * trim)])
    truth = drawn(strokes, width=3)
    finding, = measure(truth, truth.astype(np.float16))
    whole = sum(math.dist(a, b) for a, b in zip(points, points[1:]))
    assert finding.length == pytest.approx(whole, rel=0.06)


def test_parallel_cracks_side_by_side_stay_apart() -> None:
    truth = drawn([[(100, 300), (600, 300)], [(100, 330), (600, 330)], [(100, 600), (600, 600)]], width=4)
    findings = measure(truth, truth.astype(np.float16))
    assert len(findings) == 3
    assert all(f.length == pytest.approx(500, rel=0.05) for f in findings)


def test_pieces_far_apart_or_not_pointing_at_each_other_stay_apart() -> None:
    far = broken((60, 200), 0, pieces=2, piece=150, gap=200)             # a gap 50 widths long
    crossing = [[(200, 450), (400, 450)], [(420, 470), (420, 650)]]      # an end beside the other, at right angles
    truth = drawn(far + crossing, width=4)
    assert len(measure(truth, truth.astype(np.float16))) == 4


def test_specks_are_dropped_and_counted_relative_to_the_photo() -> None:
    truth = drawn([[(100, 100), (1600, 100)]], width=6, side=2000)
    truth[400:404, 300:304] = True                                       # 16 px: below min_area
    truth[500:512, 300:312] = True                                       # 144 px, but 12 px across: under 1 %
    instances = find_instances(truth, MeasureSettings(min_area=64))
    assert instances.count == 1 and instances.specks == 1
    assert find_instances(truth, MeasureSettings(min_area=64, link=False)).count == 2


def test_the_same_broken_crack_enlarged_gives_the_same_finding() -> None:
    small = drawn(broken((80, 500), 25, pieces=5, piece=90, gap=12), width=3)
    large = np.asarray(Image.fromarray(small).resize((5 * SIDE, 5 * SIDE), Image.Resampling.NEAREST))
    one, = measure(small, small.astype(np.float16), MeasureSettings(mm_per_pixel=1.0))
    five, = measure(large, large.astype(np.float16), MeasureSettings(mm_per_pixel=0.2))
    assert five.length == pytest.approx(one.length, rel=0.05)
    assert five.mean_width == pytest.approx(one.mean_width, rel=0.2)
