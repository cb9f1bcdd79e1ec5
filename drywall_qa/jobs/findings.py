"""Measurements of a predicted mask: its instances (connected components) with area, bounding box, orientation and
score, and for thin ones (cracks, joints) their length along the skeleton, width and width band.

* **Instances** are 8-connected components of at least ``min_area`` pixels; pieces of one crack are linked into one
  instance (:mod:`drywall_qa.jobs.linking`), and an instance spanning less than ``SPECK_FRACTION`` of the photo's
  longer side is a speck: dropped and counted. Both bounds follow the photo's resolution, so the same wall photographed
  at more pixels gives the same instances.
* **Length**: the instance is thinned to a one-pixel skeleton; short spurs that thinning grows at the corners of a
  wide stroke are pruned, each branch is measured as a polyline through every ``SMOOTHING``-th skeleton pixel (a
  pixel-step count would over-measure slanted lines by up to 8 %), and the distance transform at each free end is
  added back, since thinning stops half a width short of the stroke's end. The gaps between linked pieces count.
* **Width**: mean width is the area over the length (the mean of the local widths along the stroke); max width is
  twice the largest distance-transform value on the skeleton, less the centre pixel.
* **Thin** instances are at least ``THIN_ELONGATION`` times longer than wide; only they get a length, widths and a
  width band, since a blob's skeleton says nothing about it.
* **Units**: pixels, or millimetres with a ``mm_per_pixel`` scale (areas in mm²). Bounding boxes stay in pixels
  (``[x, y, width, height]``, COCO's order), as they locate the instance in the photo.
* **Orientation**: the major axis's angle in degrees from the photo's horizontal, counter-clockwise as seen, in
  ``[0, 180)``: 0 horizontal, 90 vertical, 45 rising to the right.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import ndimage
from skimage.measure import regionprops
from skimage.morphology import skeletonize

from drywall_qa.jobs.linking import Bridge, draw_bridges, link_fragments

#: a thin instance is at least this many times longer than its mean width
THIN_ELONGATION = 3.0
#: skeleton pixels between the points of the polyline a branch is measured along
SMOOTHING = 5
#: default smallest instance, in pixels
DEFAULT_MIN_AREA = 64
#: an instance whose bounding box's longer side is below this fraction of the photo's longer side is a speck
SPECK_FRACTION = 0.01
#: upper limits of the hairline, fine and medium bands in millimetres (wider is wide): BRE Digest 251's crack
#: categories 0 (< 0.1 mm), 1 (to 1 mm), 2 (to 5 mm) and 3 and above
MM_BANDS = (0.1, 1.0, 5.0)
#: the same in pixels, used without a scale: a 4032 px photo of a 2.5 m wall has about 0.6 mm per pixel
PX_BANDS = (2.0, 4.0, 10.0)
BAND_NAMES = ("hairline", "fine", "medium", "wide")
#: strokes up to twice this wide (pixels) are thinned at full resolution
COARSE_HALF_WIDTH = 12
#: the distance transform at a free end, less this, is what thinning took off that end
END_OFFSET = 0.5
_EIGHT = np.ones((3, 3), bool)


#: largest scale a job may measure with: a pixel a metre wide (larger ones overflow the measurements)
MAX_MM_PER_PIXEL = 1000.0


@dataclass(frozen=True)
class MeasureSettings:
    """How masks are measured: ``min_area`` in pixels; ``mm_per_pixel`` None measures in pixels; ``bands``: the
    upper limits of the hairline, fine and medium bands in the measurement's unit (None: :data:`MM_BANDS` or
    :data:`PX_BANDS`); ``link``: join the pieces of one crack (:mod:`drywall_qa.jobs.linking`) and drop specks."""

    min_area: int = DEFAULT_MIN_AREA
    mm_per_pixel: float | None = None
    bands: tuple[float, float, float] | None = None
    link: bool = True

    def __post_init__(self) -> None:
        if self.min_area < 1:
            raise ValueError(f"min_area must be at least 1, got {self.min_area}")
        if self.mm_per_pixel is not None and not 0 < self.mm_per_pixel <= MAX_MM_PER_PIXEL:
            raise ValueError(f"mm_per_pixel must be above 0 and at most {MAX_MM_PER_PIXEL:g}, got {self.mm_per_pixel}")
        if self.bands is not None and (len(self.bands) != 3 or list(self.bands) != sorted(set(self.bands))
                                       or self.bands[0] <= 0):
            raise ValueError(f"bands must be 3 increasing limits above 0, got {self.bands}")

    @property
    def unit(self) -> str:
        return "px" if self.mm_per_pixel is None else "mm"

    @property
    def band_limits(self) -> tuple[float, float, float]:
        return self.bands or (PX_BANDS if self.mm_per_pixel is None else MM_BANDS)

    def band(self, width: float) -> str:
        """The width band of a ``width`` in the measurement's unit."""
        return BAND_NAMES[sum(width >= limit for limit in self.band_limits)]

    def to_dict(self) -> dict:
        return {**asdict(self), "unit": self.unit, "bands": list(self.band_limits)}


