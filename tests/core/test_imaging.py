"""Image loading (modes, EXIF, bad files, size limit) and thin-structure-safe mask / bilinear map resizing."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageFile

from drywall_qa.core.errors import InputError
from drywall_qa.core.imaging import MAX_PIXELS, load_image, resize_mask, resize_probabilities
from tests.helpers import png_header_only

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(12, 20, 3), dtype=np.uint8)


def _png_bytes(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["path", "str", "bytes", "pil", "array"])
def test_rgb_round_trip_from_every_source(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "rgb.png"
    Image.fromarray(RGB).save(path)
    source = {"path": path, "str": str(path), "bytes": path.read_bytes(), "pil": Image.open(path), "array": RGB}[kind]
    out = load_image(source)
    assert out.dtype == np.uint8 and out.shape == RGB.shape
    np.testing.assert_array_equal(out, RGB)


def test_grayscale_becomes_three_equal_channels() -> None:
    gray = RGB[..., 0]
    out = load_image(_png_bytes(Image.fromarray(gray, "L")))
    assert out.shape == (*gray.shape, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray)


def test_rgba_is_composited_on_white() -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[0, :, :] = (200, 10, 20, 255)  # opaque: colour kept
    rgba[1, :, :] = (200, 10, 20, 0)  # transparent: white
    rgba[1, 2] = (0, 0, 0, 128)  # half-transparent black: mid grey
    out = load_image(_png_bytes(Image.fromarray(rgba, "RGBA")))
    assert (out[0] == (200, 10, 20)).all()
    assert (out[1, :2] == 255).all()
    assert np.all(np.abs(out[1, 2].astype(int) - (255 - 128)) <= 1)


def test_palette_image_uses_palette_colours_and_transparency() -> None:
    img = Image.new("P", (4, 2))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putdata([0, 0, 1, 1, 1, 1, 0, 0])
    img.info["transparency"] = 1
    out = load_image(_png_bytes(img))
    assert (out[0, :2] == (255, 0, 0)).all()
    assert (out[0, 2:] == 255).all()  # index 1 is transparent → white


def test_cmyk_is_converted_to_rgb() -> None:
    cmyk = np.array([[[255, 0, 0, 0], [0, 0, 0, 255], [0, 0, 0, 0]]], dtype=np.uint8)
    out = load_image(Image.fromarray(cmyk, "CMYK"))
    np.testing.assert_array_equal(out[0], [[0, 255, 255], [0, 0, 0], [255, 255, 255]])


def test_16_bit_gradient_is_scaled_not_clipped(tmp_path: Path) -> None:
    gradient = np.tile(np.linspace(0, 65535, 300).round().astype(np.uint16), (4, 1))
    path = tmp_path / "gradient16.png"
    Image.fromarray(gradient).save(path)
    assert Image.open(path).mode.startswith("I")  # really stored as 16 bit
    out = load_image(path)
    assert out.shape == (4, 300, 3)
    assert np.abs(out[..., 0] - gradient / 257).max() <= 0.5
    assert out.min() == 0 and out.max() == 255
    assert np.all(np.diff(out[0, :, 0].astype(int)) >= 0)


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.array([[0, 257 * 100, 257 * 50]], dtype=np.uint16), [0, 100, 50]),  # dark 16-bit stays dark
        (np.array([[0.0, 1.0, 0.5]], dtype=np.float32), [0, 255, 128]),
        (np.array([[False, True, False]]), [0, 255, 0]),
        (np.array([[0, 255, 7]], dtype=np.int32), [0, 255, 7]),
    ],
)
def test_arrays_of_other_dtypes_are_scaled_by_their_range(array: np.ndarray, expected: list[int]) -> None:
    out = load_image(array)
    np.testing.assert_array_equal(out[0, :, 0], expected)
    np.testing.assert_array_equal(load_image(array[..., None]), out)  # H×W×1 too


@pytest.mark.parametrize(("mode", "values"), [("I", [0, 257 * 200, 257 * 3]), ("F", [0.0, 1.0, 0.25])])
def test_pil_32_bit_modes(mode: str, values: list[float]) -> None:
    img = Image.fromarray(np.array([values], dtype=np.int32 if mode == "I" else np.float32))
    assert img.mode == mode
    out = load_image(img)
    full = 65535 if mode == "I" else 1.0
    np.testing.assert_array_equal(out[0, :, 1], np.round(np.array(values) / full * 255))


@pytest.mark.parametrize(("orientation", "turns"), [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, turns: int) -> None:
    stored = np.zeros((32, 64, 3), dtype=np.uint8)  # 8×8-aligned quadrants survive JPEG almost unchanged
    stored[:16, :32] = (255, 0, 0)
    stored[:16, 32:] = (0, 255, 0)
    stored[16:, :32] = (0, 0, 255)
    stored[16:, 32:] = (255, 255, 255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(path, "JPEG", exif=exif, quality=95, subsampling=0)
    out = load_image(path)
    expected = np.rot90(stored, k=turns)  # positive k = counter-clockwise
    assert out.shape == expected.shape
    assert np.abs(out.astype(int) - expected).mean() < 6


def test_missing_and_empty_files_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jpg"
    with pytest.raises(InputError, match="nope.jpg.*no such file"):
        load_image(missing)
    with pytest.raises(InputError, match="directory"):
        load_image(tmp_path)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.jpg.*0 bytes"):
        load_image(empty)
    with pytest.raises(InputError, match="upload.png.*0 bytes"):
        load_image(b"", name="upload.png")


def test_text_file_renamed_to_jpg_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is not an image")
    with pytest.raises(InputError, match="notes.jpg.*not a readable image"):
        load_image(fake)


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_jpeg_is_refused(tmp_path: Path, keep: float) -> None:
    buffer = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    data = buffer.getvalue()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputError, match="cut.jpg.*truncated"):
        load_image(path)
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


@pytest.mark.parametrize(("width", "height"), [(8000, 7000), (10_000, 10_000), (100_000, 100_000)])
def test_oversized_images_are_refused_before_decoding(width: int, height: int) -> None:
    # 56 M pixels: our limit (PIL would not complain); 100 M: PIL's warning; 10 G: PIL's DecompressionBombError
    assert width * height > MAX_PIXELS
    with warnings.catch_warnings(record=True) as caught, pytest.raises(InputError, match=f"{MAX_PIXELS:,}") as info:
        warnings.simplefilter("always")
        load_image(png_header_only(width, height), name="bomb.png")
    assert "bomb.png" in str(info.value) and "truncated" not in str(info.value)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_bad_array_shape_is_refused() -> None:
    with pytest.raises(InputError, match="shape"):
        load_image(np.zeros((4, 4, 2), dtype=np.uint8))


@pytest.mark.parametrize("line", ["row", "column", "diagonal"])
def test_resize_mask_keeps_one_pixel_lines_when_downscaling(line: str) -> None:
    mask = np.zeros((640, 480), dtype=bool)
    if line == "row":
        mask[333, :] = True
    elif line == "column":
        mask[:, 101] = True
    else:
        np.fill_diagonal(mask, True)
    small = resize_mask(mask, (64, 48))
    assert small.shape == (64, 48)
    if line == "row":
        assert small.any(axis=0).all() and small.any(axis=1).sum() == 1
    elif line == "column":
        assert small.any(axis=1).all() and small.any(axis=0).sum() == 1
    else:
        assert small.any(axis=0).all()


def test_resize_mask_upscales_by_nearest_neighbour() -> None:
    mask = RNG.random((5, 7)) > 0.5
    np.testing.assert_array_equal(resize_mask(mask, (15, 28)), np.kron(mask, np.ones((3, 4), dtype=bool)))
    np.testing.assert_array_equal(resize_mask(mask, mask.shape), mask)


masks = st.tuples(st.integers(1, 40), st.integers(1, 40)).flatmap(lambda shape: arrays(bool, shape))
sizes = st.tuples(st.integers(1, 60), st.integers(1, 60))


@settings(max_examples=60, deadline=None)
@given(mask=masks, size=sizes)
def test_resize_mask_never_loses_or_invents_foreground(mask: np.ndarray, size: tuple[int, int]) -> None:
    out = resize_mask(mask, size)
    assert out.shape == size and out.dtype == bool
    assert out.any() == mask.any()
    (height, width), (h, w) = mask.shape, size
    covered = np.zeros_like(mask)
    for i, j in zip(*np.nonzero(out)):  # footprint of output pixel (i, j) in the input, rounded outwards
        rows = slice(i * height // h, -(-(i + 1) * height // h))
        cols = slice(j * width // w, -(-(j + 1) * width // w))
        assert mask[rows, cols].any()  # nothing invented
        covered[rows, cols] = True
    if h <= height and w <= width:  # downscaling: every input foreground pixel is under a set output pixel
        assert covered[mask].all()


@settings(max_examples=40, deadline=None)
@given(mask=masks, factor=st.tuples(st.integers(1, 4), st.integers(1, 4)))
def test_resize_mask_integer_upscale_then_downscale_round_trips(mask: np.ndarray, factor: tuple[int, int]) -> None:
    big = resize_mask(mask, (mask.shape[0] * factor[0], mask.shape[1] * factor[1]))
    np.testing.assert_array_equal(resize_mask(big, mask.shape), mask)


def test_resize_probabilities_is_bilinear() -> None:
    prob = RNG.random((6, 9)).astype(np.float32)
    out = resize_probabilities(prob, (24, 27))
    reference = torch.nn.functional.interpolate(
        torch.from_numpy(prob)[None, None], size=(24, 27), mode="bilinear", align_corners=False
    )[0, 0].numpy()
    assert out.dtype == np.float32 and out.shape == (24, 27)
    np.testing.assert_allclose(out, reference, atol=1e-5)
    np.testing.assert_allclose(resize_probabilities(torch.from_numpy(prob), (24, 27)), out, atol=1e-6)


def test_resize_probabilities_downscale_keeps_range_and_constants() -> None:
    prob = RNG.random((64, 48)).astype(np.float32)
    out = resize_probabilities(prob, (16, 12))
    assert out.shape == (16, 12) and prob.min() <= out.min() and out.max() <= prob.max()
    np.testing.assert_allclose(resize_probabilities(np.full((64, 48), 0.3), (7, 5)), 0.3, atol=1e-6)
    same = resize_probabilities(prob, prob.shape)
    np.testing.assert_array_equal(same, prob)
    assert same is not prob
