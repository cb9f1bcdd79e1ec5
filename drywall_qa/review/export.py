"""A corrected split: the original COCO split with the review decisions applied, written as a new split folder.

- ``exclude_image``: the image and its annotations are dropped.
- ``ground_truth_wrong`` with a corrected mask: the image's annotations are replaced by one annotation holding the
  mask as a compressed RLE (pycocotools); an empty mask leaves the image without annotations (a negative image).
  Without a mask the image keeps its annotations, and :attr:`ExportSummary.unfixed` counts it.
- every other image keeps its annotation records exactly as written, so it reads back as the same mask.

Boxes datasets (taping) stay boxes where untouched and become RLE where corrected: a brush edit or a prediction is
not a rectangle, and a box around it would put back the area the reviewer removed. Every reader here
(:class:`~drywall_qa.data.coco.CocoSplit`: training, evaluation, the app) draws boxes and RLE into the same pixel
mask, so a split may mix them.

Images are hard-linked where the file system allows (no extra space, and the link stays valid if the original is
moved or deleted; a link shares the file, so edit neither copy in place), copied otherwise; symlinks are avoided
because the app refuses links out of its data folders. Image and annotation ids are kept; new annotations take ids
after the largest one. The folder is built under a temporary name beside ``out`` (a hidden ``.<name>.*.tmp``,
removed on failure) and renamed, so ``out`` appears complete or not at all, and the original split is only read. It
also holds ``decisions.csv``: one row per decided image with the action taken.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pycocotools import mask as mask_utils

from drywall_qa.core.atomic import NEW_FILE_MODE
from drywall_qa.core.errors import InputError, shown
from drywall_qa.data.checks import ANNOTATION_FILE, read_json
from drywall_qa.data.coco import CocoSplit
from drywall_qa.review.decisions import EXCLUDE_IMAGE, GROUND_TRUTH_WRONG, Decision, read_decisions

DECISION_FIELDS = ("image", "decision", "action", "mask_source", "reviewer", "updated", "comment")
#: the mode ``mkdir`` would give the new folder: search permission wherever a new file gets read permission
FOLDER_MODE = NEW_FILE_MODE | (NEW_FILE_MODE & 0o444) >> 2


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote: images in the new split, and how many were corrected, excluded, or marked
    ``ground_truth_wrong`` without a corrected mask (kept as they were)."""

    out: Path
    images: int
    corrected: int
    excluded: int
    unfixed: int


def export_split(decisions_file: Path, split_path: Path, out: Path) -> ExportSummary:
    """Write ``split_path`` with the decisions of ``decisions_file`` applied to the new split folder ``out``."""
    decisions = read_decisions(decisions_file)
    split = CocoSplit(split_path)
    document = read_json(split.annotation_file)
    records = {image["file_name"]: image for image in document["images"]}
    _check_decisions(decisions, records, decisions_file, split.annotation_file)
    out = Path(out)
    _check_out(out, split.root)
    corrected = {name: d for name, d in decisions.items() if d.decision == GROUND_TRUTH_WRONG and d.mask is not None}
    excluded = {name for name, d in decisions.items() if d.decision == EXCLUDE_IMAGE}
    images = [image for image in document["images"] if image["file_name"] not in excluded]
    new_document = {**document, "images": images,
                    "annotations": _annotations(document, corrected, excluded, records)}
    rows = [_row(decisions[image["file_name"]], corrected, excluded)
            for image in document["images"] if image["file_name"] in decisions]
    building = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        for image in images:
            _link_or_copy(split.root, building, image["file_name"], split.annotation_file)
        (building / ANNOTATION_FILE).write_text(json.dumps(new_document, ensure_ascii=False), encoding="utf-8")
        with (building / "decisions.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=DECISION_FIELDS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        os.chmod(building, FOLDER_MODE)
        os.rename(building, out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    unfixed = sum(d.decision == GROUND_TRUTH_WRONG and d.mask is None for d in decisions.values())
    return ExportSummary(out, len(images), len(corrected), len(excluded), unfixed)


def _check_decisions(decisions: dict[str, Decision], records: dict[str, dict], decisions_file: Path,
                     annotation_file: Path) -> None:
    """Every decided image is in the split, and every corrected mask has its image's size."""
    for name, decision in decisions.items():
        where = f"{decisions_file}: images[{shown(name)}]"
        if name not in records:
            raise InputError(where, f"not an image of {annotation_file}",
                             "export with the split the decisions were made on")
        image = records[name]
        if decision.mask is not None and decision.mask["size"] != [image["height"], image["width"]]:
            height, width = decision.mask["size"]
            raise InputError(f"{where}.mask", f"{width}×{height}, but the image is {image['width']}×{image['height']}",
                             "save the corrected mask again at the image's size")


def _check_out(out: Path, split_root: Path) -> None:
    if out.exists() or out.is_symlink():
        raise InputError(str(out), "already exists", "choose a new --out folder: an export never overwrites one")
    if out.resolve().is_relative_to(split_root.resolve()):
        raise InputError(str(out), "lies inside the split being exported", "choose a folder outside it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(str(out.parent), f"cannot create the folder ({err.strerror})",
                         "pass a writable --out") from None


def _annotations(document: dict[str, Any], corrected: dict[str, Decision], excluded: set[str],
                 records: dict[str, dict]) -> list[dict[str, Any]]:
    """The original annotations of the images kept and not corrected, then one RLE annotation per non-empty
    corrected mask, in the category the image's annotations had (else the file's most common one)."""
    ids = {name: records[name]["id"] for name in (*corrected, *excluded)}
    replaced = {ids[name] for name in (*corrected, *excluded)}
    original = document.get("annotations", [])
    kept = [ann for ann in original if ann["image_id"] not in replaced]
    common = Counter(ann["category_id"] for ann in original).most_common(1)
    categories = {ann["image_id"]: ann["category_id"] for ann in reversed(original)}
    next_id = max((ann["id"] for ann in original), default=0) + 1
    for name, decision in corrected.items():
        rle = {"size": decision.mask["size"], "counts": decision.mask["counts"].encode("ascii")}
        if mask_utils.area(rle) == 0:
            continue
        kept.append({"id": next_id, "image_id": ids[name],
                     "category_id": categories.get(ids[name], common[0][0] if common else 1),
                     "segmentation": decision.mask, "area": int(mask_utils.area(rle)),
                     "bbox": [float(v) for v in mask_utils.toBbox(rle)], "iscrowd": 0})
        next_id += 1
    return kept


def _row(decision: Decision, corrected: dict[str, Decision], excluded: set[str]) -> dict[str, str | None]:
    action = "dropped" if decision.image in excluded else "replaced" if decision.image in corrected else "kept"
    return {"image": decision.image, "decision": decision.decision, "action": action,
            "mask_source": decision.mask_source, "reviewer": decision.reviewer, "updated": decision.updated,
            "comment": decision.comment}


def _link_or_copy(source_root: Path, target_root: Path, file_name: str, annotation_file: Path) -> None:
    """Hard-link (else copy) the image ``file_name`` of the split into the new folder, at the same relative path."""
    relative = PurePosixPath(file_name)
    if relative.is_absolute() or ".." in relative.parts:
        raise InputError(f"{annotation_file}: image {shown(file_name)}", "the file_name leads out of the split folder",
                         "give image file names relative to the split folder")
    source, target = source_root / relative, target_root / relative
    if not source.is_file():
        raise InputError(str(source), f"image listed in {annotation_file} is missing",
                         "restore the image or re-export the dataset")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
