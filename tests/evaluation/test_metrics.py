"""Metrics against hand-computed cases, empty-mask conventions and algebraic properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.morphology import skeletonize

from drywall_qa.evaluation.metrics import (
    ImageScores,
    ThresholdSweep,
    aggregate,
    bce_with_logits,
    crack_score_names,
    crack_scores,
    mean_width,
    score_image,
    score_masks,
    skeleton,
    soft_target,
    sweep_thresholds,
)


def _mask(rows: list[str]) -> np.ndarray:
    return np.array([[c == "#" for c in row] for row in rows])


def test_score_masks_hand_computed() -> None:
    pred = _mask(["##.", "..."])
    truth = _mask([".##", "..."])
    # TP = 1, |pred| = 2, |truth| = 2, union = 3
    assert score_masks(pred, truth) == pytest.approx((1 / 3, 2 / 4, 1 / 2, 1 / 2))


def test_score_masks_unequal_areas() -> None:
    pred = _mask(["####", "####"])
    truth = _mask(["#...", "#..."])
    # TP = 2, |pred| = 8, |truth| = 2, union = 8
    assert score_masks(pred, truth) == pytest.approx((2 / 8, 4 / 10, 2 / 8, 1.0))


@pytest.mark.parametrize(("pred", "truth", "expected"), [
    (["..", ".."], ["..", ".."], (1.0, 1.0, 1.0, 1.0)),   # nothing to find, nothing found
    (["..", ".."], ["#.", ".."], (0.0, 0.0, 1.0, 0.0)),   # empty prediction: no false positives
    (["#.", ".."], ["..", ".."], (0.0, 0.0, 0.0, 1.0)),   # empty truth: nothing missed
])
def test_score_masks_empty_conventions(pred: list[str], truth: list[str], expected: tuple) -> None:
    assert score_masks(_mask(pred), _mask(truth)) == expected


def test_score_masks_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="shape"):
        score_masks(np.zeros((2, 2), bool), np.zeros((2, 3), bool))


def test_soft_target_is_area_fraction() -> None:
    truth = np.zeros((4, 4), bool)
    truth[:, 0] = True          # a 1-px vertical line
    truth[0, 3] = True          # a single pixel
    target = soft_target(truth, (2, 2))
    assert target.numpy() == pytest.approx(np.array([[0.5, 0.25], [0.5, 0.0]]))


def test_soft_target_upscale_repeats_cells() -> None:
    truth = _mask(["#.", ".."])
    assert soft_target(truth, (4, 4)).numpy() == pytest.approx(np.kron(truth, np.ones((2, 2))).astype(float))


def test_bce_with_logits_hand_computed() -> None:
    logits = torch.tensor([[2.0, -1.0]])
    truth = _mask(["##..", "##.."])            # → target [[1, 0]] at the logits' size
    expected = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0))) / 2
    assert bce_with_logits(logits, truth) == pytest.approx(expected)


def test_bce_with_soft_target() -> None:
    truth = _mask(["#.", ".."])               # one logit cell, target 0.25
    x = 0.7
    expected = -(0.25 * math.log(1 / (1 + math.exp(-x))) + 0.75 * math.log(1 - 1 / (1 + math.exp(-x))))
    assert bce_with_logits(torch.tensor([[x]]), truth) == pytest.approx(expected)


def test_bce_rejects_batched_logits() -> None:
    with pytest.raises(ValueError, match="2-D"):
        bce_with_logits(torch.zeros(1, 2, 2), np.zeros((2, 2), bool))


def test_score_image_collects_areas() -> None:
    pred, truth = _mask(["##.", "#.."]), _mask([".#.", "##."])
    scores = score_image(pred, truth, torch.zeros(1, 1))
    assert (scores.pred_area, scores.true_area, scores.intersection, scores.union) == (3, 3, 2, 4)
    assert scores.iou == pytest.approx(2 / 4)
    assert scores.loss == pytest.approx(math.log(2))   # zero logits: ln 2 whatever the target


def test_mean_width_of_strips_a_disk_and_nothing() -> None:
    strip = np.zeros((60, 300), bool)
    strip[20:23, 10:290] = True                                       # 3 px wide, 280 px long
    assert mean_width(strip) == pytest.approx(2 * 3 * 280 / (2 * 280 + 2 * 3))
    line = np.zeros((10, 200), bool)
    line[5, 50:150] = True
    assert mean_width(line) == pytest.approx(1, rel=0.02)
    yy, xx = np.mgrid[:101, :101]
    disk = (yy - 50) ** 2 + (xx - 50) ** 2 <= 40 ** 2                  # convex: edge perimeter = bounding box's
    assert mean_width(disk) == pytest.approx(2 * disk.sum() / (4 * 81))
    assert mean_width(np.zeros((5, 5), bool)) == 0.0
    assert mean_width(np.ones((4, 6), bool)) == pytest.approx(2 * 24 / 20)  # the image border bounds it


def _scores(iou: float, inter: int, pred: int, true: int, loss: float = 0.0,
            precision: float = 1.0, recall: float = 1.0) -> ImageScores:
    return ImageScores(iou=iou, dice=2 * iou / (1 + iou), precision=precision, recall=recall, loss=loss,
                       pred_area=pred, true_area=true, intersection=inter)


def test_aggregate_means_and_pooled_iou() -> None:
    small = _scores(1 / 3, inter=1, pred=2, true=2, loss=0.2, precision=0.5, recall=0.5)
    large = _scores(1.0, inter=4, pred=4, true=4, loss=0.4)
    result = aggregate([small, large])
    assert result["miou"] == pytest.approx((1 / 3 + 1) / 2)
    assert result["dice"] == pytest.approx((0.5 + 1) / 2)
    assert result["pooled_iou"] == pytest.approx((1 + 4) / (3 + 4))
    assert result["loss"] == pytest.approx(0.3)
    assert (result["precision"], result["recall"]) == pytest.approx((0.75, 0.75))


def test_aggregate_all_empty_is_perfect() -> None:
    result = aggregate([_scores(1.0, 0, 0, 0), _scores(1.0, 0, 0, 0)])
    assert result["pooled_iou"] == result["miou"] == result["dice"] == 1.0


def test_aggregate_rejects_nothing() -> None:
    with pytest.raises(ValueError):
        aggregate([])


def test_sweep_hand_computed() -> None:
    prob = np.array([[0.12, 0.62], [0.91, 0.33]], np.float32)
    truth = _mask([".#", "#."])
    result = sweep_thresholds([(prob, truth)], thresholds=[0.2, 0.5, 0.95])
    # 0.2: pred = {0.62, 0.91, 0.33} → 2/3 ; 0.5: pred = truth → 1 ; 0.95: pred empty → 0
    assert result["miou"] == pytest.approx([2 / 3, 1.0, 0.0])
    assert result["dice"] == pytest.approx([0.8, 1.0, 0.0])
    assert result["best_threshold"] == 0.5


def test_sweep_threshold_is_strict_like_segmenter() -> None:
    prob = np.array([[0.5, 0.75]], np.float32)
    truth = _mask(["##"])
    result = sweep_thresholds([(prob, truth)], thresholds=[0.5, 0.75])
    assert result["miou"] == pytest.approx([0.5, 0.0])     # a pixel exactly at the threshold is background


def test_soft_target_support_matches_resize_mask() -> None:
    from drywall_qa.core.imaging import resize_mask

    rng = np.random.default_rng(0)
    truth = rng.random((64, 48)) > 0.97
    assert np.array_equal(soft_target(truth, (16, 12)).numpy() > 0, resize_mask(truth, (16, 12)))


def test_sweep_pools_over_images() -> None:
    truth = _mask(["##", "##"])
    full, half = np.full((2, 2), 0.9), np.array([[0.9, 0.9], [0.1, 0.1]])
    result = sweep_thresholds([(full, truth), (half, truth)], thresholds=[0.5])
    assert result["miou"] == pytest.approx([(1 + 0.5) / 2])
    assert result["pooled_iou"] == pytest.approx([(4 + 2) / (4 + 4)])


def test_sweep_default_grid() -> None:
    sweep = ThresholdSweep()
    assert sweep.thresholds[0] == pytest.approx(0.05) and sweep.thresholds[-1] == pytest.approx(0.95)
    assert len(sweep.thresholds) == 19
    with pytest.raises(ValueError):
        sweep.result()


masks = st.integers(1, 6).flatmap(lambda h: st.integers(1, 6).flatmap(
    lambda w: st.tuples(arrays(bool, (h, w)), arrays(bool, (h, w)))))


@settings(max_examples=200, deadline=None)
@given(masks)
def test_iou_dice_properties(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, truth = pair
    iou, dice, precision, recall = score_masks(pred, truth)
    assert 0.0 <= iou <= dice <= 1.0
    assert dice == pytest.approx(2 * iou / (1 + iou))
    swapped = score_masks(truth, pred)
    assert swapped[0] == iou and swapped[1] == dice
    assert swapped[2] == recall and swapped[3] == precision


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(
    arrays(np.float32, (n, n), elements=st.floats(0, 1, width=32)), arrays(bool, (n, n)))))
def test_sweep_matches_thresholded_masks(pair: tuple[np.ndarray, np.ndarray]) -> None:
    prob, truth = pair
    result = sweep_thresholds([(prob, truth)])
    for t, iou, dice in zip(result["thresholds"], result["miou"], result["dice"]):
        expected = score_masks(prob > t, truth)
        assert (iou, dice) == pytest.approx(expected[:2])


def _line(row: int, first: int = 10, last: int = 89, width: int = 1) -> np.ndarray:
    """A horizontal line ``width`` pixels wide centred on ``row``, columns ``first`` to ``last``, in 100×100."""
    mask = np.zeros((100, 100), bool)
    mask[row - width // 2:row + width // 2 + 1, first:last + 1] = True
    return mask


def test_thin_prediction_of_a_wide_annotation_scores_well_on_skeletons() -> None:
    thin, wide = _line(50), _line(50, width=9)
    assert score_masks(thin, wide)[0] == pytest.approx(80 / 720)             # IoU ≈ 0.11
    scores = crack_scores(thin, wide)
    assert scores["cldice"] == pytest.approx(1, abs=0.02)    # the band's skeleton: its centre row, short end spurs
    assert scores["tol_precision_5px"] == scores["tol_recall_5px"] == scores["tol_f1_5px"] == 1.0


def test_offset_lines_match_within_their_distance() -> None:
    truth, shifted = _line(50), _line(53)                                    # every pixel 3 px from the other line
    scores = crack_scores(shifted, truth, tolerances=(2, 3, 5))
    assert scores["cldice"] == 0.0 and score_masks(shifted, truth)[0] == 0.0
    assert scores["tol_f1_2px"] == 0.0
    assert scores["tol_f1_3px"] == scores["tol_f1_5px"] == 1.0               # a distance of exactly d matches


def test_half_a_line_hand_computed() -> None:
    truth, half = _line(50), _line(50, last=49)                              # 80 true pixels, 40 predicted
    scores = crack_scores(half, truth)
    assert scores["cldice"] == pytest.approx(2 * 1 * 0.5 / 1.5)              # precision 1, sensitivity 40/80
    recall = 42 / 80                                                         # columns 10 … 51 lie within 2 px
    assert (scores["tol_precision_2px"], scores["tol_recall_2px"]) == (1.0, recall)
    assert scores["tol_f1_2px"] == pytest.approx(2 * recall / (1 + recall))


@pytest.mark.parametrize(("pred", "truth", "precision", "recall", "expected"), [
    (np.zeros((100, 100), bool), np.zeros((100, 100), bool), 1.0, 1.0, 1.0),   # nothing to find, nothing found
    (np.zeros((100, 100), bool), _line(50), 1.0, 0.0, 0.0),                    # all missed, nothing wrong
    (_line(50), np.zeros((100, 100), bool), 0.0, 1.0, 0.0),                    # all wrong, nothing missed
    (_line(10), _line(80), 0.0, 0.0, 0.0),                                     # disjoint, far apart
])
def test_crack_scores_empty_and_disjoint(pred: np.ndarray, truth: np.ndarray, precision: float, recall: float,
                                         expected: float) -> None:
    scores = crack_scores(pred, truth)
    assert scores["cldice"] == expected == score_masks(pred, truth)[0]
    for d in (2, 5):
        assert (scores[f"tol_precision_{d}px"], scores[f"tol_recall_{d}px"]) == (precision, recall)
        assert scores[f"tol_f1_{d}px"] == expected


def test_crack_score_names_follow_the_tolerances() -> None:
    assert crack_score_names([1]) == ["cldice", "tol_precision_1px", "tol_recall_1px", "tol_f1_1px"]
    assert list(crack_scores(_line(50), _line(50), tolerances=[1])) == crack_score_names([1])


def test_score_image_and_aggregate_carry_crack_scores() -> None:
    thin, wide = _line(50), _line(50, width=9)
    assert score_image(thin, wide, torch.zeros(1, 1)).crack == {}
    scores = [score_image(thin, wide, torch.zeros(1, 1), [5], skeleton(wide)),
              score_image(np.zeros_like(wide), wide, torch.zeros(1, 1), [5])]
    assert scores[0].crack == crack_scores(thin, wide, [5])
    result = aggregate(scores)
    assert result["tol_f1_5px"] == pytest.approx(0.5) and set(crack_score_names([5])) <= set(result)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12).flatmap(lambda h: st.integers(1, 12).flatmap(lambda w: arrays(bool, (h, w)))))
def test_skeleton_within_the_bounding_box_is_skeletonize(mask: np.ndarray) -> None:
    assert np.array_equal(skeleton(mask), skeletonize(mask))


@settings(max_examples=100, deadline=None)
@given(masks)
def test_crack_scores_swap_precision_and_recall(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, truth = pair
    scores, swapped = crack_scores(pred, truth), crack_scores(truth, pred)
    assert swapped["cldice"] == pytest.approx(scores["cldice"]) and 0.0 <= scores["cldice"] <= 1.0
    for d in (2, 5):
        assert swapped[f"tol_precision_{d}px"] == scores[f"tol_recall_{d}px"]
        assert swapped[f"tol_f1_{d}px"] == pytest.approx(scores[f"tol_f1_{d}px"])
