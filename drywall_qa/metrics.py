"""Segmentation scores for one image, their aggregate over a split, and threshold sweeps.

Conventions (all foreground-only, binary masks):

* both masks empty → ``iou = dice = 1`` (nothing to find, nothing found);
* ``precision = TP / (TP + FP)``, ``1.0`` when the prediction is empty (no false positives possible);
* ``recall = TP / (TP + FN)``, ``1.0`` when the ground truth is empty (nothing missed);
* ``pooled_iou`` = Σ intersections / Σ unions over the split, so large objects weigh more than in ``miou``;
* ``mean_width`` of a mask = 2 × area / perimeter (pixel edges), the width of an elongated region such as a crack.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from drywall_qa.shapes import PIXELS, threshold_mask

#: thresholds of a sweep: 0.05, 0.10, …, 0.95
SWEEP_THRESHOLDS = np.round(np.arange(1, 20) * 0.05, 2)


@dataclass(frozen=True)
class ImageScores:
    """Scores of one predicted mask against its ground truth (areas and intersection in pixels)."""

    iou: float
    dice: float
    precision: float
    recall: float
    loss: float
    pred_area: int
    true_area: int
    intersection: int

    @property
    def union(self) -> int:
        return self.pred_area + self.true_area - self.intersection


def _ratio(numerator: float, denominator: float, empty: float = 1.0) -> float:
    return numerator / denominator if denominator else empty


def _check_same_shape(pred: np.ndarray, truth: np.ndarray) -> None:
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {truth.shape} differ in shape")


def score_masks(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float, float]:
    """``(iou, dice, precision, recall)`` of two boolean ``H×W`` masks (conventions in the module docstring)."""
    _check_same_shape(pred, truth)
    pred, truth = pred.astype(bool), truth.astype(bool)
    tp = int(np.count_nonzero(pred & truth))
    pred_area, true_area = int(np.count_nonzero(pred)), int(np.count_nonzero(truth))
    return (_ratio(tp, pred_area + true_area - tp), _ratio(2 * tp, pred_area + true_area),
            _ratio(tp, pred_area), _ratio(tp, true_area))


def mean_width(mask: np.ndarray) -> float:
    """Mean width in pixels of the regions of a boolean ``H×W`` mask: 2 × area / perimeter, the perimeter counted in
    pixel edges between foreground and background (the image border counts as background). A strip of width ``w``
    much longer than wide gives about ``w`` along the axes and up to 30 % less diagonally (a staircase edge is longer
    than the line it draws), so compare a prediction's width with its ground truth's on the same image. An empty
    mask gives 0."""
    padded = np.pad(np.asarray(mask, dtype=bool), 1)
    perimeter = np.count_nonzero(np.diff(padded, axis=0)) + np.count_nonzero(np.diff(padded, axis=1))
    return 2 * float(np.count_nonzero(padded)) / perimeter if perimeter else 0.0


def soft_target(truth: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Ground truth at ``size`` (h, w) as the fraction of each target cell covered by foreground.

    Area averaging (``F.adaptive_avg_pool2d``) keeps a 1-px crack as a small positive target instead of dropping
    it. For integer size ratios its support (cells > 0) is exactly the mask ``imaging.resize_mask`` gives; for
    other ratios (640 → 352) neighbouring cells overlap by one input pixel, so the support can be one cell wider.
    Upscaling (a mask smaller than the logits) repeats cells, like nearest-neighbour.
    """
    mask = torch.as_tensor(np.asarray(truth, dtype=np.float32))[None, None]
    return F.adaptive_avg_pool2d(mask, size)[0, 0]


def bce_with_logits(logits: torch.Tensor, truth: np.ndarray) -> float:
    """Mean binary cross-entropy of native-resolution ``logits (h, w)`` against :func:`soft_target` of ``truth``."""
    logits = logits.detach().float().cpu()
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D (h, w), got shape {tuple(logits.shape)}")
    target = soft_target(truth, tuple(logits.shape))
    return float(F.binary_cross_entropy_with_logits(logits, target))


def score_image(pred: np.ndarray, truth: np.ndarray, logits: torch.Tensor) -> ImageScores:
    """All scores of one prediction: mask metrics at image size, loss on the native logits."""
    iou, dice, precision, recall = score_masks(pred, truth)
    return ImageScores(iou=iou, dice=dice, precision=precision, recall=recall, loss=bce_with_logits(logits, truth),
                       pred_area=int(np.count_nonzero(pred)), true_area=int(np.count_nonzero(truth)),
                       intersection=int(np.count_nonzero(pred.astype(bool) & truth.astype(bool))))


