"""ClipSegBackend against the stock transformers CLIPSeg forward, on a tiny random checkpoint."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from drywall_qa.core.backends import load_backend, repeat_features
from drywall_qa.core.backends.clipseg import ClipSegBackend
from drywall_qa.core.backends.hub import PROXY_VARIABLES, hub_reachable
from drywall_qa.core.errors import ModelLoadError

PROMPTS = ["segment crack", "segment joint/tape", "a", "segment the drywall seam between two boards"]


@pytest.fixture(scope="module")
def backend(tiny_clipseg_dir: Path) -> ClipSegBackend:
    return ClipSegBackend.from_pretrained(str(tiny_clipseg_dir))


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (48, 80, 3), dtype=np.uint8), rng.integers(0, 256, (90, 40, 3), dtype=np.uint8)]


def stock_logits(backend: ClipSegBackend, image: np.ndarray, prompts: list[str]) -> torch.Tensor:
    """The published pipeline: processor + full model forward, the image repeated once per prompt."""
    inputs = backend.processor(text=prompts, images=[image] * len(prompts), padding=True, return_tensors="pt")
    with torch.inference_mode():
        return backend.model(input_ids=inputs.input_ids, pixel_values=inputs.pixel_values,
                             attention_mask=inputs.attention_mask).logits


def test_logits_match_stock_forward(backend: ClipSegBackend, images: list[np.ndarray]) -> None:
    with torch.inference_mode():
        features = backend.encode_image(backend.preprocess(images))
        embeddings = backend.encode_prompts(PROMPTS).repeat(len(images), 1)
        ours = backend.decode(repeat_features(features, len(PROMPTS)), embeddings)
    ours = ours.view(len(images), len(PROMPTS), *ours.shape[-2:])
    for image, image_logits in zip(images, ours):
        reference = stock_logits(backend, image, PROMPTS)
        assert image_logits.shape == reference.shape
        assert (image_logits - reference).abs().max() <= 1e-4 * reference.abs().max()
        assert torch.equal(image_logits.sigmoid() > 0.5, reference.sigmoid() > 0.5)


def test_features_are_the_extract_layer_activations(backend: ClipSegBackend, images: list[np.ndarray]) -> None:
    pixel_values = backend.preprocess(images)
    with torch.inference_mode():
        hidden = backend.model.clip.vision_model(pixel_values, output_hidden_states=True).hidden_states
        features = backend.encode_image(pixel_values)
    expected = [hidden[i + 1] for i in backend.model.extract_layers]
    assert len(features) == len(expected)
    for ours, theirs in zip(features, expected):
        torch.testing.assert_close(ours, theirs)


def test_decode_single_item_keeps_batch_dimension(backend: ClipSegBackend, images: list[np.ndarray]) -> None:
    with torch.inference_mode():
        features = backend.encode_image(backend.preprocess(images[:1]))
        logits = backend.decode(features, backend.encode_prompts(PROMPTS[:1]))
    assert logits.dim() == 3 and logits.shape[0] == 1


def test_preprocess_matches_processor(backend: ClipSegBackend, images: list[np.ndarray]) -> None:
    pixel_values = backend.preprocess(images)
    expected = backend.processor(images=images, return_tensors="pt").pixel_values
    assert pixel_values.shape == (len(images), 3, backend.input_size, backend.input_size)
    torch.testing.assert_close(pixel_values, expected)


def test_clip_frozen_decoder_trainable(backend: ClipSegBackend) -> None:
    assert not backend.model.training
    assert not any(p.requires_grad for p in backend.model.clip.parameters())
    decoder = list(backend.model.decoder.parameters())
    assert all(p.requires_grad for p in decoder)
    assert {id(p) for p in backend.trainable_parameters()} == {id(p) for p in decoder}


def test_decode_is_differentiable_for_training(backend: ClipSegBackend, images: list[np.ndarray]) -> None:
    features = backend.encode_image(backend.preprocess(images[:1]))
    logits = backend.decode(features, backend.encode_prompts(PROMPTS[:1]))
    logits.mean().backward()
    assert backend.model.decoder.film_mul.weight.grad is not None
    backend.model.decoder.zero_grad(set_to_none=True)


def test_save_and_reload_round_trip(backend: ClipSegBackend, images: list[np.ndarray], tmp_path: Path) -> None:
    backend.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    reloaded = load_backend(tmp_path)
    assert isinstance(reloaded, ClipSegBackend)
    torch.testing.assert_close(stock_logits(reloaded, images[0], PROMPTS[:2]),
                               stock_logits(backend, images[0], PROMPTS[:2]))


def test_unreachable_hub_names_the_checkpoint() -> None:
    name = "drywall-qa-tests/no-such-clipseg"
    with pytest.raises(ModelLoadError, match="no-such-clipseg") as info:
        ClipSegBackend.from_pretrained(name)
    assert "--model DIR" in str(info.value)


def test_incomplete_directory_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "clipseg"}')
    with pytest.raises(ModelLoadError, match=str(tmp_path)) as info:
        load_backend(tmp_path)
    assert "save_pretrained" in str(info.value)


@pytest.fixture
def closed_hub(monkeypatch: pytest.MonkeyPatch) -> str:
    """The hub's address pointed at a local port that nothing listens on, as on a machine without a network."""
    from huggingface_hub import constants

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return constants.ENDPOINT


def test_hub_reachable_asks_the_endpoint_once(closed_hub: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    assert not hub_reachable()
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{listening.getsockname()[1]}")
        assert hub_reachable()
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        assert not hub_reachable()


def test_no_network_reads_the_cache_only_and_says_so(closed_hub: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a hub, from_pretrained is asked for local files only (no retries against the network)."""
    from transformers import CLIPSegForImageSegmentation

    asked = []
    real = CLIPSegForImageSegmentation.from_pretrained.__func__

    def spy(cls, source, **kwargs):
        asked.append(kwargs.get("local_files_only"))
        return real(cls, source, **kwargs)

    monkeypatch.setattr(CLIPSegForImageSegmentation, "from_pretrained", classmethod(spy))
    with pytest.raises(ModelLoadError) as info:
        ClipSegBackend.from_pretrained("drywall-qa-tests/no-such-clipseg")
    assert asked == [True] and f"{closed_hub} cannot be reached" in str(info.value)
