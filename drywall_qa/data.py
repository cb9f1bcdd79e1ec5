"""Datasets: the prompt registry and COCO splits (Roboflow layout) loaded as images + binary masks."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from drywall_qa import imaging
from drywall_qa.errors import InputError

ANNOTATION_FILE = "_annotations.coco.json"
#: Most outline, in multiples of (width + height), that the polygons and boxes of one image may trace.
OUTLINE_LIMIT = 100
_COCO_HINT = "export the dataset in COCO format (Roboflow: 'COCO Segmentation' or 'COCO')"


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

    - an image record declares at most :data:`drywall_qa.imaging.MAX_PIXELS` pixels, the upload limit;
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
        self.root, self.annotation_file = _locate(Path(path), annotation_file)
        dataset = _read_json(self.annotation_file)
        images = _check_images(dataset, self.annotation_file)
        self.skipped_annotations = self.skipped_polygons = 0
        outlines: dict[int, float] = {}
        annotations = []
        for index, ann in enumerate(_records(dataset, "annotations", self.annotation_file)):
            cleaned = self._clean_annotation(ann, index, images, outlines)
            if cleaned is None:
                self.skipped_annotations += 1
            else:
                annotations.append(cleaned)
        _check_unique_ids(annotations, self.annotation_file)
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
        """RGB uint8 ``H×W×3`` (see :func:`drywall_qa.imaging.load_image`)."""
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
        rles = [_to_rle(ann["segmentation"], height, width) for ann in anns]
        return mask_utils.decode(mask_utils.merge(rles)).astype(bool)

    def _image(self, i: int) -> dict[str, Any]:
        return self.coco.imgs[self.image_ids[i]]

    def _clean_annotation(self, ann: Any, index: int, images: dict[int, dict],
                          outlines: dict[int, float]) -> dict | None:
        """Validate one annotation; return it with a drawable ``segmentation`` (box → polygon), or None to skip.
        ``outlines``: the outline traced so far per image id, this annotation's added."""
        where = f"{self.annotation_file}: annotations[{index}]"
        ann_id = _int_field(ann, "id", where)
        where = f"{where} (id {ann_id})"
        image_id = _int_field(ann, "image_id", where)
        if image_id not in images:
            raise InputError(
                where, f"image_id {image_id} is not in the file's images",
                "fix the image_id or add the image to the images list",
            )
        image = images[image_id]
        segmentation = ann.get("segmentation")
        if isinstance(segmentation, dict):
            segmentation = _check_rle(segmentation, image, where)
        elif segmentation:
            segmentation = self._valid_polygons(segmentation, image, where, ann_id)
        else:
            segmentation = _box_polygon(ann.get("bbox"), image, where)
        if isinstance(segmentation, list):
            _add_outline(segmentation, image, outlines, where)
        if not segmentation:
            warnings.warn(f"{self.annotation_file}: annotation {ann_id} has nothing to draw; skipped", stacklevel=3)
            return None
        return {**ann, "segmentation": segmentation}

    def _valid_polygons(self, polygons: Any, image: dict, where: str, ann_id: int) -> list[list[float]]:
        """The polygons within bounds and not degenerate; the degenerate ones dropped, counted and warned about."""
        if not isinstance(polygons, list):
            raise InputError(where, "segmentation must be a list of polygons or an RLE dict", _COCO_HINT)
        kept = []
        for polygon in polygons:
            coords = _numbers(polygon, where, "segmentation polygon")
            if len(coords) % 2:
                raise InputError(where, "a segmentation polygon has an odd number of coordinates", _COCO_HINT)
            _check_bounds(coords, image, where, "segmentation polygon point")
            if len(coords) >= 6 and _polygon_area(coords) > 0:
                kept.append(coords)
            else:
                self.skipped_polygons += 1
                warnings.warn(
                    f"{self.annotation_file}: annotation {ann_id} has a degenerate polygon "
                    f"({len(coords) // 2} points, zero area or fewer than 3 points); dropped",
                    stacklevel=4,
                )
        return kept


def _locate(path: Path, annotation_file: str | Path | None) -> tuple[Path, Path]:
    """(image directory, annotation file) for the constructor's arguments."""
    if annotation_file is not None:
        ann = Path(annotation_file)
        return (path if path.is_dir() else ann.parent), ann
    if path.suffix.lower() == ".json":
        return path.parent, path
    if not path.is_dir():
        raise InputError(str(path), "no such directory", "pass a split directory such as data/cracks/valid")
    ann = path / ANNOTATION_FILE
    if not ann.exists():
        splits = sorted(p.name for p in path.iterdir() if (p / ANNOTATION_FILE).is_file())
        hint = f"pick a split: {', '.join(splits)}" if splits else "pass the split directory or the annotation file"
        raise InputError(str(path), f"no {ANNOTATION_FILE} in this directory", hint)
    return path, ann


