"""A Review scoring run: a split's images scored against their ground truth by one model (or two, to compare them),
one row per image and prompt with the mask scores and the crack-aware ones, and the images' short names."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drywall_qa.core.errors import InputError
from drywall_qa.core.prediction import Prediction
from drywall_qa.data.coco import CocoSplit, Sample, source_group
from drywall_qa.data.discovery import split_slug
from drywall_qa.evaluation.metrics import TOLERANCES, crack_scores, score_masks, skeleton

#: the scores of a row, per model: the mask scores, clDice and the tolerance F1 at each distance
SCORE_KEYS = ("iou", "dice", "precision", "recall", "cldice", *(f"tol_f1_{d}px" for d in TOLERANCES))
_ROBOFLOW_TAIL = re.compile(r"_(jpe?g|png|bmp|tiff?|webp)$", re.IGNORECASE)


def review_slug(split: CocoSplit) -> str:
    """The decisions file's stem: the split's short name and a digest of its resolved folder, e.g.
    ``cracks__valid-3f2a91c0``, so two data roots that both hold ``cracks/valid`` keep separate decisions."""
    digest = hashlib.sha256(str(Path(split.root).resolve()).encode()).hexdigest()[:8]
    return f"{split_slug(split)}-{digest}"


def short_name(file_name: str) -> str:
    """A Roboflow export's file name without its hash: ``00017_jpg.rf.4659….jpg`` → ``00017.jpg`` (the part before
    ``.rf.``, its ``_jpg`` tail turned back into the extension); other names as they are."""
    head = source_group(file_name)
    return _ROBOFLOW_TAIL.sub(r".\1", head) if head != file_name else file_name


def short_names(file_names: Iterable[str]) -> dict[str, str]:
    """Each file name's :func:`short_name`, or the full name where two images would share one."""
    shorts = {name: short_name(name) for name in file_names}
    counts = Counter(shorts.values())
    return {name: short if counts[short] == 1 else name for name, short in shorts.items()}


def mask_scores(pred: np.ndarray, truth: np.ndarray, truth_skeleton: np.ndarray) -> dict[str, float]:
    """The :data:`SCORE_KEYS` of a predicted mask against the ground truth (whose skeleton is given)."""
    iou, dice, precision, recall = score_masks(pred, truth)
    crack = crack_scores(pred, truth, TOLERANCES, truth_skeleton)
    return {"iou": iou, "dice": dice, "precision": precision, "recall": recall,
            **{key: crack[key] for key in SCORE_KEYS[4:]}}


def image_rows(sample: Sample, predictions: Sequence[Prediction],
               others: Sequence[Prediction] | None = None) -> list[dict[str, Any]]:
    """One row per prompt of a scored image: ``scores`` of the first model's ``predictions``, ``other`` of the
    second's (None without one), and whether the image has any annotated pixel."""
    truth_skeleton = skeleton(sample.mask)
    scores = [mask_scores(p.mask, sample.mask, truth_skeleton) for p in predictions]
    other = [mask_scores(p.mask, sample.mask, truth_skeleton) for p in others] if others else [None] * len(scores)
    annotated = bool(sample.mask.any())
    return [{"image": sample.file_name, "prompt": p.prompt, "annotated": annotated, "scores": s, "other": o}
            for p, s, o in zip(predictions, scores, other)]


@dataclass
class ReviewSession:
    """One scoring run: where, with which model(s) and prompts, and its rows (see :func:`image_rows`)."""

    split: str
    name: str
    slug: str
    model_key: str
    model: str
    prompts: list[str]
    threshold: float | None
    rows: list[dict[str, Any]]
    #: each scored image's position in the split
    index: dict[str, int]
    #: the second model's cache key and name, when comparing
    compare_key: str | None = None
    compare: str | None = None

    def __post_init__(self) -> None:
        self.short = short_names(self.index)
        self._full = {short: name for name, short in self.short.items()}

    def image(self, name: str | None) -> str:
        """The file name of a scored image given by its file name or short name."""
        if name in self.index:
            return name
        if name in self._full:
            return self._full[name]
        raise InputError("review", f"{str(name)[:80]!r} is not a scored image", "press Score, then click a row")

    def row(self, image: str, prompt: str | None) -> dict[str, Any]:
        """The row of ``image`` (file or short name) and ``prompt`` (None: the first prompt)."""
        image, prompt = self.image(image), prompt or self.prompts[0]
        for row in self.rows:
            if row["image"] == image and row["prompt"] == prompt:
                return row
        raise InputError("table row", f"{image} / {prompt} is not in the scored table", "score the split again")

    def rows_of(self, image: str) -> list[dict[str, Any]]:
        """Every prompt's row of ``image``, in the order the prompts were scored."""
        image = self.image(image)
        return [row for row in self.rows if row["image"] == image]
