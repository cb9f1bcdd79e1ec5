"""The demo images in ``examples/``: they are what ``make_examples.py`` draws, and the bundled model finds the joints
and cracks drawn in them (what a first-time user and a stakeholder demo see)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from drywall_qa.core.segmenter import Segmenter
from drywall_qa.data.coco import DATASETS
from examples.make_examples import EXAMPLES, HERE, render

TAPING, CRACK = DATASETS["taping"].canonical, DATASETS["cracks"].canonical


@pytest.fixture(scope="module")
def bundled() -> Segmenter:
    return Segmenter.load()


@pytest.mark.parametrize("name", EXAMPLES)
def test_committed_images_are_what_the_script_draws(name: str) -> None:
    committed = np.asarray(Image.open(HERE / f"{name}.png").convert("RGB"))
    np.testing.assert_array_equal(committed, np.asarray(render(name).image))


def _near(truth: np.ndarray, pixels: float = 60) -> np.ndarray:
    """Pixels within ``pixels`` of the drawn structure (none when nothing was drawn)."""
    return ndimage.distance_transform_edt(~truth) <= pixels if truth.any() else np.zeros_like(truth)


@pytest.mark.parametrize("name", [n for n, spec in EXAMPLES.items() if spec.joints])
def test_bundled_model_finds_the_board_joints(bundled: Segmenter, name: str) -> None:
    example = render(name)
    taping, crack = bundled.predict(np.asarray(example.image), [TAPING, CRACK])
    mask = taping.mask.astype(bool)
    assert (mask & example.joints).sum() >= 0.6 * example.joints.sum()
    assert taping.presence > 0.5
    # the crack prompt stays on the drawn crack, not on the joint
    assert crack.mask[~_near(example.cracks)].mean() < 0.02


@pytest.mark.parametrize("name", [n for n, spec in EXAMPLES.items() if spec.crack_steps])
def test_bundled_model_finds_the_cracks(bundled: Segmenter, name: str) -> None:
    example = render(name)
    (crack,) = bundled.predict(np.asarray(example.image), [CRACK])
    mask = crack.mask.astype(bool)
    assert (mask & example.cracks).sum() >= 0.8 * example.cracks.sum()
    assert (mask & _near(example.cracks)).sum() >= 0.8 * mask.sum()
    assert crack.presence > 0.5


def test_bundled_model_finds_nothing_on_the_plain_wall(bundled: Segmenter) -> None:
    predictions = bundled.predict(np.asarray(render("plain_wall").image), [TAPING, CRACK])
    assert all(p.coverage < 0.005 for p in predictions)
