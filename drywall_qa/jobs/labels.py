"""Where each finding's number goes on an overlay: next to its box and never over another number.

Labels are placed one at a time, greedily: each tries spots around its box (above, below, left, right, at either
corner), then spots stepping further up and down from the box, and takes the first that lies inside the photo and
clear of every label placed before it (spots past the photo's edge are tried last, moved inside). Boxes may be
covered (the number sits next to its own box, the colour tells the prompt); other numbers never are, unless a crowd
is too dense for any free spot within :data:`MAX_STEPS` label heights, when the label keeps its first spot."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

#: ``(x, y, width, height)`` in pixels
Rect = tuple[int, int, int, int]
#: how many label heights a label may move away from its box, up and down, before it gives up
MAX_STEPS = 40


def place_labels(boxes: Sequence[Rect], sizes: Sequence[tuple[int, int]], bounds: tuple[int, int],
                 gap: int = 2) -> list[tuple[int, int]]:
    """The top-left corner of each label (``sizes[i]`` = its width and height) for the box ``boxes[i]``, inside
    ``bounds`` (the photo's width and height), ``gap`` pixels off the box, no two labels overlapping where room
    allows."""
    placed: list[Rect] = []
    corners = []
    for box, size in zip(boxes, sizes):
        raw = list(_spots(box, size, gap))
        spots = [spot for spot in raw if _inside(spot, size, bounds) == spot]
        spots += [_inside(spot, size, bounds) for spot in raw]      # moved into the photo: only when nothing fits
        free = next((spot for spot in spots if not any(_intersect((*spot, *size), other) for other in placed)),
                    spots[0])
        placed.append((*free, *size))
        corners.append(free)
    return corners


def _spots(box: Rect, size: tuple[int, int], gap: int) -> Iterator[tuple[int, int]]:
    """Candidate top-left corners, nearest the box first."""
    x, y, w, h = box
    width, height = size
    above, below = y - height - gap, y + h + gap
    yield from ((x, above), (x, below), (x + w - width, above), (x + w - width, below),
                (x - width - gap, y), (x + w + gap, y))
    for step in range(1, MAX_STEPS + 1):
        yield from ((x, above - step * height), (x, below + step * height),
                    (x - width - gap, y + step * height), (x + w + gap, y + step * height))


def _inside(spot: tuple[int, int], size: tuple[int, int], bounds: tuple[int, int]) -> tuple[int, int]:
    """``spot`` moved just enough for the label to lie inside the photo."""
    return (min(max(spot[0], 0), max(bounds[0] - size[0], 0)), min(max(spot[1], 0), max(bounds[1] - size[1], 0)))


def _intersect(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]
