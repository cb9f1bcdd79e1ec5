"""Property-based tests (hypothesis) of the image loader, mask helpers and metrics, beyond the ones next to each
module (``test_imaging.py``: resize_mask; ``test_metrics.py``: IoU/Dice symmetry, sweep = thresholded masks;
``test_data.py``: union of annotation masks)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from pycocotools import mask as mask_utils

from drywall_qa.app.widgets import DISPLAY_SIDE, for_display
from drywall_qa.core.errors import InputError
from drywall_qa.core.imaging import load_image, resize_mask, resize_probabilities
from drywall_qa.core.result import coco_rle, mask_png
from drywall_qa.core.visualisation import FN_COLOR, FP_COLOR, TP_COLOR, error_map, overlay
from drywall_qa.evaluation.metrics import aggregate, bce_with_logits, score_image, score_masks, soft_target


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The metrics run tiny tensors: with several intra-op threads on a busy machine each call waits ~40 ms at
    OpenMP barriers instead of taking ~0.1 ms."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sides = st.integers(1, 12)
shapes = st.tuples(sides, sides)
masks = shapes.flatmap(lambda s: arrays(bool, s))
mask_pairs = shapes.flatmap(lambda s: st.tuples(arrays(bool, s), arrays(bool, s)))
rgb_images = shapes.flatmap(lambda s: arrays(np.uint8, (*s, 3)))


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


_PIXELS = np.random.default_rng(3).integers(0, 256, (12, 16, 3), dtype=np.uint8)
#: valid files of every format and mode the loader handles, to be damaged by the fuzz test
ENCODED = [_encode(image, fmt) for image, fmt in [
    (Image.fromarray(_PIXELS), "PNG"), (Image.fromarray(_PIXELS), "JPEG"), (Image.fromarray(_PIXELS), "BMP"),
    (Image.fromarray(_PIXELS), "TIFF"), (Image.fromarray(_PIXELS), "WEBP"), (Image.fromarray(_PIXELS), "GIF"),
    (Image.fromarray(_PIXELS).convert("CMYK"), "JPEG"), (Image.fromarray(_PIXELS).convert("LA"), "PNG"),
    (Image.fromarray(_PIXELS[..., 0].astype(np.uint16) * 257), "PNG"), (Image.fromarray(_PIXELS), "ICO"),
]]


# --- image loader ---------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(data=st.sampled_from(ENCODED), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                                      max_size=6),
       keep=st.floats(0.0, 1.0), inserted=st.binary(max_size=16))
def test_damaged_files_load_or_raise_input_error(data: bytes, flips: list[tuple[int, int]], keep: float,
                                                 inserted: bytes) -> None:
    """Bytes overwritten, then the file cut short (``keep`` < 1) with junk appended: never another exception."""
    damaged = bytearray(data)
    for position, value in flips:
        damaged[position % len(damaged)] = value
    damaged = bytes(damaged[:max(1, int(keep * len(damaged)))]) + inserted
    try:
        out = load_image(damaged, name="damaged.img")
    except InputError as err:
        assert "damaged.img" in str(err)
    else:
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and out.size > 0


array_shapes = shapes.flatmap(lambda s: st.sampled_from([s, (*s, 1), (*s, 3), (*s, 4)]))
dtypes = st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64, np.bool_])


@FAST
@given(array=st.tuples(dtypes, array_shapes).flatmap(lambda d: arrays(d[0], d[1])))
def test_any_numeric_array_becomes_rgb_of_its_size(array: np.ndarray) -> None:
    out = load_image(array)
    assert out.dtype == np.uint8 and out.shape == (*array.shape[:2], 3)
    if array.ndim == 2 or array.shape[2] == 1:
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3:
        np.testing.assert_array_equal(out, array)


@FAST
@given(image=rgb_images, fmt=st.sampled_from(["PNG", "BMP", "TIFF", "PPM"]))
def test_lossless_files_round_trip_exactly(image: np.ndarray, fmt: str) -> None:
    np.testing.assert_array_equal(load_image(_encode(Image.fromarray(image), fmt)), image)


# --- maps and masks -------------------------------------------------------------------------------------------


@FAST
@given(prob=shapes.flatmap(lambda s: arrays(np.float32, s, elements=st.floats(0, 1, width=32))), size=shapes)
def test_resized_probabilities_stay_within_the_input_range(prob: np.ndarray, size: tuple[int, int]) -> None:
    out = resize_probabilities(prob, size)
    assert out.shape == size and out.dtype == np.float32
    assert prob.min() - 1e-5 <= out.min() and out.max() <= prob.max() + 1e-5
    constant = resize_probabilities(np.full_like(prob, prob.flat[0]), size)
    np.testing.assert_allclose(constant, prob.flat[0], atol=1e-6)


@FAST
@given(mask=masks)
def test_download_encodings_round_trip(mask: np.ndarray) -> None:
    rle = coco_rle(mask)
    decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    np.testing.assert_array_equal(decoded.astype(bool), mask)
    png = np.asarray(Image.open(io.BytesIO(mask_png(mask))))
    np.testing.assert_array_equal(png, mask.astype(np.uint8) * 255)


@settings(max_examples=30, deadline=None)
@given(mask=st.tuples(st.integers(1, 2500), st.integers(1, 2500), st.integers(0, 2**32 - 1)).map(
    lambda t: _sparse_mask(*t)))
def test_display_downscaling_keeps_any_foreground(mask: np.ndarray) -> None:
    image = np.zeros((*mask.shape, 3), np.uint8)
    small, [small_mask] = for_display(image, [mask])
    assert max(small.shape[:2]) <= DISPLAY_SIDE and small.shape[:2] == small_mask.shape
    assert small_mask.any() == mask.any()
    assert small_mask.sum() <= mask.sum()


def _sparse_mask(height: int, width: int, seed: int) -> np.ndarray:
    """A mask with a few single pixels set (maybe none): what downscaling most easily loses."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), bool)
    count = int(rng.integers(0, 4))
    mask[rng.integers(0, height, count), rng.integers(0, width, count)] = True
    return mask


