"""Output shapes: box filling, sweeps in a shape, the calibration's choice of shape, and the Segmenter and the
Inspect tab applying a checkpoint's stored shapes."""

from __future__ import annotations

import numpy as np
import pytest

from drywall_qa.app.inspect.views import InspectResult
from drywall_qa.calibration.calibrate import choose_outputs, held_out_miou
from drywall_qa.core.backends import load_backend
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.core.shapes import BOXES, PIXELS, shape_mask, threshold_mask
from drywall_qa.data.coco import source_group
from drywall_qa.evaluation.metrics import ThresholdSweep, score_masks


def test_boxes_fill_each_connected_region_to_its_bounding_box() -> None:
    mask = np.zeros((20, 30), bool)
    mask[2, 2] = mask[3, 3] = mask[4, 5] = True      # (2,2)-(3,3) touch diagonally: one region; (4,5) its own
    mask[10:12, 20] = mask[15, 25] = True
    boxed = shape_mask(mask, BOXES)
    expected = np.zeros_like(mask)
    expected[2:4, 2:4] = expected[4, 5] = expected[10:12, 20] = expected[15, 25] = True
    np.testing.assert_array_equal(boxed, expected)
    assert shape_mask(mask, PIXELS) is mask
    assert not shape_mask(np.zeros((5, 5), bool), BOXES).any()
    with pytest.raises(ValueError, match="unknown output shape 'blob'"):
        shape_mask(mask, "blob")


def _strip_in_box() -> tuple[np.ndarray, np.ndarray]:
    """Truth: a box. Probabilities: high on the box's two diagonals only, so only ``boxes`` recovers the truth."""
    truth = np.zeros((40, 40), bool)
    truth[5:25, 5:25] = True
    probabilities = np.full((40, 40), 0.05, np.float32)
    diagonal = np.arange(5, 25)
    probabilities[diagonal, diagonal] = probabilities[diagonal, 29 - diagonal] = 0.9
    return probabilities, truth


def test_sweep_in_a_shape_scores_the_shaped_masks() -> None:
    probabilities, truth = _strip_in_box()
    sweep = ThresholdSweep(np.array([0.1, 0.5, 0.95]), shape=BOXES)
    sweep.add(probabilities, truth)
    result = sweep.result()
    for t, miou in zip(result["thresholds"], result["miou"]):
        assert miou == pytest.approx(score_masks(threshold_mask(probabilities, t, BOXES), truth)[0])
    assert result["miou"][1] == 1.0 and result["best_threshold"] == 0.1


def test_calibration_chooses_boxes_for_box_truth_and_pixels_otherwise() -> None:
    probabilities, box_truth = _strip_in_box()
    sweeps = {}
    for prompt, truth in (("box prompt", box_truth), ("line prompt", probabilities > 0.5)):
        sweeps[prompt] = {shape: ThresholdSweep(shape=shape) for shape in (PIXELS, BOXES)}
        for sweep in sweeps[prompt].values():
            sweep.add(probabilities, truth)
    chosen = choose_outputs(sweeps)
    assert chosen["box prompt"]["shape"] == BOXES and chosen["box prompt"]["miou"] == 1.0
    assert chosen["line prompt"]["shape"] == PIXELS and chosen["line prompt"]["miou"] == 1.0
    assert chosen["box prompt"]["miou_by_shape"][PIXELS] < 0.3


def _sweeps(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, ThresholdSweep]:
    sweeps = {shape: ThresholdSweep(shape=shape) for shape in (PIXELS, BOXES)}
    for probabilities, truth in pairs:
        for sweep in sweeps.values():
            sweep.add(probabilities, truth)
    return sweeps


def test_held_out_miou_matches_the_chosen_miou_when_every_image_agrees() -> None:
    probabilities, truth = _strip_in_box()
    sweeps = _sweeps([(probabilities, truth)] * 6)
    assert held_out_miou(sweeps) == pytest.approx(choose_outputs({"p": sweeps})["p"]["miou"])
    assert np.isnan(held_out_miou(_sweeps([(probabilities, truth)])))


def test_held_out_miou_exposes_a_choice_fitted_to_noise() -> None:
    rng = np.random.default_rng(0)
    maps = [rng.random((12, 12)) for _ in range(10)]
    pairs = [(m, m > t) for m, t in zip(maps, rng.uniform(0.1, 0.9, len(maps)))]  # each image has its own best
    sweeps = _sweeps(pairs)
    chosen = choose_outputs({"p": sweeps})["p"]
    assert chosen["held_out_miou"] == held_out_miou(sweeps)
    assert held_out_miou(sweeps) < chosen["miou"] - 0.01


def test_segmenter_and_inspect_tab_apply_the_stored_shape(tiny_lite_dir) -> None:
    backend = load_backend(tiny_lite_dir)
    backend.settings.shapes = {"segment crack": BOXES}
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    crack, seam = Segmenter(backend).predict(image, ["segment crack", "segment seam"], threshold=0.5)
    assert (crack.shape, seam.shape) == (BOXES, PIXELS)
    np.testing.assert_array_equal(crack.mask, shape_mask(crack.probabilities > 0.5, BOXES))
    np.testing.assert_array_equal(seam.mask, seam.probabilities > 0.5)
    result = InspectResult(image, "x", "m", ["segment crack", "segment seam"],
                           [crack.probabilities, seam.probabilities], [0.5, 0.5], 1.0, [0.5, 0.5], [BOXES, PIXELS])
    for threshold in (None, 0.3):
        t = 0.5 if threshold is None else threshold
        boxed, plain = result.masks(threshold)
        np.testing.assert_array_equal(boxed, shape_mask(crack.probabilities > t, BOXES))
        np.testing.assert_array_equal(plain, seam.probabilities > t)


def test_held_out_halves_keep_a_source_photos_crops_together() -> None:
    rng = np.random.default_rng(1)
    maps = [rng.random((12, 12)) for _ in range(8)]
    pairs = [(m, m > t) for m, t in zip(maps, rng.uniform(0.1, 0.9, len(maps)))]  # each photo has its own best
    sweeps = _sweeps([pair for pair in pairs for _ in range(3)])                   # three crops of each photo
    groups = [f"photo{i}_jpg" for i in range(len(pairs)) for _ in range(3)]
    leaky, grouped = held_out_miou(sweeps), held_out_miou(sweeps, groups)
    assert grouped < leaky - 0.01               # crops on both sides of a split flatter the held-out score
    assert np.isnan(held_out_miou(sweeps, ["one photo"] * len(groups)))


def test_source_group_is_the_name_before_roboflows_hash() -> None:
    assert source_group("2000x1500_71_resized_jpg.rf.5174c8a5.jpg") == "2000x1500_71_resized_jpg"
    assert source_group("wall.png") == "wall.png" and source_group(".rf.x.jpg") == ".rf.x.jpg"