def _read_json(path: Path) -> dict[str, Any]:
    """The parsed file; the errors name its position at most, never its text."""
    if not path.is_file():
        hint = f"check the path (Roboflow names it {ANNOTATION_FILE})"
        raise InputError(str(path), "annotation file not found", hint)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(str(path), "not a UTF-8 text file", "pass a COCO annotation JSON file") from None
    except (ValueError, RecursionError) as exc:  # also integers over 4300 digits, arrays nested too deeply
        raise InputError(str(path), f"malformed JSON ({exc})", "re-export or repair the annotation file") from None
    except OSError as exc:
        raise InputError(str(path), f"cannot be read ({exc.strerror})", "check the file's permissions") from None
    if not isinstance(data, dict):
        raise InputError(str(path), "the top level is not a JSON object", _COCO_HINT)
    return data


def _records(dataset: dict, field: str, path: Path) -> list:
    records = dataset.get(field)
    if not isinstance(records, list):
        problem = f'missing the "{field}" list' if records is None else f'"{field}" is not a list'
        raise InputError(str(path), problem, _COCO_HINT)
    return records


def _check_images(dataset: dict, path: Path) -> dict[int, dict]:
    """Validated image records by id, in file order."""
    images: dict[int, dict] = {}
    for index, image in enumerate(_records(dataset, "images", path)):
        where = f"{path}: images[{index}]"
        image_id = _int_field(image, "id", where)
        if image_id in images:
            raise InputError(where, f"duplicate image id {image_id}", "give every image a unique id")
        if not isinstance(image.get("file_name"), str) or not image["file_name"]:
            raise InputError(where, 'missing "file_name"', _COCO_HINT)
        if "\0" in image["file_name"]:
            raise InputError(where, '"file_name" contains a NUL character', "fix the file_name")
        _check_size(image, where)
        images[image_id] = image
    return images


def _check_size(image: dict, where: str) -> None:
    """Positive ``width`` and ``height`` whose product is within the upload limit, ``imaging.MAX_PIXELS``."""
    width, height = _int_field(image, "width", where), _int_field(image, "height", where)
    for field, value in (("width", width), ("height", height)):
        if value <= 0:
            raise InputError(where, f'"{field}" must be positive', _COCO_HINT)
    if width * height > imaging.MAX_PIXELS:
        raise InputError(
            where,
            f"{width}×{height} = {width * height:,} pixels is over the limit of {imaging.MAX_PIXELS:,} pixels "
            "(imaging.MAX_PIXELS, the same as for uploads)",
            "downscale the image and its annotations below the limit, or check the width and height",
        )


def _check_unique_ids(annotations: list[dict], path: Path) -> None:
    seen: set[int] = set()
    for ann in annotations:
        if ann["id"] in seen:
            raise InputError(str(path), f"duplicate annotation id {ann['id']}", "give every annotation a unique id")
        seen.add(ann["id"])


