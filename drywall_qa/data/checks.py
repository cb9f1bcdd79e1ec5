"""Checks of a COCO annotation file, record by record, before anything is drawn: every problem raises
:class:`~drywall_qa.core.errors.InputError` naming the file, the record and the field. Coordinates, image sizes, outline
lengths and RLE runs are bounded here because pycocotools trusts them (it segfaults or allocates gigabytes on
hostile values)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from drywall_qa.core import imaging
from drywall_qa.core.errors import InputError

ANNOTATION_FILE = "_annotations.coco.json"
#: Most outline, in multiples of (width + height), that the polygons and boxes of one image may trace.
OUTLINE_LIMIT = 100
COCO_HINT = "export the dataset in COCO format (Roboflow: 'COCO Segmentation' or 'COCO')"
#: Largest annotation file read (the splits here hold 0.3–3 MB; a COCO file of 100,000 polygons is about 100 MB).
MAX_ANNOTATION_BYTES = 256_000_000


def locate(path: Path, annotation_file: str | Path | None) -> tuple[Path, Path]:
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


def read_json(path: Path) -> dict[str, Any]:
    """The parsed file; the errors name its position at most, never its text."""
    if not path.is_file():
        hint = f"check the path (Roboflow names it {ANNOTATION_FILE})"
        raise InputError(str(path), "annotation file not found", hint)
    size = path.stat().st_size
    if size > MAX_ANNOTATION_BYTES:
        raise InputError(str(path), f"{size / 1e6:,.0f} MB, over the {MAX_ANNOTATION_BYTES / 1e6:.0f} MB an annotation "
                         "file may have (it is read whole)", "split the dataset into smaller splits")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(str(path), "not a UTF-8 text file", "pass a COCO annotation JSON file") from None
    except (ValueError, RecursionError) as exc:  # also integers over 4300 digits, arrays nested too deeply
        raise InputError(str(path), f"malformed JSON ({exc})", "re-export or repair the annotation file") from None
    except OSError as exc:
        raise InputError(str(path), f"cannot be read ({exc.strerror})", "check the file's permissions") from None
    if not isinstance(data, dict):
        raise InputError(str(path), "the top level is not a JSON object", COCO_HINT)
    return data


def records(dataset: dict, field: str, path: Path) -> list:
    records = dataset.get(field)
    if not isinstance(records, list):
        problem = f'missing the "{field}" list' if records is None else f'"{field}" is not a list'
        raise InputError(str(path), problem, COCO_HINT)
    return records


def check_images(dataset: dict, path: Path) -> dict[int, dict]:
    """Validated image records by id, in file order."""
    images: dict[int, dict] = {}
    for index, image in enumerate(records(dataset, "images", path)):
        where = f"{path}: images[{index}]"
        image_id = int_field(image, "id", where)
        if image_id in images:
            raise InputError(where, f"duplicate image id {image_id}", "give every image a unique id")
        if not isinstance(image.get("file_name"), str) or not image["file_name"]:
            raise InputError(where, 'missing "file_name"', COCO_HINT)
        if "\0" in image["file_name"]:
            raise InputError(where, '"file_name" contains a NUL character', "fix the file_name")
        _check_size(image, where)
        images[image_id] = image
    return images


def _check_size(image: dict, where: str) -> None:
    """Positive ``width`` and ``height`` whose product is within the upload limit, ``imaging.MAX_PIXELS``."""
    width, height = int_field(image, "width", where), int_field(image, "height", where)
    for field, value in (("width", width), ("height", height)):
        if value <= 0:
            raise InputError(where, f'"{field}" must be positive', COCO_HINT)
    if width * height > imaging.MAX_PIXELS:
        raise InputError(
            where,
            f"{width}×{height} = {width * height:,} pixels is over the limit of {imaging.MAX_PIXELS:,} pixels "
            "(imaging.MAX_PIXELS, the same as for uploads)",
            "downscale the image and its annotations below the limit, or check the width and height",
        )


def check_unique_ids(annotations: list[dict], path: Path) -> None:
    seen: set[int] = set()
    for ann in annotations:
        if ann["id"] in seen:
            raise InputError(str(path), f"duplicate annotation id {ann['id']}", "give every annotation a unique id")
        seen.add(ann["id"])


def int_field(record: Any, field: str, where: str) -> int:
    value = record.get(field) if isinstance(record, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        problem = f'missing "{field}"' if value is None else f'"{field}" must be an integer, got {_describe(value)}'
        raise InputError(where, problem, COCO_HINT)
    return value


def numbers(values: Any, where: str, what: str) -> list[float]:
    if not isinstance(values, list):
        raise InputError(where, f"{what} must be a list of finite numbers, got {_describe(values)}", COCO_HINT)
    for i, value in enumerate(values):
        if not _finite(value):
            raise InputError(where, f"{what} must be a list of finite numbers; item {i} is {_describe(value)}",
                             COCO_HINT)
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


def polygon_area(coords: list[float]) -> float:
    x, y = np.asarray(coords[0::2]), np.asarray(coords[1::2])
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def check_bounds(coords: list[float], image: dict, where: str, what: str) -> None:
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


def add_outline(polygons: list[list[float]], image: dict, outlines: dict[int, float], where: str) -> None:
    """Add the polygons' outline to their image's total in ``outlines``; :class:`InputError` past the limit."""
    total = outlines[image["id"]] = outlines.get(image["id"], 0.0) + sum(_outline(p) for p in polygons)
    limit = OUTLINE_LIMIT * (image["width"] + image["height"])
    if total > limit:
        raise InputError(
            where,
            f"the polygons and boxes of image {image['id']} trace {total:,.0f} pixels of outline, over the limit of "
            f"{limit:,} (coco_checks.OUTLINE_LIMIT {OUTLINE_LIMIT} × (width + height))",
            "simplify the polygons, or check the file for corrupt coordinates",
        )


def box_polygon(bbox: Any, image: dict, where: str) -> list[list[float]]:
    """The box ``[x, y, w, h]`` clipped to the image, as a one-polygon segmentation ([] when nothing is left)."""
    if bbox is None:
        raise InputError(where, 'empty "segmentation" and no "bbox"', "give the annotation a polygon, RLE or box")
    coords = numbers(bbox, where, "bbox")
    if len(coords) != 4:
        raise InputError(where, f"bbox must be [x, y, width, height], got {_describe(bbox)}", COCO_HINT)
    x, y, w, h = coords
    check_bounds([x, y, x + w, y + h], image, where, "bbox corner")
    x0, y0 = min(max(x, 0.0), image["width"]), min(max(y, 0.0), image["height"])
    x1, y1 = min(max(x + w, 0.0), image["width"]), min(max(y + h, 0.0), image["height"])
    if x1 <= x0 or y1 <= y0:
        return []
    return [[x0, y0, x0, y1, x1, y1, x1, y0]]


def check_rle(rle: dict, image: dict, where: str) -> dict:
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
        raise InputError(where, problem, COCO_HINT)
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


def to_rle(segmentation: list | dict, height: int, width: int) -> dict:
    """One RLE for a cleaned segmentation (polygons merged; uncompressed RLE compressed)."""
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation["counts"], list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return segmentation

