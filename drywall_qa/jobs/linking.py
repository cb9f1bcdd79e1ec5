"""Fragments of one crack joined into one instance, so a crack counts once and is measured whole.

A predicted crack often breaks into pieces where it thins out or where the photo is enlarged. Two pieces are linked
when an end of one points at an end of the other across a short gap:

* **Ends** are skeleton pixels with one neighbour; an end's direction runs from the mean of the skeleton pixels within
  ``REACH_WIDTHS`` widths of it to the end. A piece whose skeleton is too short to give a direction is *round*.
* **Gap**: at most ``GAP_WIDTHS`` times the wider piece's mean width, and never more than ``GAP_FRACTION`` of the
  photo's diagonal. Both bounds grow with the photo's resolution, so the same wall photographed at more pixels links
  the same pieces.
* **Aligned**: the gap's direction within ``MAX_TURN_DEG`` of each end's direction (a round piece only needs the other
  end to point at it; two round pieces never link). Each end links at most once, shortest gaps first, so parallel
  cracks side by side stay apart.

Linked pieces share one label; each link is a :class:`Bridge`, drawn as a line as wide as the pieces when the instance's
length is measured, so the length runs along the linked skeleton and includes the gaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.morphology import skeletonize

#: a gap may be at most this many times the wider piece's mean width
GAP_WIDTHS = 8.0
#: and at most this fraction of the photo's diagonal
GAP_FRACTION = 0.03
#: an end's direction is measured over the skeleton within this many widths of it (at least ``MIN_REACH`` px)
REACH_WIDTHS, MIN_REACH = 3.0, 4.0
#: how far the gap may turn from each end's direction
MAX_TURN_DEG = 35.0
#: a piece is thinned at a scale where it is at most about this many pixels wide (as in :mod:`drywall_qa.jobs.findings`)
THIN_HALF_WIDTH = 12
_EIGHT = np.ones((3, 3), bool)


@dataclass(frozen=True)
class Bridge:
    """A link across a gap: ``start`` and ``end`` as ``(row, col)`` photo pixels, ``width`` in pixels."""

    start: tuple[int, int]
    end: tuple[int, int]
    width: float

    @property
    def length(self) -> float:
        return math.dist(self.start, self.end)


@dataclass(frozen=True)
class _End:
    piece: int
    point: np.ndarray
    #: unit vector pointing out of the piece, None for a round piece
    direction: np.ndarray | None
    width: float


def link_fragments(labels: np.ndarray, count: int) -> tuple[np.ndarray, int, dict[int, list[Bridge]]]:
    """``(labels, count, bridges)``: the pieces ``1..count`` of ``labels`` relabelled so linked pieces share one
    label (numbered from 1 in the order of their first piece), and per new label the bridges that join its pieces."""
    if count < 2:
        return labels, count, {}
    ends = [end for piece, where in enumerate(ndimage.find_objects(labels, max_label=count), start=1)
            if where is not None for end in _piece_ends(labels[where] == piece, piece, where)]
    diagonal = math.hypot(*labels.shape)
    parent = list(range(count + 1))
    links: list[tuple[int, Bridge]] = []
    for a, b in _candidate_pairs(ends, GAP_FRACTION * diagonal):
        root_a, root_b = _root(parent, a.piece), _root(parent, b.piece)
        if root_a != root_b:
            parent[root_b] = root_a
            bridge = Bridge(tuple(int(v) for v in a.point), tuple(int(v) for v in b.point), max(a.width, b.width))
            links.append((a.piece, bridge))
    roots = [_root(parent, piece) for piece in range(count + 1)]
    renumber = np.zeros(count + 1, labels.dtype)
    new_label: dict[int, int] = {}
    for piece in range(1, count + 1):
        renumber[piece] = new_label.setdefault(roots[piece], len(new_label) + 1)
    bridges: dict[int, list[Bridge]] = {}
    for piece, bridge in links:
        bridges.setdefault(int(renumber[piece]), []).append(bridge)
    return renumber[labels], len(new_label), bridges


def draw_bridges(shape: np.ndarray, bridges: list[Bridge], origin: tuple[int, int]) -> np.ndarray:
    """``shape`` (bool, its top left at ``origin`` in the photo) with each bridge drawn in as a line of its width."""
    if not bridges:
        return shape
    canvas = Image.fromarray(shape.astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for bridge in bridges:
        (r0, c0), (r1, c1) = (np.subtract(point, origin) for point in (bridge.start, bridge.end))
        draw.line([(int(c0), int(r0)), (int(c1), int(r1))], fill=1, width=max(1, round(bridge.width)))
    return np.asarray(canvas, bool)


def _piece_ends(shape: np.ndarray, piece: int, where: tuple[slice, slice]) -> list[_End]:
    """The ends of one piece (``shape``: its bounding box) in photo pixels, with their directions and the piece's
    mean width. The piece is thinned at a coarser scale when it is wide."""
    distance = ndimage.distance_transform_edt(np.pad(shape, 1))
    factor = max(1, int(distance.max() // THIN_HALF_WIDTH))
    small = shape if factor == 1 else ndimage.zoom(shape.astype(np.float32), 1 / factor, order=1) >= 0.5
    skeleton = skeletonize(np.pad(small, 1))[1:-1, 1:-1]
    pixels = np.argwhere(skeleton)
    width = float(shape.sum()) / max(1.0, len(pixels) * factor)
    if len(pixels) == 0:
        return []
    origin = np.array([where[0].start, where[1].start], np.float64)
    degree = ndimage.convolve(skeleton.astype(np.uint8), _EIGHT.astype(np.uint8), mode="constant") - 1
    reach = max(MIN_REACH, REACH_WIDTHS * width) / factor
    round_piece = len(pixels) * factor < 2 * max(MIN_REACH, REACH_WIDTHS * width)
    if round_piece:
        centre = pixels.mean(axis=0) * factor + origin
        return [_End(piece, np.round(centre).astype(int), None, width)]
    ends = []
    for end in np.argwhere(skeleton & (degree <= 1)):
        near = pixels[np.hypot(*(pixels - end).T) <= reach]
        vector = end - near.mean(axis=0)
        norm = float(np.hypot(*vector))
        last = np.array([where[0].stop, where[1].stop]) - 1
        point = np.clip(np.round(end * factor + origin).astype(int), origin.astype(int), last)
        ends.append(_End(piece, point, vector / norm if norm > 0 else None, width))
    return ends


def _candidate_pairs(ends: list[_End], longest: float) -> list[tuple[_End, _End]]:
    """Pairs of ends of different pieces that may be linked, shortest gap first, each end in at most one pair."""
    if len(ends) < 2:
        return []
    tree = cKDTree(np.array([end.point for end in ends], np.float64))
    pairs = []
    for i, j in tree.query_pairs(longest):
        a, b = ends[i], ends[j]
        gap = (b.point - a.point).astype(np.float64)
        length = float(np.hypot(*gap))
        if a.piece != b.piece and length <= GAP_WIDTHS * max(a.width, b.width) and _aligned(a, b, gap, length):
            pairs.append((length, i, j))
    used: set[int] = set()
    chosen = []
    for _, i, j in sorted(pairs):
        if i not in used and j not in used:
            used.update((i, j))
            chosen.append((ends[i], ends[j]))
    return chosen


def _aligned(a: _End, b: _End, gap: np.ndarray, length: float) -> bool:
    """Whether the gap from ``a`` to ``b`` continues both ends' directions (a round piece's end has none)."""
    if a.direction is None and b.direction is None:
        return False
    if length == 0:
        return True
    limit = math.cos(math.radians(MAX_TURN_DEG))
    unit = gap / length
    return ((a.direction is None or float(a.direction @ unit) >= limit)
            and (b.direction is None or float(b.direction @ -unit) >= limit))


def _root(parent: list[int], piece: int) -> int:
    while parent[piece] != piece:
        parent[piece] = parent[parent[piece]]
        piece = parent[piece]
    return piece
