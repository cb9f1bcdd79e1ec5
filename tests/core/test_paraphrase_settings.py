"""A prompt without tuned settings that paraphrases a calibrated one uses that prompt's threshold, mask shape and
presence calibration; unrelated prompts keep the defaults (checked with the shipped all-MiniLM-L6-v2 encoder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drywall_qa.app.inspect.tab import InspectForm, InspectTab
from drywall_qa.app.models import ModelCache
from drywall_qa.core.backends import load_backend
from drywall_qa.core.postprocess import DEFAULT_THRESHOLD, PostprocessSettings
from drywall_qa.core.presence import presence_logit, presence_probability
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.core.shapes import BOXES, PIXELS, threshold_mask
from drywall_qa.data.coco import DATASETS
from drywall_qa.training.samples import DISTRACTOR_PROMPTS
from drywall_qa.training.validation import UNRELATED_PROMPTS

REGISTERED = [p for spec in DATASETS.values() for p in spec.prompts]


@pytest.fixture
def segmenter(tiny_lite_dir: Path) -> Segmenter:
    backend = load_backend(tiny_lite_dir)
    backend.settings = PostprocessSettings({p: 0.3 for p in REGISTERED},
                                           {p: BOXES if "crack" not in p else PIXELS for p in REGISTERED},
                                           {p: (2.0, 1.0) for p in REGISTERED})
    return Segmenter(backend)


def test_a_paraphrase_uses_the_settings_of_the_prompt_it_paraphrases(segmenter: Segmenter) -> None:
    image = np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    paraphrase, own, other = segmenter.predict(image, ["segment joint tape", "segment joint/tape", "segment sky"])
    assert (paraphrase.settings_from, paraphrase.threshold, paraphrase.shape) == ("segment joint/tape", 0.3, BOXES)
    assert paraphrase.borrowed_settings and not own.borrowed_settings and own.settings_from == "segment joint/tape"
    np.testing.assert_array_equal(paraphrase.mask, threshold_mask(paraphrase.probabilities, 0.3, BOXES))
    assert paraphrase.presence == pytest.approx(presence_probability(presence_logit(paraphrase.logits), (2.0, 1.0)))
    assert (other.settings_from, other.threshold, other.shape) == (None, DEFAULT_THRESHOLD, PIXELS)
    assert other.presence == pytest.approx(presence_probability(presence_logit(other.logits), None))
    explicit, = segmenter.predict(image, ["segment joint tape"], threshold=0.6)
    assert (explicit.threshold, explicit.shape) == (0.6, BOXES)   # an explicit threshold still wins


@pytest.mark.parametrize("prompt", [*UNRELATED_PROMPTS, *DISTRACTOR_PROMPTS, "segment wall", "segment hole"])
def test_unrelated_prompts_keep_the_defaults(segmenter: Segmenter, prompt: str) -> None:
    assert segmenter.settings_source(prompt) is None


@pytest.mark.parametrize("prompt, source", [("segment hairline crack", "segment crack"),
                                            ("segment the crack in the wall", "segment wall crack"),
                                            ("segment taping", "segment taping area"),
                                            ("segment the seams between drywall boards", "segment drywall seam")])
def test_paraphrases_find_their_calibrated_prompt(segmenter: Segmenter, prompt: str, source: str) -> None:
    assert segmenter.settings_source(prompt) == source


def test_without_calibrated_prompts_nothing_is_borrowed(tiny_lite_dir: Path) -> None:
    assert Segmenter(load_backend(tiny_lite_dir)).settings_source("segment joint tape") is None


def test_inspect_tab_says_whose_settings_a_paraphrase_uses(segmenter: Segmenter, tmp_path: Path) -> None:
    photo = tmp_path / "wall.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(photo)
    tab = InspectTab(ModelCache(device="cpu", loader=lambda key, device: segmenter), [])
    status, *_, key = tab.run(InspectForm(model="paraphrase-model", image=str(photo), selected=["segment joint tape"]))
    result = tab.results.get(key)
    assert "uses the tuned threshold and mask shape of 'segment joint/tape'" in status
    assert result.thresholds(None) == [0.3] and result.shapes == [BOXES]


def test_clipseg_never_borrows_settings(tiny_clipseg_dir: Path) -> None:
    backend = load_backend(tiny_clipseg_dir)
    backend.settings.thresholds = {"segment joint/tape": 0.3}
    assert Segmenter(backend).settings_source("segment joint tape") is None   # CLIP's similarities were not measured
