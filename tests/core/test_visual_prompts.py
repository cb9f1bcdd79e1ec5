"""Visual prompts: prompt engineering, mask reading, validation, and the Segmenter path against the stock CLIPSeg
forward with ``conditional_pixel_values`` / ``conditional_embeddings`` on a tiny offline checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from drywall_qa.cli.evaluate import main as evaluate_main
from drywall_qa.core.backends.clipseg import ClipSegBackend
from drywall_qa.core.backends.lite import LiteBackend
from drywall_qa.core.errors import InputError
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.core.visual_prompts import (
    BLUR_FRACTION,
    CROP_CONTEXT,
    DARKEN_FACTOR,
    VisualPrompt,
    engineer,
    load_mask,
    mask_from_array,
    parse_engineering,
)
from drywall_qa.data.coco import CocoSplit
from tests.helpers import make_mixed_split

rng = np.random.default_rng(7)
IMAGE = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
MASK = np.zeros((60, 80), bool)
MASK[20:30, 30:60] = True          # a 10 × 30 box


def test_parse_engineering_is_canonical_and_strict() -> None:
    assert parse_engineering("darken+crop") == "crop+darken"
    assert parse_engineering(" blur ") == "blur"
    for bad in ("", "crop+crop", "sharpen", "crop+"):
        with pytest.raises(InputError, match="engineering"):
            parse_engineering(bad)


def test_darken_keeps_object_and_scales_background() -> None:
    out = engineer(IMAGE, MASK, "darken")
    np.testing.assert_array_equal(out[MASK], IMAGE[MASK])
    expected = np.rint(IMAGE[~MASK].astype(np.float32) * DARKEN_FACTOR)
    np.testing.assert_array_equal(out[~MASK], expected)


def test_blur_smooths_background_only() -> None:
    out = engineer(IMAGE, MASK, "blur")
    np.testing.assert_array_equal(out[MASK], IMAGE[MASK])
    assert BLUR_FRACTION * 60 > 0.5
    # random noise blurred: far smaller pixel-to-pixel differences away from the object
    far = (slice(40, 60), slice(0, 80))
    assert np.abs(np.diff(out[far].astype(int), axis=1)).mean() < 0.5 * np.abs(np.diff(IMAGE[far].astype(int),
                                                                                         axis=1)).mean()


def test_crop_is_a_square_around_the_object_with_context() -> None:
    out = engineer(IMAGE, MASK, "crop")
    dy, dx = round(CROP_CONTEXT * 10), round(CROP_CONTEXT * 30)
    region = IMAGE[20 - dy: 30 + dy, 30 - dx: 60 + dx]
    assert out.shape == (region.shape[1], region.shape[1], 3)             # wider than tall → side = width
    top = (out.shape[0] - region.shape[0]) // 2
    np.testing.assert_array_equal(out[top: top + region.shape[0]], region)
    assert not out[:top].any() and not out[top + region.shape[0]:].any()   # black padding


def test_default_combines_all_three() -> None:
    combined = engineer(IMAGE, MASK)
    cropped = engineer(engineer(IMAGE, MASK, "blur+darken"), MASK, "crop")
    np.testing.assert_array_equal(combined, cropped)
    assert combined.shape[0] == combined.shape[1]


def test_crop_is_clipped_at_the_image_border() -> None:
    corner = np.zeros((60, 80), bool)
    corner[:10, 60:] = True                   # context: 1 row (none above the image), 2 columns (none right of it)
    out = engineer(IMAGE, corner, "crop")
    assert out.shape[:2] == (22, 22)
    np.testing.assert_array_equal(out[5:16], IMAGE[:11, 58:])


def test_mask_from_array_formats() -> None:
    layer = np.zeros((4, 5, 4), np.uint8)
    layer[1, 2] = (255, 0, 0, 200)              # a brush stroke on a transparent layer
    assert mask_from_array(layer).sum() == 1 and mask_from_array(layer)[1, 2]
    white_on_black = np.zeros((4, 5, 3), np.uint8)
    white_on_black[2:, :2] = 255
    np.testing.assert_array_equal(mask_from_array(white_on_black), white_on_black[..., 0] > 0)
    zero_one = (white_on_black[..., 0] > 0).astype(np.uint8)
    np.testing.assert_array_equal(mask_from_array(zero_one), zero_one > 0)
    with pytest.raises(InputError, match="support mask"):
        mask_from_array(np.zeros((2, 2, 2, 2)))


def test_load_mask(tmp_path: Path) -> None:
    path = tmp_path / "mask.png"
    Image.fromarray(MASK.astype(np.uint8) * 255).save(path)
    np.testing.assert_array_equal(load_mask(path), MASK)
    with pytest.raises(InputError, match="no such mask"):
        load_mask(tmp_path / "missing.png")


@pytest.mark.parametrize(("mask", "options", "field"), [
    (np.zeros((60, 80), bool), {}, "support mask"),
    (np.ones((30, 80), bool), {}, "support mask"),
    (MASK, {"alpha": 1.5, "text": "x"}, "alpha"),
    (MASK, {"alpha": 0.5}, "alpha"),
])
def test_visual_prompt_validation(mask: np.ndarray, options: dict, field: str) -> None:
    with pytest.raises(InputError) as info:
        VisualPrompt(IMAGE, mask, **options)
    assert info.value.what == field


def test_labels_and_keys() -> None:
    example = VisualPrompt(IMAGE, MASK, "darken+blur", name="wall.jpg")
    assert example.engineering == "blur+darken" and example.label == "wall.jpg [blur+darken]"
    mixed = VisualPrompt(IMAGE, MASK, text="segment crack", alpha=0.25)
    assert mixed.label.startswith("segment crack + example image") and "alpha=0.25" in mixed.label
    assert VisualPrompt(IMAGE, MASK, text="segment crack", alpha=0.0).label == "segment crack"
    assert VisualPrompt(IMAGE.copy(), MASK.copy()).key == VisualPrompt(IMAGE, MASK).key
    assert VisualPrompt(IMAGE, MASK, "crop").key != VisualPrompt(IMAGE, MASK).key
    other = MASK.copy()
    other[0, 0] = True
    assert VisualPrompt(IMAGE, other).key != VisualPrompt(IMAGE, MASK).key


@pytest.fixture(scope="module")
def clipseg(tiny_clipseg_dir: Path) -> Segmenter:
    return Segmenter(ClipSegBackend.from_pretrained(str(tiny_clipseg_dir)))


def _stock(segmenter: Segmenter, query: np.ndarray, **conditioning: torch.Tensor) -> torch.Tensor:
    backend = segmenter.backend
    with torch.inference_mode():
        return backend.model(pixel_values=backend.preprocess([query]), **conditioning).logits


def test_visual_prompt_matches_stock_conditional_pixel_values(clipseg: Segmenter) -> None:
    query = rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)  # square: padded and stock inputs are the same
    example = VisualPrompt(IMAGE, MASK)
    prediction, = clipseg.predict(query, example)
    support = clipseg.backend.processor(images=[example.support()], return_tensors="pt").pixel_values
    reference = _stock(clipseg, query, conditional_pixel_values=support)
    torch.testing.assert_close(prediction.logits, reference.reshape(prediction.logits.shape), rtol=1e-4, atol=1e-4)
    assert prediction.prompt == example.label and prediction.mask.shape == query.shape[:2]


def test_interpolation_mixes_image_and_text_vectors(clipseg: Segmenter) -> None:
    query = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    text, alpha = "segment crack", 0.3
    example = VisualPrompt(IMAGE, MASK, text=text, alpha=alpha)
    with torch.inference_mode():
        image_vector = clipseg.backend.encode_visual_prompts([example.support()])
        text_vector = clipseg.backend.encode_prompts([text])
    mixed = _stock(clipseg, query, conditional_embeddings=alpha * image_vector + (1 - alpha) * text_vector)
    prediction, = clipseg.predict(query, example)
    torch.testing.assert_close(prediction.logits, mixed.reshape(prediction.logits.shape), rtol=1e-4, atol=1e-4)
    text_only, plain = clipseg.predict(query, [VisualPrompt(IMAGE, MASK, text=text, alpha=0.0), text])
    torch.testing.assert_close(text_only.logits, plain.logits, rtol=1e-4, atol=1e-4)   # rows of one batch
    assert text_only.prompt == text


def test_example_encoded_once_and_mixed_with_text_prompts(clipseg: Segmenter) -> None:
    clipseg = Segmenter(clipseg.backend)     # an empty prompt cache
    query = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    calls: list[int] = []
    projection = clipseg.backend.model.clip.visual_projection
    handle = projection.register_forward_pre_hook(lambda _, args: calls.append(args[0].shape[0]))
    try:
        example = VisualPrompt(IMAGE, MASK, name="ex")
        first = clipseg.predict(query, ["segment crack", example])
        again = clipseg.predict(query, [VisualPrompt(IMAGE.copy(), MASK.copy(), name="ex"), "segment crack"])
    finally:
        handle.remove()
    assert calls == [1]                      # the second, equal example comes from the cache
    assert [p.prompt for p in first] == ["segment crack", "ex [crop+blur+darken]"]
    torch.testing.assert_close(first[1].logits, again[0].logits, rtol=1e-4, atol=1e-4)


def test_lite_backend_refuses_visual_prompts_clearly(tiny_lite_dir: Path) -> None:
    segmenter = Segmenter(LiteBackend.from_pretrained(str(tiny_lite_dir)))
    assert not segmenter.supports_visual_prompts
    with pytest.raises(InputError, match="CLIPSeg") as info:
        segmenter.predict(IMAGE, ["segment crack", VisualPrompt(IMAGE, MASK)])
    assert info.value.what == "prompts[1]"
    text_only, = segmenter.predict(IMAGE, VisualPrompt(IMAGE, MASK, text="segment crack", alpha=0.0))
    plain, = segmenter.predict(IMAGE, "segment crack")
    torch.testing.assert_close(text_only.logits, plain.logits)


def test_from_split_uses_the_annotation(tmp_path: Path) -> None:
    split = CocoSplit(make_mixed_split(tmp_path / "split"))
    example = VisualPrompt.from_split(split, 0, engineering="crop")
    np.testing.assert_array_equal(example.mask, split.mask(0))
    assert example.name == split.file_name(0)
    with pytest.raises(InputError, match="empty"):
        VisualPrompt.from_split(split, 2)    # the third image has no annotation
    with pytest.raises(InputError) as info:
        VisualPrompt.from_split(split, 3)
    assert info.value.what == "--support-index"


def test_from_split_real_data(data_root: Path, clipseg: Segmenter) -> None:
    split = CocoSplit(data_root / "cracks" / "train")
    example = VisualPrompt.from_split(split, 0)
    assert example.mask.any() and example.support().shape[0] == example.support().shape[1]
    query = CocoSplit(data_root / "cracks" / "valid").load_image(0)
    prediction, = clipseg.predict(query, example)
    assert prediction.mask.shape == query.shape[:2] and 0.0 <= prediction.presence <= 1.0


def test_evaluate_cli_scores_a_visual_prompt(tiny_clipseg_dir: Path, tmp_path: Path) -> None:
    split = make_mixed_split(tmp_path / "split")
    out = tmp_path / "out"
    rc = evaluate_main(["--split", str(split), "--prompts", "segment crack", "--support-split", str(split),
                        "--support-index", "1", "--alpha", "0.5", "--model", str(tiny_clipseg_dir),
                        "--panels", "0", "--out", str(out)])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    name = CocoSplit(split).file_name(1)
    assert list(metrics["prompts"]) == ["segment crack", f"segment crack + {name} [crop+blur+darken] alpha=0.5"]
