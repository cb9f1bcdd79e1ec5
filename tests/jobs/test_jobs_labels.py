"""Finding numbers on job overlays: placed next to their boxes, inside the photo, never over each other."""

from __future__ import annotations

import numpy as np

from drywall_qa.jobs.labels import place_labels


def overlapping_pairs(corners: list[tuple[int, int]], sizes: list[tuple[int, int]]) -> int:
    rects = [(x, y, x + w, y + h) for (x, y), (w, h) in zip(corners, sizes)]
    return sum(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
               for i, a in enumerate(rects) for b in rects[i + 1:])


def test_a_lone_label_sits_just_above_its_box() -> None:
    assert place_labels([(100, 80, 50, 30)], [(12, 10)], (400, 300), gap=2) == [(100, 68)]
    # at the top edge there is no room above: below the box instead, still inside the photo
    assert place_labels([(100, 0, 50, 30)], [(12, 10)], (400, 300), gap=2) == [(100, 32)]


def test_crowded_labels_never_overlap_and_stay_inside() -> None:
    rng = np.random.default_rng(0)
    corners, sides = rng.integers((180, 140), (220, 160), (30, 2)), rng.integers(5, 40, (30, 2))
    boxes = [(int(x), int(y), int(w), int(h)) for (x, y), (w, h) in zip(corners, sides)]
    boxes += [(200, 150, 20, 20)] * 10                       # ten findings with the very same box
    sizes = [(int(w), 14) for w in rng.integers(8, 30, len(boxes))]
    corners = place_labels(boxes, sizes, (640, 480))
    assert overlapping_pairs(corners, sizes) == 0
    assert all(0 <= x <= 640 - w and 0 <= y <= 480 - h for (x, y), (w, h) in zip(corners, sizes))
    naive = [(x, y - 16) for x, y, _, _ in boxes]             # every label at its box's corner, as before
    assert overlapping_pairs(naive, sizes) > 0
