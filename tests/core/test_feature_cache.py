"""A photo encoded once: more prompts on it reuse its encoded views and give the answers a fresh encoding gives."""

from __future__ import annotations

import numpy as np
import pytest

from drywall_qa.core.backends import load_backend
from drywall_qa.core.backends.feature_cache import FeatureCache
from drywall_qa.core.segmenter import Segmenter


@pytest.fixture(scope="module")
def segmenter(tiny_lite_dir) -> Segmenter:
    return Segmenter(load_backend(tiny_lite_dir))


@pytest.mark.parametrize("tiling", ["off", "on"])
def test_an_added_prompt_reuses_the_encoded_photo_and_answers_as_a_fresh_encoding(segmenter: Segmenter,
                                                                                  tiling: str) -> None:
    image = np.random.default_rng(0).integers(0, 255, (100, 170, 3), dtype=np.uint8)
    cache = FeatureCache()
    segmenter.predict(image, ["segment crack"], tiling=tiling, features=cache)
    kept = len(cache)
    fresh = segmenter.predict(image, ["segment crack", "segment taping area"], tiling=tiling)
    calls: list[int] = []
    handle = segmenter.backend.model.backbone.register_forward_hook(lambda *_: calls.append(1))
    try:
        reused = segmenter.predict(image, ["segment crack", "segment taping area"], tiling=tiling, features=cache)
    finally:
        handle.remove()
    assert calls == [] and cache.hits == kept > 0
    for a, b in zip(reused, fresh):
        np.testing.assert_array_equal(a.probabilities, b.probabilities)


def test_views_past_the_budget_are_encoded_again(segmenter: Segmenter) -> None:
    image = np.random.default_rng(1).integers(0, 255, (100, 170, 3), dtype=np.uint8)
    cache = FeatureCache(budget=1)
    first = segmenter.predict(image, ["segment crack"], tiling="on", features=cache)
    again = segmenter.predict(image, ["segment crack"], tiling="on", features=cache)
    assert len(cache) == cache.hits == cache.nbytes() == 0
    np.testing.assert_array_equal(first[0].probabilities, again[0].probabilities)