@FAST
@given(pair=mask_pairs)
def test_error_map_colours_each_pixel_by_its_outcome(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, truth = pair
    picture = error_map(pred, truth)
    expected = np.zeros((*pred.shape, 3), np.uint8)
    for where, color in [(pred & truth, TP_COLOR), (pred & ~truth, FP_COLOR), (~pred & truth, FN_COLOR)]:
        expected[where] = color
    np.testing.assert_array_equal(picture, expected)


@FAST
@given(image=rgb_images, data=st.data())
def test_overlay_changes_only_masked_pixels(image: np.ndarray, data: st.DataObject) -> None:
    mask = data.draw(arrays(bool, image.shape[:2]))
    alpha = data.draw(st.floats(0, 1))
    out = overlay(image, [mask], [(255, 0, 0)], alpha=alpha)
    np.testing.assert_array_equal(out[~mask], image[~mask])
    np.testing.assert_array_equal(overlay(image, [mask], [(255, 0, 0)], alpha=0.0), image)


# --- metrics --------------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(pair=mask_pairs)
def test_iou_is_bounded_by_precision_and_recall_and_dice_is_their_harmonic_mean(
        pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, truth = pair
    iou, dice, precision, recall = score_masks(pred, truth)
    assert all(0.0 <= v <= 1.0 for v in (iou, dice, precision, recall))
    if (pred & truth).any():
        assert iou <= min(precision, recall) + 1e-12
        assert dice == pytest.approx(2 * precision * recall / (precision + recall))
    elif pred.any() or truth.any():
        assert iou == dice == 0.0
    assert score_masks(pred, pred)[:2] == (1.0, 1.0)


@FAST
@given(pairs=shapes.flatmap(lambda s: st.lists(st.tuples(arrays(bool, s), arrays(bool, s)), min_size=1, max_size=6)))
def test_pooled_iou_lies_between_the_per_image_ious(pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    scores = [score_image(pred, truth, torch.zeros(2, 2)) for pred, truth in pairs]
    result = aggregate(scores)
    counted = [s.iou for s in scores if s.union > 0]
    if counted:
        assert min(counted) - 1e-12 <= result["pooled_iou"] <= max(counted) + 1e-12
    else:
        assert result["pooled_iou"] == 1.0
    assert result["miou"] == pytest.approx(np.mean([s.iou for s in scores]))


@FAST
@given(size=shapes, factor=st.tuples(st.integers(1, 4), st.integers(1, 4)), data=st.data())
def test_soft_target_is_the_covered_fraction_of_each_cell(size: tuple[int, int], factor: tuple[int, int],
                                                          data: st.DataObject) -> None:
    (h, w), (fy, fx) = size, factor
    truth = data.draw(arrays(bool, (h * fy, w * fx)))          # each target cell covers fy × fx pixels
    target = soft_target(truth, size).numpy()
    covered = truth.reshape(h, fy, w, fx).mean(axis=(1, 3))
    np.testing.assert_allclose(target, covered, atol=1e-6)
    np.testing.assert_array_equal(target > 0, resize_mask(truth, size))


@FAST
@given(truth=masks, scale=st.floats(0.1, 40.0))
def test_bce_is_non_negative_and_lowest_for_confident_correct_logits(truth: np.ndarray, scale: float) -> None:
    correct = torch.as_tensor(np.where(truth, scale, -scale), dtype=torch.float32)
    assert bce_with_logits(correct, truth) >= 0.0
    assert bce_with_logits(correct, truth) <= bce_with_logits(-correct, truth)
    assert bce_with_logits(correct * 2, truth) <= bce_with_logits(correct, truth) + 1e-7
