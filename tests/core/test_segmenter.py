"""Segmenter on a tiny random CLIPSeg: shared image pass, prompt cache, thresholds, sizes, errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from drywall_qa.core.backends.clipseg import ClipSegBackend
from drywall_qa.core.errors import InputError
from drywall_qa.core.imaging import resize_probabilities
from drywall_qa.core.segmenter import Segmenter, select_device

PROMPTS = ["segment crack", "segment joint/tape", "segment taping area"]


@pytest.fixture
def segmenter(tiny_clipseg_dir: Path) -> Segmenter:
    return Segmenter(ClipSegBackend.from_pretrained(str(tiny_clipseg_dir)))


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(2).integers(0, 256, (45, 70, 3), dtype=np.uint8)


@contextmanager
def count_calls(module: torch.nn.Module) -> Iterator[list[int]]:
    """Yield a list that receives the batch size of every call of ``module``."""
    calls: list[int] = []
    handle = module.register_forward_pre_hook(lambda _, args, kwargs: calls.append(_batch(args, kwargs)),
                                              with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


def _batch(args: tuple, kwargs: dict) -> int:
    first = args[0] if args else next(v for v in kwargs.values() if isinstance(v, torch.Tensor))
    return first.shape[0]


def test_masks_match_stock_pipeline(segmenter: Segmenter, image: np.ndarray) -> None:
    image = image[:, :45]  # square: the stock pipeline squashes other shapes, the Segmenter pads them
    processor, model = segmenter.backend.processor, segmenter.backend.model
    inputs = processor(text=PROMPTS, images=[image] * len(PROMPTS), padding=True, return_tensors="pt")
    with torch.inference_mode():
        reference = model(**inputs).logits
    for prediction, logits in zip(segmenter.predict(image, PROMPTS), reference):
        assert (prediction.logits - logits).abs().max() <= 1e-4 * logits.abs().max()
        expected = resize_probabilities(logits.sigmoid(), image.shape[:2]).astype(np.float16) > 0.5
        np.testing.assert_array_equal(prediction.mask, expected)


def test_vision_tower_runs_once_and_stops_at_last_extract_layer(segmenter: Segmenter, image: np.ndarray) -> None:
    layers = segmenter.backend.model.clip.vision_model.encoder.layers
    last_extract = max(segmenter.backend.model.extract_layers)
    assert last_extract < len(layers) - 1, "the tiny model needs layers after the last extract layer"
    with count_calls(layers[0]) as first, count_calls(layers[last_extract]) as last, \
            count_calls(layers[last_extract + 1]) as after:
        segmenter.predict(image, PROMPTS)
        segmenter.predict(image, PROMPTS[:1])
    assert first == [1, 1] and last == [1, 1]
    assert after == []


def test_prompt_embeddings_are_cached(segmenter: Segmenter, image: np.ndarray) -> None:
    text_model = segmenter.backend.model.clip.text_model
    with count_calls(text_model) as calls:
        first = segmenter.predict(image, PROMPTS[:2])
        assert calls == [2]
        second = segmenter.predict(image, PROMPTS[:2])
        assert calls == [2]
        segmenter.predict(image, PROMPTS)
        assert calls == [2, 1]
        segmenter.clear_prompt_cache()
        segmenter.predict(image, PROMPTS[:1])
        assert calls == [2, 1, 1]
    for a, b in zip(first, second):
        torch.testing.assert_close(a.logits, b.logits)


def test_prompt_cache_evicts_least_recently_used(tiny_clipseg_dir: Path, image: np.ndarray) -> None:
    segmenter = Segmenter(ClipSegBackend.from_pretrained(str(tiny_clipseg_dir)), cache_size=2)
    text_model = segmenter.backend.model.clip.text_model
    with count_calls(text_model) as calls:
        for prompts in (PROMPTS[:1], PROMPTS[1:2], PROMPTS[:1], PROMPTS[2:3], PROMPTS[:1], PROMPTS[1:2]):
            segmenter.predict(image, prompts)
    # PROMPTS[0] stays cached (recently used); PROMPTS[1] is evicted by PROMPTS[2] and encoded again
    assert calls == [1, 1, 1, 1]


def test_all_negative_output_gives_empty_mask(segmenter: Segmenter, image: np.ndarray) -> None:
    last_conv = segmenter.backend.model.decoder.transposed_convolution[-1]
    with torch.no_grad():
        last_conv.bias.fill_(-1e4)
    for prediction in segmenter.predict(image, PROMPTS):
        assert prediction.probabilities.max() < 0.5
        assert not prediction.mask.any() and prediction.coverage == 0.0
    with torch.no_grad():
        last_conv.bias.fill_(1e4)
    assert all(p.mask.all() and p.coverage == 1.0 for p in segmenter.predict(image, PROMPTS))


@pytest.mark.parametrize("shape", [(37, 91), (120, 33), (64, 64)])
def test_outputs_have_the_input_size(segmenter: Segmenter, shape: tuple[int, int]) -> None:
    image = np.random.default_rng(3).integers(0, 256, (*shape, 3), dtype=np.uint8)
    for prediction in segmenter.predict(image, PROMPTS[:2]):
        assert prediction.probabilities.shape == shape and prediction.probabilities.dtype == np.float16
        assert prediction.mask.shape == shape and prediction.mask.dtype == bool
        assert 0.0 <= prediction.probabilities.min() and prediction.probabilities.max() <= 1.0
        assert prediction.logits.dtype == torch.float32 and prediction.logits.device.type == "cpu"
        assert not prediction.logits.is_inference()


def test_path_and_array_inputs_agree(segmenter: Segmenter, image: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "wall.png"
    Image.fromarray(image).save(path)
    for a, b in zip(segmenter.predict(path, PROMPTS[:1]), segmenter.predict(image, PROMPTS[:1])):
        np.testing.assert_array_equal(a.probabilities, b.probabilities)


def test_thresholds(segmenter: Segmenter, image: np.ndarray) -> None:
    segmenter.backend.settings.thresholds = {PROMPTS[0]: 0.9}
    stored, default = segmenter.predict(image, PROMPTS[:2])
    assert (stored.threshold, default.threshold) == (0.9, 0.5)
    np.testing.assert_array_equal(stored.mask, stored.probabilities > 0.9)
    np.testing.assert_array_equal(default.mask, default.probabilities > 0.5)
    explicit = segmenter.predict(image, PROMPTS[0], threshold=0.2)
    assert len(explicit) == 1 and explicit[0].threshold == 0.2
    np.testing.assert_array_equal(explicit[0].mask, explicit[0].probabilities > 0.2)
    with pytest.raises(InputError, match="threshold"):
        segmenter.predict(image, PROMPTS[:1], threshold=1.5)


@pytest.mark.parametrize(("prompts", "field"), [(["segment crack", "   "], "prompts[1]"), ([""], "prompts[0]"),
                                                ([], "prompts")])
def test_empty_prompts_are_refused(segmenter: Segmenter, image: np.ndarray, prompts: list[str], field: str) -> None:
    with pytest.raises(InputError) as info:
        segmenter.predict(image, prompts)
    assert info.value.what == field


def test_load_name_and_size(tiny_clipseg_dir: Path) -> None:
    segmenter = Segmenter.load(tiny_clipseg_dir, device="cpu")
    assert segmenter.name == str(tiny_clipseg_dir)
    model = segmenter.backend.model
    size = segmenter.model_size()
    assert size["parameters"] == sum(p.numel() for p in model.parameters())
    assert size["trainable_parameters"] == sum(p.numel() for p in model.decoder.parameters())
    assert size["megabytes"] >= size["parameters"] * 4 / 2**20


def test_select_device() -> None:
    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="device"):
        select_device("nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="cuda"):
            select_device("cuda")
        if not torch.backends.mps.is_available():
            assert select_device() == torch.device("cpu")
