"""drywall-qa-lite behind the backend contract: shapes, one image pass per call, save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drywall_qa.core.backends import load_backend
from drywall_qa.core.backends.base import repeat_features
from drywall_qa.core.backends.lite import LiteBackend, LiteConfig, LiteModel
from drywall_qa.core.postprocess import PostprocessSettings
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.testing.tiny_lite import TINY_LITE


@pytest.fixture(scope="module")
def backend(tiny_lite_dir) -> LiteBackend:
    loaded = load_backend(tiny_lite_dir)
    assert isinstance(loaded, LiteBackend)
    return loaded


def test_logits_at_input_size_for_every_prompt(backend: LiteBackend) -> None:
    pixels = backend.preprocess([np.zeros((50, 80, 3), np.uint8), np.full((64, 64, 3), 200, np.uint8)])
    assert pixels.shape == (2, 3, backend.input_size, backend.input_size)
    features = backend.encode_image(pixels)
    logits = backend.decode(features, backend.encode_prompts(["segment crack", "segment taping area"]))
    assert logits.shape == (2, backend.input_size, backend.input_size)


def test_prompt_changes_the_output(backend: LiteBackend) -> None:
    pixels = backend.preprocess([np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)])
    features = backend.encode_image(pixels)
    crack, taping = backend.decode(tuple(f.repeat(2, 1, 1, 1) for f in features),
                                   backend.encode_prompts(["segment crack", "segment taping area"]))
    assert not torch.allclose(crack, taping)


def test_image_encoded_once_per_call_whatever_the_prompt_count(backend: LiteBackend) -> None:
    calls = []
    handle = backend.model.backbone.register_forward_hook(lambda *_: calls.append(1))
    try:
        predictions = Segmenter(backend).predict(np.zeros((40, 60, 3), np.uint8),
                                                 ["segment crack", "segment wall crack", "segment drywall seam"])
    finally:
        handle.remove()
    assert len(calls) == 1
    assert [p.mask.shape for p in predictions] == [(40, 60)] * 3


def test_paraphrases_embed_closer_than_unrelated_prompts(backend: LiteBackend) -> None:
    crack, hairline, sky = backend.encode_prompts(["segment crack", "segment hairline crack", "segment sky"])
    assert torch.dot(crack, hairline) > torch.dot(crack, sky)


def test_save_and_load_round_trip_keeps_predictions_and_thresholds(backend: LiteBackend, tmp_path) -> None:
    model = LiteModel(LiteConfig(**TINY_LITE))
    LiteBackend(model, backend.text_encoder).save_pretrained(tmp_path)
    PostprocessSettings(thresholds={"segment crack": 0.3}).save_pretrained(tmp_path)
    reloaded = load_backend(tmp_path)
    assert reloaded.settings.thresholds == {"segment crack": 0.3}
    image = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    before = Segmenter(LiteBackend(model.eval(), backend.text_encoder)).predict(image, ["segment crack"])[0]
    after = Segmenter(reloaded).predict(image, ["segment crack"])[0]
    torch.testing.assert_close(before.logits, after.logits)
    assert after.threshold == 0.3


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_repeated_features_equal_repeat_interleave_and_keep_their_layout(layout: torch.memory_format) -> None:
    feature = torch.randn(2, 3, 5, 7).contiguous(memory_format=layout)
    (repeated,) = repeat_features((feature,), 3)
    assert torch.equal(repeated, feature.repeat_interleave(3, dim=0))
    assert repeated.is_contiguous(memory_format=layout)


def test_decoding_prompts_in_one_batch_matches_decoding_each_alone(backend: LiteBackend) -> None:
    pixels = backend.preprocess([np.random.default_rng(2).integers(0, 255, (64, 64, 3), dtype=np.uint8)])
    prompts = ["segment crack", "segment taping area", "segment sky"]
    features, embeddings = backend.encode_image(pixels), backend.encode_prompts(prompts)
    together = backend.decode(repeat_features(features, len(prompts)), embeddings)
    alone = torch.cat([backend.decode(features, embeddings[i:i + 1]) for i in range(len(prompts))])
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-4)  # batched convolutions round differently
