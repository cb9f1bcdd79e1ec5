"""Training augmentation: the crop scale sets how far crops zoom in, and thin structures survive as soft targets."""

from __future__ import annotations

import numpy as np
import pytest

from drywall_qa.cli.train import parse_args
from drywall_qa.training.augment import AugmentConfig, augment, crop_fraction


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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_crop_above_one_zooms_out_over_mirrored_copies(seed: int) -> None:
    image, mask = _line_image()
    cfg = AugmentConfig(min_scale=2.0, max_scale=2.0, max_rotation_deg=0.0, rot90=False)
    _, target = augment(image, mask, 128, np.random.default_rng(seed), cfg)
    profile = target.sum(dim=0).numpy() / 128                     # mass per row, column by column
    lines = np.split(profile, np.flatnonzero(profile < 1e-3))
    masses = [float(line.sum()) for line in lines if line.sum() > 0.05]
    assert len(masses) == 2                                        # the line and its mirror image, 640 px apart
    assert masses == pytest.approx([128 / 1280] * 2, rel=0.2)      # each half as wide as in the whole image


def test_log_scale_draws_zoom_in_and_zoom_out_alike() -> None:
    rng = np.random.default_rng(0)
    cfg = AugmentConfig(min_scale=0.25, max_scale=4.0, log_scale=True)
    fractions = np.array([crop_fraction(rng, cfg) for _ in range(2000)])
    assert 0.25 <= fractions.min() and fractions.max() <= 4.0
    assert np.mean(fractions < 1) == pytest.approx(0.5, abs=0.05)
    assert np.mean(fractions < 0.5) == pytest.approx(0.25, abs=0.05)


def test_crop_scale_option_reaches_the_training_config(tmp_path) -> None:
    common = ["--dataset", "cracks", "--data-root", str(tmp_path), "--output-dir", str(tmp_path / "run")]
    assert parse_args(common).crop_scale == (AugmentConfig.min_scale, AugmentConfig.max_scale)
    assert parse_args([*common, "--crop-scale", "0.4", "0.7"]).crop_scale == (0.4, 0.7)
    assert parse_args([*common, "--crop-scale", "0.25", "4", "--log-crop-scale"]).log_crop_scale
    for bad in (["0.7", "0.4"], ["0", "0.5"], ["0.5", "4.5"]):
        with pytest.raises(SystemExit):
            parse_args([*common, "--crop-scale", *bad])


@pytest.mark.parametrize("height, width", [(200, 600), (600, 200)])
def test_crops_reach_every_part_of_a_non_square_image(height: int, width: int) -> None:
    image = np.full((height, width, 3), 128, np.uint8)
    far_end = np.zeros((height, width), bool)
    far_end[height - 100:, width - 100:] = True                   # the corner farthest from the origin
    seen = [float(augment(image, far_end, 32, np.random.default_rng(seed))[1].max()) for seed in range(30)]
    assert max(seen) == 1.0
