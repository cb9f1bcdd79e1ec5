"""Training augmentation: the crop scale sets how far crops zoom in, and thin structures survive as soft targets."""

from __future__ import annotations

import numpy as np
import pytest

from drywall_qa.training.augment import AugmentConfig, augment
from train.__main__ import parse_args


def _line_image() -> tuple[np.ndarray, np.ndarray]:
    """A 640×640 grey image with a 1 px vertical line at the centre, and that line as the mask."""
    image = np.full((640, 640, 3), 128, np.uint8)
    mask = np.zeros((640, 640), bool)
    image[:, 320], mask[:, 320] = 0, True
    return image, mask


def _line_mass_per_row(scale: float, size: int, seed: int) -> float:
    image, mask = _line_image()
    cfg = AugmentConfig(min_scale=scale, max_scale=scale, max_rotation_deg=0.0, rot90=False)
    _, target = augment(image, mask, size, np.random.default_rng(seed), cfg)
    return float(target.sum(dim=1).mean())


@pytest.mark.parametrize("size", [64, 256])  # 10 and 2.5 image pixels per output pixel for the whole image
@pytest.mark.parametrize("seed", [0, 1])
def test_thin_line_survives_as_a_soft_target_and_crop_scale_zooms_in(size: int, seed: int) -> None:
    whole, half = _line_mass_per_row(1.0, size, seed), _line_mass_per_row(0.5, size, seed)
    assert whole == pytest.approx(size / 640, rel=0.15)  # the line's area, kept at any output size
    assert half == pytest.approx(2 * whole, rel=0.15)


def test_crop_scale_option_reaches_the_training_config(tmp_path) -> None:
    common = ["--dataset", "cracks", "--data-root", str(tmp_path), "--output-dir", str(tmp_path / "run")]
    assert parse_args(common).crop_scale == (AugmentConfig.min_scale, AugmentConfig.max_scale)
    assert parse_args([*common, "--crop-scale", "0.4", "0.7"]).crop_scale == (0.4, 0.7)
    for bad in (["0.7", "0.4"], ["0", "0.5"], ["0.5", "1.5"]):
        with pytest.raises(SystemExit):
            parse_args([*common, "--crop-scale", *bad])


@pytest.mark.parametrize("height, width", [(200, 600), (600, 200)])
def test_crops_reach_every_part_of_a_non_square_image(height: int, width: int) -> None:
    image = np.full((height, width, 3), 128, np.uint8)
    far_end = np.zeros((height, width), bool)
    far_end[height - 100:, width - 100:] = True                   # the corner farthest from the origin
    seen = [float(augment(image, far_end, 32, np.random.default_rng(seed))[1].max()) for seed in range(30)]
    assert max(seen) == 1.0