@dataclass(frozen=True)
class Finding:
    """One instance. ``area``, ``length`` and widths are in the settings' unit (area squared); ``bbox`` is
    ``[x, y, width, height]`` in pixels; ``length``, the widths and ``band`` are None unless the instance is thin."""

    instance: int
    area: float
    bbox: tuple[int, int, int, int]
    orientation: float
    score: float
    length: float | None = None
    mean_width: float | None = None
    max_width: float | None = None
    band: str | None = None

    @property
    def thin(self) -> bool:
        return self.length is not None

    def to_dict(self) -> dict:
        return {**asdict(self), "bbox": list(self.bbox)}


@dataclass(frozen=True)
class Instances:
    """The instances of one mask: ``labels`` numbers them ``1..count`` (0 elsewhere; the pieces of a linked crack
    share a number), ``bridges`` the links between each one's pieces, ``specks`` how many were dropped as specks."""

    labels: np.ndarray
    count: int
    bridges: dict[int, list[Bridge]]
    specks: int = 0


def label_instances(mask: np.ndarray, min_area: int) -> tuple[np.ndarray, int]:
    """``(labels, count)``: 8-connected components of ``mask`` with at least ``min_area`` pixels, numbered from 1
    in scan order; 0 elsewhere."""
    labels, count = ndimage.label(mask, structure=_EIGHT)
    labels, count, _ = _keep(labels, count, np.bincount(labels.ravel()) >= min_area)
    return labels, count


def find_instances(mask: np.ndarray, settings: MeasureSettings = MeasureSettings()) -> Instances:
    """The instances of ``mask``: components of at least ``min_area`` pixels, linked and rid of specks when the
    settings say ``link``."""
    labels, count = label_instances(mask, settings.min_area)
    if not settings.link:
        return Instances(labels, count, {})
    labels, count, bridges = link_fragments(labels, count)
    shortest = SPECK_FRACTION * max(mask.shape)
    spans = np.zeros(count + 1)
    for label, where in enumerate(ndimage.find_objects(labels, max_label=count), start=1):
        spans[label] = max(s.stop - s.start for s in where) if where is not None else 0
    kept, kept_count, renumber = _keep(labels, count, spans >= shortest)
    return Instances(kept, kept_count, {int(renumber[label]): links for label, links in bridges.items()
                                        if renumber[label]}, count - kept_count)


