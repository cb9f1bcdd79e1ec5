"""Wide shots built from a split: mosaics lay photos side by side, zooms enlarge them; both read as splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from drywall_qa.calibration.scale_choice import SMALLER_INPUT, candidates, choose, input_sides
from drywall_qa.calibration.wide_shots import MosaicSplit, ZoomSplit, calibration_shots, wide_shots
from drywall_qa.core.backends import load_backend
from drywall_qa.core.fusion import SELECT
from drywall_qa.core.tiling import BOTH, TILES, WHOLE, ScalePolicy
from drywall_qa.data.coco import CocoSplit
from tests.helpers import make_split


def test_mosaic_places_each_photo_and_its_mask_in_its_tile(tmp_path: Path) -> None:
    split = CocoSplit(make_split(tmp_path / "s", n=9, size=32))
    mosaic = MosaicSplit(split, 2)
    assert len(mosaic) == 2                          # 9 photos make two 2×2 mosaics; one is left over
    sample = mosaic[1]
    assert sample.image.shape == (64, 64, 3) and sample.mask.shape == (64, 64)
    for index, (top, left, height, width) in zip(mosaic.members(1), mosaic.tile_boxes(1)):
        np.testing.assert_array_equal(sample.image[top:top + height, left:left + width], split[index].image)
        np.testing.assert_array_equal(sample.mask[top:top + height, left:left + width], split[index].mask)


def test_zoom_enlarges_photo_and_mask_together(tmp_path: Path) -> None:
    split = CocoSplit(make_split(tmp_path / "s", n=2, size=32))
    zoomed = ZoomSplit(split, (96, 64))[0]
    assert zoomed.image.shape == (64, 96, 3) and zoomed.mask.shape == (64, 96)
    assert abs(zoomed.mask.mean() - split[0].mask.mean()) < 0.02


def test_each_dataset_gets_its_kind_of_wide_shot(tmp_path: Path) -> None:
    split = CocoSplit(make_split(tmp_path / "s", n=4, size=32))
    assert isinstance(wide_shots("cracks", split), MosaicSplit)
    assert wide_shots("taping", split)[0].mask.shape == (64, 64)


def test_crack_policies_are_chosen_on_smaller_and_larger_structures(tmp_path: Path) -> None:
    split = CocoSplit(make_split(tmp_path / "s", n=4, size=32))
    cracks, taping = calibration_shots("cracks", split), calibration_shots("taping", split)
    assert list(cracks) == ["mosaic 2x2", "zoom x2", "zoom x4"] and list(taping) == ["zoom x2"]
    assert [cracks[name][0].mask.shape for name in cracks] == [(64, 64), (64, 64), (128, 128)]


def test_candidates_and_ties_prefer_the_cheaper_view() -> None:
    policies = candidates(640)
    assert policies[:3] == [ScalePolicy(WHOLE, 640), ScalePolicy(TILES, 640), ScalePolicy(BOTH, 640)]
    assert [p.zoom_out for p in policies[3:]] == [(4,), (2, 4)] and {p.fusion for p in policies[3:]} == {SELECT}
    assert len(candidates(352)) == 7
    policies = policies[:3]
    scores = {"segment crack": {p: 0.5 for p in policies}, "segment taping area": dict(zip(policies, [0.4, 0.6, 0.5]))}
    assert choose(scores) == {"segment crack": policies[0], "segment taping area": policies[1]}


def test_a_smaller_input_is_tried_first_and_wins_within_the_tolerance(tiny_lite_dir: Path) -> None:
    policies = candidates(640, [32, None])
    assert policies[:5] == [ScalePolicy(WHOLE, 640), ScalePolicy(TILES, 640, 32), ScalePolicy(BOTH, 640, 32),
                            ScalePolicy(TILES, 640), ScalePolicy(BOTH, 640)]
    assert [p.input for p in policies[5:]] == [32, None, 32, None]
    policies = policies[:5]
    near = dict(zip(policies, [0.3, 0.498, 0.4, 0.5, 0.4]))
    far = dict(zip(policies, [0.3, 0.49, 0.4, 0.5, 0.4]))
    assert choose({"near": near, "far": far}, tolerance=0.005) == {"near": policies[1], "far": policies[3]}
    backend = load_backend(tiny_lite_dir, "cpu")
    assert input_sides(backend) == [None]                  # the tiny model's own 64 px is below SMALLER_INPUT
    backend.resize_input(SMALLER_INPUT * 2)
    assert input_sides(backend) == [SMALLER_INPUT, None]
