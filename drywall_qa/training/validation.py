"""Per-epoch validation: every prompt of every dataset (the evaluation code), cross-prompt false positives, and
the per-prompt thresholds stored with the best checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from drywall_qa.core.segmenter import Segmenter
from drywall_qa.data.coco import CocoSplit, DatasetSpec
from drywall_qa.evaluation import EvaluationSettings, evaluate_split

#: prompts for nothing in either dataset, never used in training (see samples.DISTRACTOR_PROMPTS)
UNRELATED_PROMPTS = ("segment window", "segment person", "segment sky")
#: a mask covering more than this fraction of the image counts as a false positive on a negative pair
FALSE_POSITIVE_AREA = 0.005


def cross_prompt_scores(segmenter: Segmenter, split: CocoSplit, prompts: Sequence[str], limit: int | None) -> dict:
    """Prompts whose target is absent from ``split``: mean predicted area fraction and false-positive rate."""
    areas: dict[str, list[float]] = {p: [] for p in prompts}
    for i in range(min(len(split), limit or len(split))):
        for prediction in segmenter.predict(split.load_image(i), list(prompts), threshold=None):
            areas[prediction.prompt].append(prediction.coverage)
    return {p: {"mean_area": float(np.mean(a)),
                "false_positive_rate": float(np.mean(np.array(a) > FALSE_POSITIVE_AREA))}
            for p, a in areas.items()}


def validate(segmenter: Segmenter, valid: dict[str, tuple[DatasetSpec, CocoSplit]], limit: int | None) -> dict:
    """Scores per dataset: own prompts against the truth, the threshold of each that maximises mIoU, and other
    datasets' / unrelated prompts as negatives."""
    report = {}
    for name, (spec, split) in valid.items():
        result = evaluate_split(segmenter, split, spec.prompts,
                                settings=EvaluationSettings(limit=limit, tolerances=None))
        negatives = [p for other, (s, _) in valid.items() if other != name for p in s.prompts] + list(UNRELATED_PROMPTS)
        report[name] = {"prompts": result.prompts,
                        "thresholds": {p: sweep["best_threshold"] for p, sweep in result.threshold_sweep.items()},
                        "cross": cross_prompt_scores(segmenter, split, negatives, limit)}
    return report


def mean_dice(report: dict) -> float:
    """Model-selection score: mean validation Dice over every prompt of every dataset."""
    return float(np.mean([m["dice"] for block in report.values() for m in block["prompts"].values()]))


def best_thresholds(report: dict) -> dict[str, float]:
    """Per prompt, the validation threshold that maximises mIoU (stored with the checkpoint)."""
    return {p: t for block in report.values() for p, t in block["thresholds"].items()}
