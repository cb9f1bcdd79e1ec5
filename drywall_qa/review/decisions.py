"""Review decisions, one per image of a split, kept in a JSON file with the history of every change.

A file holds ``{"version": 2, "split": <split folder>, "images": {file_name: entry}}``; an entry is::

    {"decision": "ground_truth_wrong", "comment": "…", "reviewer": "ana", "updated": "2025-01-31T10:00:00+00:00",
     "mask": {"size": [h, w], "counts": "<COCO RLE>"}, "mask_source": "prediction",
     "history": [<earlier entries, oldest first, without their masks>], …context such as "prompt", "model", "iou"}

``mask`` (a corrected ground truth, from the prediction or an edited one) goes only with ``ground_truth_wrong``.
Files of the first review format (``{"reviews": {image: {prompt: entry}}}`` with ``accept`` / ``reject``) are read
too: per image the latest entry becomes the decision (accept → ``prediction_correct``, reject →
``prediction_wrong``), the others its history.

Saving writes this format. Every change re-reads the file, applies the change and writes it atomically (temp file +
rename) under one lock, so concurrent saves in a process never lose each other's entries and a crash leaves the
previous file intact.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from drywall_qa.core.atomic import write_atomic
from drywall_qa.core.errors import InputError, shown
from drywall_qa.core.imaging import MAX_PIXELS
from drywall_qa.data.checks import check_rle

PREDICTION_CORRECT, PREDICTION_WRONG = "prediction_correct", "prediction_wrong"
GROUND_TRUTH_WRONG, EXCLUDE_IMAGE = "ground_truth_wrong", "exclude_image"
DECISIONS = (PREDICTION_CORRECT, PREDICTION_WRONG, GROUND_TRUTH_WRONG, EXCLUDE_IMAGE)
#: where a corrected mask came from: the model's prediction taken as is, or drawn / edited by the reviewer
MASK_SOURCES = ("prediction", "edited")
MAX_COMMENT_CHARS = 2000
MAX_REVIEWER_CHARS = 100
VERSION = 2
_FIRST_FORMAT = {"accept": PREDICTION_CORRECT, "reject": PREDICTION_WRONG}
_HINT = "fix the decisions file or save the decision again from the Review tab"

_lock = threading.Lock()


@dataclass(frozen=True)
class Decision:
    """One image's current decision; ``mask`` is the corrected ground truth as a checked compressed RLE, or None."""

    image: str
    decision: str
    comment: str
    reviewer: str
    updated: str
    mask_source: str | None
    mask: dict[str, Any] | None

    def mask_array(self) -> np.ndarray | None:
        """The corrected ground truth as an ``H×W`` bool array, or None."""
        return None if self.mask is None else decode_mask(self.mask)


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """A boolean ``H×W`` mask as COCO's compressed RLE, JSON-ready (``counts`` a string)."""
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_mask(rle: dict[str, Any]) -> np.ndarray:
    """The boolean ``H×W`` mask of a compressed RLE written by :func:`encode_mask`."""
    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _text(value: Any, limit: int, where: str) -> str:
    if not isinstance(value, str):
        raise InputError(where, f"{shown(value)} is not text", _HINT)
    if len(value) > limit:
        raise InputError(where, f"{len(value)} characters, the limit is {limit}", "shorten it")
    return value


def _check_entry(entry: Any, where: str) -> dict[str, Any]:
    """The entry, its fields checked; each error names the field (``where.decision``) and the fix."""
    if not isinstance(entry, dict):
        raise InputError(where, "not a JSON object", _HINT)
    if entry.get("decision") not in DECISIONS:
        raise InputError(f"{where}.decision", f"{shown(entry.get('decision'))} is not a decision",
                         f"use one of: {', '.join(DECISIONS)}")
    _text(entry.get("comment", ""), MAX_COMMENT_CHARS, f"{where}.comment")
    _text(entry.get("reviewer", ""), MAX_REVIEWER_CHARS, f"{where}.reviewer")
    _text(entry.get("updated", ""), 64, f"{where}.updated")
    if not isinstance(entry.get("history", []), list):
        raise InputError(f"{where}.history", "not a list of earlier entries", _HINT)
    if entry.get("mask") is None:
        return entry
    if entry["decision"] != GROUND_TRUTH_WRONG:
        raise InputError(f"{where}.mask", f"a corrected mask goes with {GROUND_TRUTH_WRONG}, not {entry['decision']}",
                         f"set the decision to {GROUND_TRUTH_WRONG} or remove the mask")
    mask, size = entry["mask"], entry["mask"].get("size") if isinstance(entry["mask"], dict) else None
    if not (isinstance(mask, dict) and isinstance(mask.get("counts"), str) and isinstance(size, list)
            and len(size) == 2 and all(type(v) is int and v > 0 for v in size) and size[0] * size[1] <= MAX_PIXELS):
        raise InputError(f"{where}.mask", 'not a compressed COCO RLE {"size": [height, width], "counts": "…"} of an '
                         "image size", _HINT)
    check_rle(mask, {"height": size[0], "width": size[1]}, f"{where}.mask")
    if entry.get("mask_source") not in MASK_SOURCES:
        raise InputError(f"{where}.mask_source", f"{shown(entry.get('mask_source'))} is not a mask source",
                         f"use one of: {', '.join(MASK_SOURCES)}")
    return entry


