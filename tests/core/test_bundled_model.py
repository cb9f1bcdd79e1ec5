"""The shipped drywall-qa-lite checkpoint: it loads offline as the default, stays small, reproduces its recorded
predictions, and still segments real validation images."""

from __future__ import annotations

import numpy as np
import pytest

from drywall_qa.core.backends import BUNDLED_DIR
from drywall_qa.core.backends.lite import LiteBackend
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.data.coco import DATASETS, CocoSplit, split_dir
from tests.golden.make_golden import GOLDEN, PROMPTS, predict
from tests.helpers import evaluate_to_dict


@pytest.fixture(scope="module")
def bundled() -> Segmenter:
    return Segmenter.load()


def test_default_model_is_the_bundled_lite_checkpoint(bundled: Segmenter) -> None:
    assert isinstance(bundled.backend, LiteBackend)
    assert bundled.backend.model.config.name_or_path == str(BUNDLED_DIR)
    assert bundled.name == "drywall-qa-lite (bundled)"  # not this machine's path, in the UI and in reports


def test_shipped_files_are_small_and_documented() -> None:
    weights = BUNDLED_DIR / "model.safetensors"
    assert weights.stat().st_size <= 25 * 2**20
    card = (BUNDLED_DIR / "README.md").read_text()
    assert "CC BY 4.0" in card and "drywall-qa train" in card


def test_thresholds_were_chosen_for_every_dataset_prompt(bundled: Segmenter) -> None:
    thresholds = bundled.backend.settings.thresholds
    assert set(PROMPTS) <= set(thresholds)
    assert all(0 < t < 1 for t in thresholds.values())


def test_golden_predictions_on_generated_images(bundled: Segmenter) -> None:
    golden = np.load(GOLDEN)
    current = predict(bundled)
    assert set(current) == set(golden.files)
    for key, probabilities in current.items():
        np.testing.assert_allclose(probabilities, golden[key], atol=2e-3, err_msg=key)


@pytest.mark.parametrize("dataset", ["taping", "cracks"])
def test_segments_real_validation_images(bundled: Segmenter, data_root, dataset: str) -> None:
    split = CocoSplit(split_dir(data_root, dataset, "valid"))
    canonical = DATASETS[dataset].canonical
    other = next(spec.canonical for name, spec in DATASETS.items() if name != dataset)
    metrics = evaluate_to_dict(bundled, split, [canonical], limit=12)
    # far below the measured full-split scores (model card), far above an untrained or mis-wired model
    assert metrics["prompts"][canonical]["miou"] > 0.3
    areas = [bundled.predict(split.load_image(i), [other])[0].coverage for i in range(12)]
    assert np.mean(areas) < 0.05