def aggregate(scores: Sequence[ImageScores]) -> dict[str, float]:
    """Split-level scores: means over images of loss/iou/dice/precision/recall, plus the pooled IoU."""
    if not scores:
        raise ValueError("no image scores to aggregate")

    def mean(name: str) -> float:
        return float(np.mean([getattr(s, name) for s in scores]))

    pooled = _ratio(sum(s.intersection for s in scores), sum(s.union for s in scores))
    return {"loss": mean("loss"), "miou": mean("iou"), "dice": mean("dice"), "pooled_iou": pooled,
            "precision": mean("precision"), "recall": mean("recall")}


@dataclass
class ThresholdSweep:
    """Accumulates IoU and Dice at many thresholds, one image at a time, at full resolution.

    Only per-threshold counts are kept, so memory does not grow with the split. A pixel is foreground at
    threshold ``t`` when ``probability > t`` — the same rule as the Segmenter's masks — and the mask then takes
    ``shape`` (:mod:`drywall_qa.shapes`), as the Segmenter's does for a prompt with that output shape.
    """

    thresholds: np.ndarray = field(default_factory=lambda: SWEEP_THRESHOLDS.copy())
    shape: str = PIXELS
    _iou: list[np.ndarray] = field(default_factory=list, init=False)
    _dice: list[np.ndarray] = field(default_factory=list, init=False)
    _intersection: np.ndarray | None = field(default=None, init=False)
    _union: np.ndarray | None = field(default=None, init=False)

    def add(self, probabilities: np.ndarray, truth: np.ndarray) -> None:
        """Add one image: ``probabilities`` and ``truth`` share the shape ``H×W``."""
        _check_same_shape(probabilities, truth)
        truth = truth.astype(bool)
        foreground = probabilities[truth]
        thresholds = self.thresholds.tolist()   # Python floats compare in the map's dtype, as the Segmenter does
        if self.shape == PIXELS:
            tp = np.array([np.count_nonzero(foreground > t) for t in thresholds])
            pred_area = np.array([np.count_nonzero(probabilities > t) for t in thresholds])
        else:
            masks = [threshold_mask(probabilities, t, self.shape) for t in thresholds]
            tp = np.array([np.count_nonzero(mask[truth]) for mask in masks])
            pred_area = np.array([np.count_nonzero(mask) for mask in masks])
        true_area = int(np.count_nonzero(truth))
        union = pred_area + true_area - tp
        with np.errstate(divide="ignore", invalid="ignore"):
            self._iou.append(np.where(union > 0, tp / union, 1.0))
            self._dice.append(np.where(union > 0, 2 * tp / (pred_area + true_area), 1.0))
        self._intersection = tp if self._intersection is None else self._intersection + tp
        self._union = union if self._union is None else self._union + union

    def per_image_iou(self) -> np.ndarray:
        """``[images, thresholds]``: the IoU of every image added, at every threshold."""
        return np.array(self._iou).reshape(len(self._iou), len(self.thresholds))

    def result(self) -> dict[str, list[float] | float]:
        """``{"thresholds", "miou", "dice", "pooled_iou"}`` (lists aligned with thresholds) and ``best_threshold``
        (highest mIoU; the lowest such threshold on ties)."""
        if not self._iou:
            raise ValueError("no images added to the threshold sweep")
        miou = np.mean(self._iou, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            pooled = np.where(self._union > 0, self._intersection / self._union, 1.0)
        return {"thresholds": self.thresholds.tolist(), "miou": miou.tolist(),
                "dice": np.mean(self._dice, axis=0).tolist(), "pooled_iou": pooled.tolist(),
                "best_threshold": float(self.thresholds[int(np.argmax(miou))])}


def sweep_thresholds(pairs: Iterable[tuple[np.ndarray, np.ndarray]],
                     thresholds: Sequence[float] | None = None) -> dict[str, list[float] | float]:
    """Threshold sweep over ``(probabilities, truth)`` pairs; see :class:`ThresholdSweep`."""
    sweep = ThresholdSweep() if thresholds is None else ThresholdSweep(np.asarray(thresholds, dtype=np.float64))
    for probabilities, truth in pairs:
        sweep.add(probabilities, truth)
    return sweep.result()