def _from_first_format(reviews: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """Per-prompt accept / reject entries as per-image decisions: the latest entry with a decision wins."""
    images = {}
    for image, prompts in reviews.items():
        if not isinstance(prompts, dict) or not all(isinstance(e, dict) for e in prompts.values()):
            raise InputError(f"{where}.reviews[{shown(image)}]", "not an object of entries per prompt", _HINT)
        entries = sorted(({**e, "prompt": p} for p, e in prompts.items()
                          if isinstance(e.get("decision"), str) and e["decision"] in _FIRST_FORMAT),
                         key=lambda e: str(e.get("updated", "")))
        history = [{**e, "decision": _FIRST_FORMAT[e["decision"]]} for e in entries]
        if history:
            images[image] = {**history[-1], "history": history[:-1]}
    return images


def _parse(document: Any, path: Path) -> dict[str, dict[str, Any]]:
    """The checked entries of a decisions file's content, by image."""
    if isinstance(document, dict) and isinstance(document.get("reviews"), dict) and "images" not in document:
        return {image: _check_entry(entry, f"{path}: reviews[{shown(image)}]")
                for image, entry in _from_first_format(document["reviews"], str(path)).items()}
    if not isinstance(document, dict) or not isinstance(document.get("images"), dict):
        raise InputError(str(path), 'not a decisions file (no "images" object)', _HINT)
    if document.get("version", VERSION) != VERSION:
        raise InputError(f"{path}: version", f"{shown(document['version'])} is not a known version",
                         f"write version {VERSION}")
    return {image: _check_entry(entry, f"{path}: images[{shown(image)}]")
            for image, entry in document["images"].items()}


def _read_checked(path: Path) -> dict[str, dict[str, Any]]:
    """The checked entries of the decisions file ``path``, by image."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(str(path), "decisions file not found", "check the path") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(str(path), f"not valid JSON ({err})", _HINT) from None
    except RecursionError:
        raise InputError(str(path), "nested too deeply to be a decisions file", _HINT) from None
    except OSError as err:
        raise InputError(str(path), f"cannot be read ({err.strerror or err})",
                         "name a decisions file (reviews/<split>.json), not a folder") from None
    return _parse(document, path)


def read_decisions(path: Path) -> dict[str, Decision]:
    """The decisions of a file by image; :class:`InputError` naming the file and field when one is malformed."""
    return {image: Decision(image, e["decision"], e.get("comment", ""), e.get("reviewer", ""), e.get("updated", ""),
                            e.get("mask_source") if e.get("mask") is not None else None, e.get("mask"))
            for image, e in _read_checked(Path(path)).items()}


class DecisionStore:
    """The decisions of one split (``split``: its folder, recorded in the file), kept in ``path``."""

    def __init__(self, path: Path, split: str | Path) -> None:
        self.path, self.split = Path(path), str(split)

    def load(self) -> dict[str, dict[str, Any]]:
        """Every image's entry (empty when no file yet)."""
        with _lock:
            return self._read()

    def get(self, image: str) -> dict[str, Any] | None:
        return self.load().get(image)

    def decide(self, image: str, decision: str, comment: str = "", reviewer: str = "", mask: np.ndarray | None = None,
               mask_source: str | None = None, **context: Any) -> dict[str, Any]:
        """Record ``decision`` on ``image`` with ``context`` (prompt, model, scores); the entry it replaces moves to
        the history without its mask. Returns the stored entry."""
        entry = {"decision": decision, "comment": (comment or "").strip(), "reviewer": (reviewer or "").strip(),
                 **context, "updated": _now()}
        if mask is not None:
            if np.ndim(mask) != 2:
                raise InputError(f"mask of {shown(image)}", f"shape {np.shape(mask)}, not H×W", "pass a 2-D mask")
            entry.update(mask=encode_mask(mask), mask_source=mask_source)
        with _lock:
            images = self._read()
            previous = images.get(image)
            history = [] if previous is None else [*previous.pop("history", []),
                                                   {k: v for k, v in previous.items() if k != "mask"}]
            images[image] = _check_entry({**entry, "history": history}, f"decision on {shown(image)}")
            document = {"version": VERSION, "split": self.split, "images": images}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        return images[image]

    def _read(self) -> dict[str, dict[str, Any]]:
        """The file's checked entries (none before the first save); a file that is not a decisions file raises and
        is never overwritten."""
        return _read_checked(self.path) if self.path.exists() else {}
