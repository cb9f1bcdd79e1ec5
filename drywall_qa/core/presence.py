"""Image-level presence: how likely the image contains what the prompt describes at all.

The raw score is the *presence logit*: the mean logit of the :data:`TOP_FRACTION` most confident pixels of the
model's native output — high when some region clearly matches, whatever its size, so a thin crack counts as much
as a wide seam (averaged in logit space, so it still ranks images where probabilities saturate at 1). Platt
scaling turns it into a probability, ``sigmoid(a · z + b)``, with ``(a, b)`` fitted per prompt on a validation
split (``drywall-qa calibrate``); an uncalibrated prompt uses ``(1, 0)``, i.e. ``sigmoid(z)``. AUROC
measures how well a score separates images with and without the target; it is reported only from
:data:`MIN_AUROC_CLASS` images of each class.

Where a mask was drawn, the verdict follows the mask (a non-empty mask is "present", an empty one "absent") and the
presence probability is shown beside it as a confidence, flagged "low confidence" when the two disagree, so the words
never contradict the picture.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

#: fraction of native-resolution pixels whose logits make the presence logit (at least one pixel)
TOP_FRACTION = 0.005
#: fewest images with and without the target from which an AUROC is reported (below it, a few images decide it)
MIN_AUROC_CLASS = 10


def presence_logit(logits: torch.Tensor) -> float:
    """Raw presence from native logits ``(h, w)``: the mean of the top :data:`TOP_FRACTION` of them."""
    flat = logits.detach().float().flatten()
    k = max(1, round(TOP_FRACTION * flat.numel()))
    return float(flat.topk(k).values.mean())


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))     # no overflow for large |x|


def presence_probability(z: float, params: tuple[float, float] | None = None) -> float:
    """``sigmoid(a · z + b)`` of a presence logit ``z``; ``params`` None means uncalibrated, ``(1, 0)``."""
    a, b = (1.0, 0.0) if params is None else params
    return float(_sigmoid(a * z + b))


def is_present(presence: float, found: bool | None = None) -> bool:
    """The verdict: the mask's answer (``found``: the mask is not empty) when there is a mask, else whether
    ``presence`` reaches 0.5."""
    return presence >= 0.5 if found is None else found


def describe_presence(presence: float, calibrated: bool, *, found: bool | None = None) -> str:
    """Words for a presence probability, with ``', uncalibrated'`` when no calibration backs the number.

    Without a mask (``found`` None): ``'likely present (87%)'`` / ``'likely absent (96%)'``, the percentage being
    the confidence in the verdict. With one, the verdict follows the mask and the presence probability is given as
    is: ``'present (presence 87%)'``, ``'absent (presence 4%)'``, and ``'present (presence 45%, low confidence)'``
    when the presence disagrees with the mask.
    """
    present = is_present(presence, found)
    if found is None:
        verdict, confidence = ("likely present", presence) if present else ("likely absent", 1.0 - presence)
        return f"{verdict} ({confidence:.0%}{'' if calibrated else ', uncalibrated'})"
    notes = [f"presence {presence:.0%}", *(["low confidence"] if (presence >= 0.5) != found else []),
             *([] if calibrated else ["uncalibrated"])]
    return f"{'present' if present else 'absent'} ({', '.join(notes)})"


def fit_platt(scores: Sequence[float], labels: Sequence[bool], iterations: int = 100) -> tuple[float, float]:
    """Platt's ``(a, b)`` for presence logits ``scores`` and boolean ``labels``, by Newton's method on the log-loss.

    Targets are Platt's smoothed ones, ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)``, which keep the fit finite when
    the classes are perfectly separated. Needs at least one positive and one negative.
    """
    x, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if not positives or not negatives:
        raise ValueError(f"Platt scaling needs positives and negatives, got {positives} and {negatives}")
    target = np.where(y, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    design = np.stack([x, np.ones_like(x)], axis=1)
    params = np.zeros(2)
    for _ in range(iterations):
        p = _sigmoid(design @ params)
        gradient = design.T @ (p - target)
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        params -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(params[0]), float(params[1])


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve (ties count half); None without both positives and negatives."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if not positives or not negatives:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2          # 1-based mean rank of each distinct score
    rank_sum = average_rank[inverse][labels].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def verdict_counts(pairs: Sequence[tuple[float, bool]]) -> dict[str, int]:
    """How presence and mask compare over images ``(presence, mask not empty)``: ``mask_verdict_disagreements``
    (a mask with an "absent" verdict or none with "present"; 0 since the verdict follows the mask),
    ``masks_with_low_presence`` (a mask, presence below 0.5: what the presence-only wording called "likely absent")
    and ``empty_with_high_presence`` (no mask, presence 0.5 or more): both shown as "low confidence"."""
    return {"mask_verdict_disagreements": sum(is_present(p, found) != found for p, found in pairs),
            "masks_with_low_presence": sum(found and not is_present(p) for p, found in pairs),
            "empty_with_high_presence": sum(not found and is_present(p) for p, found in pairs)}


class PresenceRecords:
    """Per-prompt presence scores with labels (target in the image or not), gathered one image at a time."""

    def __init__(self) -> None:
        self.scores: dict[str, list[float]] = defaultdict(list)
        self.labels: dict[str, list[bool]] = defaultdict(list)

    def add(self, prompt: str, score: float, label: bool) -> None:
        self.scores[prompt].append(float(score))
        self.labels[prompt].append(bool(label))

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        """Per prompt: ``auroc`` (None below :data:`MIN_AUROC_CLASS` images of either class), counts and mean score
        of each class."""
        out = {}
        for prompt, scores in self.scores.items():
            scores, labels = np.asarray(scores), np.asarray(self.labels[prompt])
            positives, negatives = int(labels.sum()), int((~labels).sum())
            enough = min(positives, negatives) >= MIN_AUROC_CLASS
            out[prompt] = {"auroc": auroc(scores, labels) if enough else None, "positives": positives,
                           "negatives": negatives,
                           "mean_positive": float(scores[labels].mean()) if labels.any() else None,
                           "mean_negative": float(scores[~labels].mean()) if (~labels).any() else None}
        return out


def describe_auroc(summary: dict[str, float | int | None] | None) -> str:
    """A :meth:`PresenceRecords.summary` entry in words, always with the class counts: ``'0.912 (40 with / 60
    without the target)'``, or why there is no AUROC (``'n/a — add a negatives split (208 with / 1 without …)'``)."""
    if summary is None:
        return "n/a — no presence scores"
    counts = f"{summary['positives']} with / {summary['negatives']} without the target"
    if summary["auroc"] is not None:
        return f"{summary['auroc']:.3f} ({counts})"
    fix = "add a negatives split" if summary["negatives"] < MIN_AUROC_CLASS else "score more images with the target"
    return f"n/a — {fix} ({counts}; needs {MIN_AUROC_CLASS} of each)"
