"""Wide shots made from a split of 640 px dataset photos, to measure how a model does on the large photos users take.

Two kinds, one per kind of dataset:

* a **mosaic** lays ``n×n`` photos side by side: a wall photographed from further away, each structure a few
  pixels wide (crack photos are close-ups, so a wide shot holds several);
* a **zoom** enlarges one photo: the same wall at more pixels, each structure as large in the frame (taping photos
  are whole walls, so a 12 MP photo of one is a zoom).

Calibration chooses crack policies on both kinds (:func:`calibration_shots`). Both behave as splits (``len``,
``[i]`` → :class:`~drywall_qa.data.coco.Sample`), so evaluation and calibration run on
them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from drywall_qa.data.coco import DerivedSplit, Sample
from drywall_qa.evaluation import Split

MOSAIC, ZOOM = "mosaic", "zoom"
#: the wide shot each dataset's photos make (see the module docstring)
WIDE_SHOT = {"cracks": MOSAIC, "taping": ZOOM}


@dataclass
class MosaicSplit(DerivedSplit):
    """``n×n`` mosaics of consecutive photos of ``split`` (photos left over at the end are not used), each photo
    resized to the size of the mosaic's first."""

    split: Split
    n: int

    def __len__(self) -> int:
        return len(self.split) // (self.n * self.n)

    def members(self, i: int) -> list[int]:
        """Indices in ``split`` of mosaic ``i``'s photos, row by row."""
        if not 0 <= i < len(self):
            raise IndexError(i)
        first = i * self.n * self.n
        return list(range(first, first + self.n * self.n))

    def tile_boxes(self, i: int) -> list[tuple[int, int, int, int]]:
        """``(top, left, height, width)`` of each photo of mosaic ``i``, in :meth:`members` order."""
        height, width = self.split[self.members(i)[0]].mask.shape
        return [(r * height, c * width, height, width) for r in range(self.n) for c in range(self.n)]

    def __getitem__(self, i: int) -> Sample:
        first, *rest = (self.split[j] for j in self.members(i))
        size = first.mask.shape[::-1]
        samples = [first, *(ZoomSplit.resized(s, size) for s in rest)]
        rows = [samples[r * self.n:(r + 1) * self.n] for r in range(self.n)]
        image = np.concatenate([np.concatenate([s.image for s in row], axis=1) for row in rows], axis=0)
        mask = np.concatenate([np.concatenate([s.mask for s in row], axis=1) for row in rows], axis=0)
        names = "+".join(s.file_name for s in samples)
        return Sample(samples[0].image_id, f"mosaic{self.n}x{self.n}:{names}", image, mask)


@dataclass
class ZoomSplit(DerivedSplit):
    """Every photo of ``split`` resized to ``size = (width, height)`` (bicubic; masks nearest)."""

    split: Split
    size: tuple[int, int]

    def __getitem__(self, i: int) -> Sample:
        sample = self.resized(self.split[i], self.size)
        return Sample(sample.image_id, f"zoom{self.size[0]}x{self.size[1]}:{sample.file_name}", sample.image,
                      sample.mask)

    @staticmethod
    def resized(sample: Sample, size: tuple[int, int]) -> Sample:
        """``sample`` at ``size = (width, height)``: the photo bicubic, the mask nearest."""
        if sample.mask.shape[::-1] == tuple(size):
            return sample
        image = np.asarray(Image.fromarray(sample.image).resize(size, Image.Resampling.BICUBIC))
        mask = np.asarray(Image.fromarray(sample.mask).resize(size, Image.Resampling.NEAREST))
        return Sample(sample.image_id, sample.file_name, image, mask)


def calibration_shots(dataset: str, split: Split) -> dict[str, Split]:
    """The wide shots a scale policy is chosen on, by name: for cracks both kinds, 2×2 mosaics (structures smaller
    than in training) and zooms ×2 and ×4 (larger); for taping, zooms ×2."""
    height, width = split[0].mask.shape
    zooms = {f"zoom x{k}": ZoomSplit(split, (width * k, height * k)) for k in ((2, 4) if dataset == "cracks" else (2,))}
    return {"mosaic 2x2": MosaicSplit(split, 2), **zooms} if dataset == "cracks" else zooms


def wide_shots(dataset: str, split: Split, scale: int = 2) -> Split:
    """The wide shots of ``dataset``'s kind (:data:`WIDE_SHOT`) at ``scale`` times the photos' side."""
    if WIDE_SHOT[dataset] == MOSAIC:
        return MosaicSplit(split, scale)
    height, width = split[0].mask.shape
    return ZoomSplit(split, (width * scale, height * scale))
