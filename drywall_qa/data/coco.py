"""Datasets: the prompt registry and COCO splits (Roboflow layout) loaded as images + binary masks."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from drywall_qa.core import imaging
from drywall_qa.core.errors import InputError
from drywall_qa.data.checks import (
    ANNOTATION_FILE,  # noqa: F401 — part of this module's interface
    COCO_HINT,
    add_outline,
    box_polygon,
    check_bounds,
    check_images,
    check_rle,
    check_unique_ids,
    int_field,
    locate,
    numbers,
    polygon_area,
    read_json,
    records,
    to_rle,
)


@dataclass(frozen=True)
class DatasetSpec:
    """A known dataset: its folder under a data root and the prompts that describe its masks."""

    name: str
    folder: str
    prompts: tuple[str, ...]

    @property
    def canonical(self) -> str:
        """The prompt used for training targets and reports."""
        return self.prompts[0]


DATASETS: dict[str, DatasetSpec] = {
    "taping": DatasetSpec(
        "taping", "drywall-join-detect", ("segment taping area", "segment joint/tape", "segment drywall seam")
    ),
    "cracks": DatasetSpec("cracks", "cracks", ("segment crack", "segment wall crack")),
}


def get_dataset(name: str) -> DatasetSpec:
    """The registered dataset called ``name``; :class:`InputError` listing the known names otherwise."""
    if name not in DATASETS:
        raise InputError(f"dataset {name!r}", "unknown dataset", f"use one of: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def data_roots() -> list[Path]:
    """Existing data directories: each entry of ``$DRYWALL_QA_DATA`` (os.pathsep-separated), ./data, ../shared/data."""
    entries = [p for p in os.environ.get("DRYWALL_QA_DATA", "").split(os.pathsep) if p]
    candidates = [Path(p) for p in entries] + [Path("data"), Path("..") / "shared" / "data"]
    roots: list[Path] = []
    seen: set[Path] = set()
    for path in candidates:
        if path.is_dir() and path.resolve() not in seen:
            seen.add(path.resolve())
            roots.append(path)
    return roots


def data_root(given: Path | None) -> Path:
    """The data folder a command reads: ``given`` (``--data-root``), else the first of :func:`data_roots`."""
    roots = [given] if given is not None else data_roots()
    if not roots:
        raise InputError("--data-root", "no data folder found", "pass --data-root or set DRYWALL_QA_DATA")
    return roots[0]


def split_dir(root: Path, dataset: str, split: str) -> Path:
    """``root / <dataset folder> / split``, e.g. ``data/cracks/valid``."""
    return Path(root) / get_dataset(dataset).folder / split


@dataclass(frozen=True)
class Sample:
    """One image of a split with its ground-truth mask (``H×W`` bool, same size as the image)."""

    image_id: int
    file_name: str
    image: np.ndarray
    mask: np.ndarray


def source_group(file_name: str) -> str:
    """The source photo a Roboflow export's image was cut or augmented from: its file name before ``.rf.``
    (``2000x1500_71_resized_jpg.rf.51….jpg`` → ``2000x1500_71_resized_jpg``); other names are their own group."""
    head, found, _ = file_name.partition(".rf.")
    return head if found and head else file_name


class DerivedSplit:
    """Base of a split made from another one (perturbed, mosaics, zooms): it names that split's folder and
    annotation file, and has as many samples unless it says otherwise."""

    split: CocoSplit

    @property
    def root(self) -> Path:
        return self.split.root

    @property
    def annotation_file(self) -> Path:
        return self.split.annotation_file

    def __len__(self) -> int:
        return len(self.split)


class CocoSplit:
    """A COCO split: ``path`` is a directory holding ``_annotations.coco.json`` and the images, or a ``.json`` file.

    With ``annotation_file`` given, that file is read and images are looked up in ``path`` (a directory) or next to
    the annotation file. Indices ``i`` are positions in :attr:`image_ids` (``0 … len-1``), not COCO ids.
    The mask of an image is the union of all its annotations: polygons, RLE (compressed or not), and the filled
    box (clipped to the image) of an annotation with an empty ``segmentation``. Degenerate polygons (fewer than
    3 points or zero area) are dropped with a warning and counted in :attr:`skipped_polygons`; an annotation left
    with nothing to draw (all its polygons dropped, or its box wholly outside the image) is counted in
    :attr:`skipped_annotations`.

    Nothing is drawn before these bounds hold, so a hostile file cannot exhaust memory or crash pycocotools:

    - an image record declares at most :data:`drywall_qa.core.imaging.MAX_PIXELS` pixels, the upload limit;
    - every polygon point and box corner lies within the image grown by its own size on each side
      (``-width <= x <= 2 * width``, likewise ``y``); points outside the image but within that margin are kept as
      written and clipped away when drawn, as pycocotools draws them (clamping them would move the edges that
      cross into the image);
    - the polygons and boxes of one image trace at most ``OUTLINE_LIMIT × (width + height)`` pixels of outline
      (the time and memory pycocotools takes grow with it; the real crack splits stay under 6×);
    - an RLE's ``size`` is the image's ``[height, width]`` and its run lengths (a list, or the compressed string,
      decoded here since pycocotools trusts it) are non-negative and add up to ``height × width``.

    Breaking a bound, and everything else that is wrong with the file, raises :class:`InputError` naming the file,
    the record and what to do.
    """

    def __init__(self, path: str | Path, annotation_file: str | Path | None = None) -> None:
        self.root, self.annotation_file = locate(Path(path), annotation_file)
        dataset = read_json(self.annotation_file)
        images = check_images(dataset, self.annotation_file)
        self.skipped_annotations = self.skipped_polygons = 0
        outlines: dict[int, float] = {}
        annotations = []
        for index, ann in enumerate(records(dataset, "annotations", self.annotation_file)):
            cleaned = self._clean_annotation(ann, index, images, outlines)
            if cleaned is None:
                self.skipped_annotations += 1
            else:
                annotations.append(cleaned)
        check_unique_ids(annotations, self.annotation_file)
        self.coco = COCO()
        self.coco.dataset = {**dataset, "annotations": annotations}
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco.createIndex()
        self.image_ids: list[int] = list(images)

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int) -> Sample:
        image, mask = self.load_image(i), self.mask(i)
        if image.shape[:2] != mask.shape:
            raise InputError(
                str(self.image_path(i)),
                f"image is {image.shape[1]}×{image.shape[0]} but {self.annotation_file} says "
                f"{mask.shape[1]}×{mask.shape[0]}",
                "re-export the dataset so the annotation file matches the images",
            )
        return Sample(self.image_ids[i], self.file_name(i), image, mask)

    def file_name(self, i: int) -> str:
        return self._image(i)["file_name"]

    def image_path(self, i: int) -> Path:
        return self.root / self.file_name(i)

    def load_image(self, i: int) -> np.ndarray:
        """RGB uint8 ``H×W×3`` (see :func:`drywall_qa.core.imaging.load_image`)."""
        path = self.image_path(i)
        if not path.is_file():
            raise InputError(
                str(path),
                f"image {self.image_ids[i]} listed in {self.annotation_file} is missing",
                "restore the image or re-export the dataset",
            )
        return imaging.load_image(path)

    def mask(self, i: int) -> np.ndarray:
        """Union of the image's annotations as a bool ``H×W`` array at the size the annotation file gives."""
        info = self._image(i)
        height, width = info["height"], info["width"]
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=[info["id"]]))
        if not anns:
            return np.zeros((height, width), dtype=bool)
        rles = [to_rle(ann["segmentation"], height, width) for ann in anns]
        return mask_utils.decode(mask_utils.merge(rles)).astype(bool)

    def _image(self, i: int) -> dict[str, Any]:
        return self.coco.imgs[self.image_ids[i]]

    def _clean_annotation(self, ann: Any, index: int, images: dict[int, dict],
                          outlines: dict[int, float]) -> dict | None:
        """Validate one annotation; return it with a drawable ``segmentation`` (box → polygon), or None to skip.
        ``outlines``: the outline traced so far per image id, this annotation's added."""
        where = f"{self.annotation_file}: annotations[{index}]"
        ann_id = int_field(ann, "id", where)
        where = f"{where} (id {ann_id})"
        image_id = int_field(ann, "image_id", where)
        if image_id not in images:
            raise InputError(
                where, f"image_id {image_id} is not in the file's images",
                "fix the image_id or add the image to the images list",
            )
        image = images[image_id]
        segmentation = ann.get("segmentation")
        if isinstance(segmentation, dict):
            segmentation = check_rle(segmentation, image, where)
        elif segmentation:
            segmentation = self._valid_polygons(segmentation, image, where, ann_id)
        else:
            segmentation = box_polygon(ann.get("bbox"), image, where)
        if isinstance(segmentation, list):
            add_outline(segmentation, image, outlines, where)
        if not segmentation:
            warnings.warn(f"{self.annotation_file}: annotation {ann_id} has nothing to draw; skipped", stacklevel=3)
            return None
        return {**ann, "segmentation": segmentation}

    def _valid_polygons(self, polygons: Any, image: dict, where: str, ann_id: int) -> list[list[float]]:
        """The polygons within bounds and not degenerate; the degenerate ones dropped, counted and warned about."""
        if not isinstance(polygons, list):
            raise InputError(where, "segmentation must be a list of polygons or an RLE dict", COCO_HINT)
        kept = []
        for polygon in polygons:
            coords = numbers(polygon, where, "segmentation polygon")
            if len(coords) % 2:
                raise InputError(where, "a segmentation polygon has an odd number of coordinates", COCO_HINT)
            check_bounds(coords, image, where, "segmentation polygon point")
            if len(coords) >= 6 and polygon_area(coords) > 0:
                kept.append(coords)
            else:
                self.skipped_polygons += 1
                warnings.warn(
                    f"{self.annotation_file}: annotation {ann_id} has a degenerate polygon "
                    f"({len(coords) // 2} points, zero area or fewer than 3 points); dropped",
                    stacklevel=4,
                )
        return kept