def _keep(labels: np.ndarray, count: int, keep: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """``(labels, count, renumber)``: ``labels`` with only the labels where ``keep`` (indexed by label) holds,
    renumbered from 1 in order; ``renumber`` maps old labels to new (0: dropped)."""
    keep = keep.copy()
    keep[0] = False
    renumber = (np.cumsum(keep) * keep).astype(labels.dtype)
    return renumber[labels], int(keep.sum()), renumber


def measure(mask: np.ndarray, probabilities: np.ndarray, settings: MeasureSettings = MeasureSettings(),
            instances: Instances | None = None) -> list[Finding]:
    """The findings of one prompt's ``mask`` (``H×W`` bool) with ``probabilities`` (``H×W``) as scores, one per
    instance of :func:`find_instances` (``instances`` when already found)."""
    instances = instances or find_instances(mask, settings)
    scale = settings.mm_per_pixel or 1.0
    findings = []
    for props in regionprops(instances.labels):
        rows, cols = props.slice
        score = float(np.asarray(probabilities[rows, cols], np.float32)[props.image].mean())
        top, left, bottom, right = props.bbox
        finding = Finding(props.label, float(props.area) * scale ** 2, (left, top, right - left, bottom - top),
                          _orientation(props.orientation), score)
        linked = draw_bridges(props.image, instances.bridges.get(props.label, []), (top, left))
        length, _, max_width = stroke(linked)
        mean_width = float(props.area) / length
        if length >= THIN_ELONGATION * mean_width:
            finding = replace(finding, length=length * scale, mean_width=mean_width * scale,
                              max_width=max_width * scale, band=settings.band(mean_width * scale))
        findings.append(finding)
    return findings


def _orientation(skimage_radians: float) -> float:
    """scikit-image's orientation (the major axis's angle from the row axis, whose rows run down) → degrees from
    the horizontal, counter-clockwise on screen, in ``[0, 180)``."""
    return round(math.degrees(math.atan2(-math.cos(skimage_radians), math.sin(skimage_radians))) % 180.0, 6) % 180.0


def stroke(shape: np.ndarray) -> tuple[float, float, float]:
    """``(length, mean width, max width)`` in pixels of one connected ``shape`` (bool) read as a stroke. A stroke
    more than ``2 × COARSE_HALF_WIDTH`` pixels wide is thinned at a coarser scale (thinning time grows with the
    width), where it is at most that wide."""
    padded = np.pad(shape, 1)
    distance = ndimage.distance_transform_edt(padded)
    factor = int(distance.max() // COARSE_HALF_WIDTH)
    if factor > 1:
        length = stroke(_shrink(shape, factor))[0] * factor
    else:
        length = _skeleton_length(skeletonize(padded), distance)
    length = max(length, 1.0)
    mean_width = float(shape.sum()) / length
    return float(length), mean_width, max(mean_width, 2 * float(distance.max()) - 1)


def _shrink(shape: np.ndarray, factor: int) -> np.ndarray:
    """``shape`` downscaled by ``factor``: a pixel is set when at least half its block is."""
    height, width = -(-shape.shape[0] // factor) * factor, -(-shape.shape[1] // factor) * factor
    padded = np.pad(shape, ((0, height - shape.shape[0]), (0, width - shape.shape[1])))
    return padded.reshape(height // factor, factor, width // factor, factor).mean(axis=(1, 3)) >= 0.5


def _skeleton_length(skeleton: np.ndarray, distance: np.ndarray) -> float:
    """Length of a one-pixel skeleton: its branches less the spurs, plus the distance transform at its ends (free
    ends, and junctions that only one kept branch reaches)."""
    degree = ndimage.convolve(skeleton.astype(np.uint8), _EIGHT.astype(np.uint8), mode="constant") - 1
    junctions, _ = ndimage.label(skeleton & (degree >= 3), structure=_EIGHT)
    beside = ndimage.grey_dilation(junctions, footprint=_EIGHT)
    reached: dict[int, int] = {}
    total = 0.0
    for path in _branches(skeleton & (junctions == 0)):
        length = _polyline_length(path)
        ends = list(dict.fromkeys([tuple(path[0]), tuple(path[-1])]))
        attached = [end for end in ends if beside[end]]
        free = [end for end in ends if degree[end] <= 1]
        if len(ends) == 2 and len(free) == 1 and attached and length < 2 * distance[attached[0]]:
            continue  # a spur: from a junction to a free end, shorter than the stroke is wide there
        for end in attached:
            reached[beside[end]] = reached.get(beside[end], 0) + 1
        total += length + len(attached) + sum(distance[end] - END_OFFSET for end in free)
    for cluster, count in reached.items():
        if count == 1:
            total += float(distance[junctions == cluster].max()) - END_OFFSET
    return total


def _branches(branches: np.ndarray) -> list[np.ndarray]:
    """The 8-connected pieces of a skeleton without its junctions, each as pixels in walking order."""
    labels, _ = ndimage.label(branches, structure=_EIGHT)
    pixels = np.argwhere(labels)
    order = np.argsort(labels[tuple(pixels.T)], kind="stable")
    pixels = pixels[order]
    cuts = np.flatnonzero(np.diff(labels[tuple(pixels.T)])) + 1
    return [_ordered(piece) for piece in np.split(pixels, cuts)] if len(pixels) else []


def _ordered(pixels: np.ndarray) -> np.ndarray:
    """The pixels of a simple path in walking order from one end (any pixel when it is a loop)."""
    index = {tuple(p): i for i, p in enumerate(pixels)}
    neighbours = [[index[(r + dr, c + dc)] for dr in (-1, 0, 1) for dc in (-1, 0, 1)
                   if (dr or dc) and (r + dr, c + dc) in index] for r, c in pixels]
    start = next((i for i, n in enumerate(neighbours) if len(n) <= 1), 0)
    order, seen = [start], {start}
    while True:
        unseen = [n for n in neighbours[order[-1]] if n not in seen]
        if not unseen:
            break
        step = min(unseen, key=lambda n: np.abs(pixels[n] - pixels[order[-1]]).sum())  # 4-neighbours first
        order.append(step)
        seen.add(step)
    return pixels[order]


def _polyline_length(path: np.ndarray) -> float:
    """Length of the polyline through every ``SMOOTHING``-th point of ``path`` and its last point."""
    points = path[::SMOOTHING]
    if len(path) > 1 and (len(path) - 1) % SMOOTHING:
        points = np.vstack([points, path[-1:]])
    return float(np.hypot(*np.diff(points, axis=0).T).sum()) if len(points) > 1 else 0.0
