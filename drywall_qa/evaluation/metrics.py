"""Segmentation scores for one image, their aggregate over a split, and threshold sweeps.

Conventions (all foreground-only, binary masks):

* both masks empty → ``iou = dice = 1`` (nothing to find, nothing found);
* ``precision = TP / (TP + FP)``, ``1.0`` when the prediction is empty (no false positives possible);
* ``recall = TP / (TP + FN)``, ``1.0`` when the ground truth is empty (nothing missed);
* ``pooled_iou`` = Σ intersections / Σ unions over the split, so large objects weigh more than in ``miou``;
* ``mean_width`` of a mask = 2 × area / perimeter (pixel edges), the width of an elongated region such as a crack.

Crack-aware scores compare skeletons (one-pixel centrelines, scikit-image's ``skeletonize``), so a thin prediction of
a wide annotation is not penalised for its width:

* ``cldice`` (Shit et al., CVPR 2021) = harmonic mean of topology precision (fraction of the predicted skeleton inside
  the true mask) and topology sensitivity (fraction of the true skeleton inside the predicted mask);
* ``tol_precision_<d>px`` = fraction of the predicted skeleton within ``d`` pixels of the true skeleton,
  ``tol_recall_<d>px`` the reverse, ``tol_f1_<d>px`` their harmonic mean (the relaxed matching of DeepCrack / FPHBN
  at a fixed threshold, distances from SciPy's Euclidean distance transform);
* a fraction of an empty skeleton is 1, a harmonic mean with a 0 is 0: both masks empty score 1, one empty scores 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import distance_transform_edt
from skimage.morphology import skeletonize

from drywall_qa.core.shapes import PIXELS, threshold_mask

#: thresholds of a sweep: 0.05, 0.10, …, 0.95
SWEEP_THRESHOLDS = np.round(np.arange(1, 20) * 0.05, 2)
#: distances in pixels at which predicted and true skeletons count as matched, by default
TOLERANCES = (2, 5)


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
    crack: dict[str, float] = field(default_factory=dict)   # crack_scores, when asked for

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


def score_image(pred: np.ndarray, truth: np.ndarray, logits: torch.Tensor, tolerances: Sequence[int] | None = None,
                truth_skeleton: np.ndarray | None = None) -> ImageScores:
    """All scores of one prediction: mask metrics at image size, loss on the native logits, and with ``tolerances``
    the :func:`crack_scores` (``truth_skeleton`` saves recomputing the truth's skeleton for each prompt)."""
    iou, dice, precision, recall = score_masks(pred, truth)
    crack = {} if tolerances is None else crack_scores(pred, truth, tolerances, truth_skeleton)
    return ImageScores(iou=iou, dice=dice, precision=precision, recall=recall, loss=bce_with_logits(logits, truth),
                       pred_area=int(np.count_nonzero(pred)), true_area=int(np.count_nonzero(truth)),
                       intersection=int(np.count_nonzero(pred.astype(bool) & truth.astype(bool))), crack=crack)


def _bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, slice] | None:
    """The slices of the smallest box holding every foreground pixel, grown by ``margin``; None for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return None
    return (slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
            slice(max(cols[0] - margin, 0), cols[-1] + margin + 1))


def skeleton(mask: np.ndarray) -> np.ndarray:
    """The one-pixel-wide centreline of a boolean ``H×W`` mask (scikit-image's ``skeletonize``), computed within the
    mask's bounding box grown by one background pixel, which gives the same skeleton faster."""
    mask = np.asarray(mask, dtype=bool)
    result = np.zeros_like(mask)
    box = _bounding_box(mask, margin=1)
    if box is not None:
        result[box] = skeletonize(mask[box])
    return result


def crack_score_names(tolerances: Sequence[int]) -> list[str]:
    """The keys of :func:`crack_scores` at ``tolerances``, in order."""
    return ["cldice", *(f"tol_{kind}_{d}px" for d in tolerances for kind in ("precision", "recall", "f1"))]


def _harmonic_mean(a: float, b: float) -> float:
    return 2 * a * b / (a + b) if a + b else 0.0


def _skeleton_distances(pred_skeleton: np.ndarray, true_skeleton: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each predicted skeleton pixel the distance to the nearest true one, and the reverse (infinite when the
    other skeleton is empty). The distance transforms run within the skeletons' joint bounding box: every pixel
    asked about, and every pixel it may be nearest to, lies inside it."""
    if not (pred_skeleton.any() and true_skeleton.any()):
        return (np.full(np.count_nonzero(pred_skeleton), np.inf), np.full(np.count_nonzero(true_skeleton), np.inf))
    box = _bounding_box(pred_skeleton | true_skeleton)
    pred, true = pred_skeleton[box], true_skeleton[box]
    return distance_transform_edt(~true)[pred], distance_transform_edt(~pred)[true]


def crack_scores(pred: np.ndarray, truth: np.ndarray, tolerances: Sequence[int] = TOLERANCES,
                 truth_skeleton: np.ndarray | None = None) -> dict[str, float]:
    """clDice and the tolerance precision, recall and F1 at each distance of ``tolerances`` (pixels) of two boolean
    ``H×W`` masks, keyed by :func:`crack_score_names` (definitions in the module docstring)."""
    _check_same_shape(pred, truth)
    pred, truth = pred.astype(bool), truth.astype(bool)
    pred_skeleton = skeleton(pred)
    true_skeleton = skeleton(truth) if truth_skeleton is None else truth_skeleton
    topology_precision = _ratio(np.count_nonzero(pred_skeleton & truth), np.count_nonzero(pred_skeleton))
    topology_sensitivity = _ratio(np.count_nonzero(true_skeleton & pred), np.count_nonzero(true_skeleton))
    scores = {"cldice": _harmonic_mean(topology_precision, topology_sensitivity)}
    to_true, to_pred = _skeleton_distances(pred_skeleton, true_skeleton)
    for d in tolerances:
        precision = _ratio(np.count_nonzero(to_true <= d), to_true.size)
        recall = _ratio(np.count_nonzero(to_pred <= d), to_pred.size)
        scores.update({f"tol_precision_{d}px": precision, f"tol_recall_{d}px": recall,
                       f"tol_f1_{d}px": _harmonic_mean(precision, recall)})
    return {name: float(value) for name, value in scores.items()}


def aggregate(scores: Sequence[ImageScores]) -> dict[str, float]:
    """Split-level scores: means over images of loss/iou/dice/precision/recall and of the crack scores the images
    carry, plus the pooled IoU."""
    if not scores:
        raise ValueError("no image scores to aggregate")

    def mean(name: str) -> float:
        return float(np.mean([getattr(s, name) for s in scores]))

    pooled = _ratio(sum(s.intersection for s in scores), sum(s.union for s in scores))
    crack = {name: float(np.mean([s.crack[name] for s in scores])) for name in scores[0].crack}
    return {"loss": mean("loss"), "miou": mean("iou"), "dice": mean("dice"), "pooled_iou": pooled,
            "precision": mean("precision"), "recall": mean("recall"), **crack}


@dataclass
class ThresholdSweep:
    """Accumulates IoU and Dice at many thresholds, one image at a time, at full resolution.

    Only per-threshold counts are kept, so memory does not grow with the split. A pixel is foreground at
    threshold ``t`` when ``probability > t`` — the same rule as the Segmenter's masks — and the mask then takes
    ``shape`` (:mod:`drywall_qa.core.shapes`), as the Segmenter's does for a prompt with that output shape.
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