def _int_field(record: Any, field: str, where: str) -> int:
    value = record.get(field) if isinstance(record, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        problem = f'missing "{field}"' if value is None else f'"{field}" must be an integer, got {_describe(value)}'
        raise InputError(where, problem, _COCO_HINT)
    return value


def _numbers(values: Any, where: str, what: str) -> list[float]:
    if not isinstance(values, list):
        raise InputError(where, f"{what} must be a list of finite numbers, got {_describe(values)}", _COCO_HINT)
    for i, value in enumerate(values):
        if not _finite(value):
            raise InputError(where, f"{what} must be a list of finite numbers; item {i} is {_describe(value)}",
                             _COCO_HINT)
    return [float(v) for v in values]


def _finite(value: Any) -> bool:
    """A JSON number that converts to a finite float (not a bool, NaN, ±Infinity or an integer beyond 1.8e308)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= sys.float_info.max


def _describe(value: Any) -> str:
    """A short description of a JSON value for an error message: numbers (and lists of up to 4) as written, other
    values by their type and size only, so a message never echoes the text of whatever file was read."""
    if isinstance(value, (bool, type(None))):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= 24 else f"a number of {len(text)} digits"
    if isinstance(value, list) and len(value) <= 4 and all(isinstance(v, (int, float)) for v in value):
        return f"[{', '.join(_describe(v) for v in value)}]"
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    return f"an object with {len(value)} keys" if isinstance(value, dict) else f"a list of {len(value)} items"


def _polygon_area(coords: list[float]) -> float:
    x, y = np.asarray(coords[0::2]), np.asarray(coords[1::2])
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def _check_bounds(coords: list[float], image: dict, where: str, what: str) -> None:
    """:class:`InputError` unless every point ``(x, y)`` lies within the image grown by its own size on each side."""
    width, height = image["width"], image["height"]
    for x, y in zip(coords[0::2], coords[1::2]):
        if not (-width <= x <= 2 * width and -height <= y <= 2 * height):
            raise InputError(
                where,
                f"{what} ({x:.6g}, {y:.6g}) lies far outside the {width}×{height} image (allowed: x from "
                f"{-width} to {2 * width}, y from {-height} to {2 * height})",
                "fix or remove the annotation (coordinates are pixels of the image)",
            )


def _outline(coords: list[float]) -> float:
    """A closed polygon's outline as pycocotools walks it: the longer of ``|dx|`` and ``|dy|`` of each edge."""
    x, y = np.asarray(coords[0::2]), np.asarray(coords[1::2])
    return float(np.maximum(np.abs(x - np.roll(x, -1)), np.abs(y - np.roll(y, -1))).sum())


def _add_outline(polygons: list[list[float]], image: dict, outlines: dict[int, float], where: str) -> None:
    """Add the polygons' outline to their image's total in ``outlines``; :class:`InputError` past the limit."""
    total = outlines[image["id"]] = outlines.get(image["id"], 0.0) + sum(_outline(p) for p in polygons)
    limit = OUTLINE_LIMIT * (image["width"] + image["height"])
    if total > limit:
        raise InputError(
            where,
            f"the polygons and boxes of image {image['id']} trace {total:,.0f} pixels of outline, over the limit of "
            f"{limit:,} (data.OUTLINE_LIMIT {OUTLINE_LIMIT} × (width + height))",
            "simplify the polygons, or check the file for corrupt coordinates",
        )


def _box_polygon(bbox: Any, image: dict, where: str) -> list[list[float]]:
    """The box ``[x, y, w, h]`` clipped to the image, as a one-polygon segmentation ([] when nothing is left)."""
    if bbox is None:
        raise InputError(where, 'empty "segmentation" and no "bbox"', "give the annotation a polygon, RLE or box")
    coords = _numbers(bbox, where, "bbox")
    if len(coords) != 4:
        raise InputError(where, f"bbox must be [x, y, width, height], got {_describe(bbox)}", _COCO_HINT)
    x, y, w, h = coords
    _check_bounds([x, y, x + w, y + h], image, where, "bbox corner")
    x0, y0 = min(max(x, 0.0), image["width"]), min(max(y, 0.0), image["height"])
    x1, y1 = min(max(x + w, 0.0), image["width"]), min(max(y + h, 0.0), image["height"])
    if x1 <= x0 or y1 <= y0:
        return []
    return [[x0, y0, x0, y1, x1, y1, x1, y0]]


def _check_rle(rle: dict, image: dict, where: str) -> dict:
    """The RLE with its ``size`` checked against the image and its run lengths against ``height × width``."""
    height, width = image["height"], image["width"]
    size = rle.get("size")
    if size != [height, width] or not all(type(v) is int for v in size):
        raise InputError(
            where,
            f"RLE size {_describe(size)} does not match the image's [height, width] [{height}, {width}]",
            "re-export the annotations at the image size",
        )
    problem = _rle_counts_problem(rle.get("counts"), height * width)
    if problem:
        raise InputError(where, problem, _COCO_HINT)
    return {"size": [height, width], "counts": rle["counts"]}


def _rle_counts_problem(counts: Any, pixels: int) -> str | None:
    """What is wrong with RLE ``counts`` (a list of run lengths or COCO's compressed string), None when nothing."""
    if not isinstance(counts, (list, str)) or not counts:
        return "RLE counts must be a list of run lengths or a compressed string"
    runs = _decode_rle_string(counts) if isinstance(counts, str) else counts
    if runs is None:
        return "compressed RLE counts are not a valid COCO RLE string"
    if not all(type(r) is int and r >= 0 for r in runs):
        return "RLE counts must be non-negative integers"
    if sum(runs) != pixels:
        return f"RLE counts do not add up to height × width ({sum(runs):,} instead of {pixels:,})"
    return None


def _decode_rle_string(text: str) -> list[int] | None:
    """The run lengths of a compressed COCO RLE string, decoded as pycocotools' ``rleFrString`` does (characters
    from "0" carrying 5 bits and a continuation bit; from the fourth run on, differences from the run two before);
    None when malformed: a character out of range, a value over 6 characters or a string ending inside a value,
    which pycocotools would overflow on or read past."""
    runs: list[int] = []
    value = shift = 0
    for char in text:
        code = ord(char) - 48
        if not 0 <= code < 64 or shift == 30:
            return None
        value |= (code & 0x1F) << shift
        shift += 5
        if not code & 0x20:
            if code & 0x10:
                value -= 1 << shift
            runs.append(value + (runs[-2] if len(runs) > 2 else 0))
            value = shift = 0
    return runs if shift == 0 else None


def _to_rle(segmentation: list | dict, height: int, width: int) -> dict:
    """One RLE for a cleaned segmentation (polygons merged; uncompressed RLE compressed)."""
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation["counts"], list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return segmentation

