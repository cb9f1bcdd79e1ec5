"""Overlays, error maps and panels: shapes, colours at known pixels, title bands."""

from __future__ import annotations

import numpy as np
import pytest

from drywall_qa.core.visualisation import (
    BAND_COLOR,
    FN_COLOR,
    FP_COLOR,
    GAP,
    GT_COLOR,
    TN_DIM,
    TP_COLOR,
    error_map,
    overlay,
    palette,
    panel,
    titled,
)


@pytest.mark.parametrize("n", [1, 3, 10, 11, 40])
def test_palette_distinct_rgb(n: int) -> None:
    colors = palette(n)
    assert len(colors) == n and len(set(colors)) == n
    assert all(len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c) for c in colors)


def test_overlay_blends_and_stacks() -> None:
    image = np.full((3, 4, 3), 100, np.uint8)
    first = np.zeros((3, 4), bool)
    first[0, :2] = True
    second = np.zeros((3, 4), bool)
    second[0, 1] = True
    out = overlay(image, [first, second], [(200, 0, 0), (0, 0, 250)], alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert tuple(out[0, 0]) == (150, 50, 50)
    assert tuple(out[0, 1]) == (75, 25, 150)          # (150, 50, 50) then half (0, 0, 250) on top
    assert (out[1:] == 100).all() and (out[0, 2:] == 100).all()


def test_overlay_default_colors_and_shape_check() -> None:
    image = np.zeros((2, 2, 3), np.uint8)
    out = overlay(image, [np.ones((2, 2), bool)], alpha=1.0)
    assert tuple(out[0, 0]) == palette(1)[0]
    with pytest.raises(ValueError, match="does not match"):
        overlay(image, [np.ones((3, 2), bool)])
    with pytest.raises(ValueError, match="RGB uint8"):
        overlay(np.zeros((2, 2), np.uint8), [])


def test_error_map_colours() -> None:
    pred = np.array([[1, 1], [0, 0]], bool)
    truth = np.array([[1, 0], [1, 0]], bool)
    out = error_map(pred, truth)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == TP_COLOR
    assert tuple(out[0, 1]) == FP_COLOR
    assert tuple(out[1, 0]) == FN_COLOR
    assert tuple(out[1, 1]) == (0, 0, 0)


def test_error_map_over_image_dims_true_negatives() -> None:
    image = np.full((2, 2, 3), 200, np.uint8)
    pred = np.array([[1, 0], [0, 0]], bool)
    out = error_map(pred, pred, image)
    assert tuple(out[1, 1]) == (int(200 * TN_DIM),) * 3
    r, g, b = (int(v) for v in out[0, 0])
    assert g > r and g > b                               # true positive tinted green


def _band_height(out: np.ndarray, tile_height: int) -> int:
    band = out.shape[0] - tile_height
    assert band > 0
    return band


def test_titled_draws_text_on_band() -> None:
    tile = np.full((50, 200, 3), 255, np.uint8)
    out = titled(tile, "segment crack", band=20)
    assert out.shape == (70, 200, 3)
    band = out[:20]
    assert (band == BAND_COLOR).all(axis=2).mean() > 0.5     # mostly background
    assert (band.min(axis=2) > 200).any()                     # some bright text pixels
    assert (out[20:] == 255).all()


def test_titled_truncates_long_titles() -> None:
    tile = np.zeros((40, 120, 3), np.uint8)
    long = titled(tile, "segment the taping area along every drywall joint " * 3, band=20)
    short = titled(tile, "segment the", band=20)
    assert not np.array_equal(long[:20], short[:20])
    # text stops before the right padding, so the last columns stay background
    assert (long[:20, -3:] == BAND_COLOR).all()


def test_panel_layout_and_colours() -> None:
    image = np.full((40, 60, 3), 128, np.uint8)
    truth = np.zeros((40, 60), bool)
    truth[:20, :30] = True                                   # top-left quadrant
    pred = np.zeros((40, 60), bool)
    pred[:20] = True                                         # top half: TP left, FP right
    out = panel(image, truth, [("segment crack", pred), ("segment wall crack", np.zeros_like(pred))], height=80)
    band = _band_height(out, 80)
    tile_w = 120                                             # 60 px scaled by 80/40
    assert out.dtype == np.uint8
    assert out.shape[1] == 4 * tile_w + 3 * GAP

    def tile(i: int) -> np.ndarray:
        x = i * (tile_w + GAP)
        return out[band:, x:x + tile_w]

    assert (tile(0) == 128).all()                            # input untouched
    assert tuple(tile(1)[20, 30]) != (128, 128, 128)          # GT painted...
    assert tuple(tile(1)[60, 90]) == (128, 128, 128)          # ...only where the truth is
    expected_gt = np.rint(0.5 * 128 + 0.5 * np.array(GT_COLOR))   # default alpha 0.5
    assert tuple(tile(1)[20, 30]) == tuple(expected_gt.astype(int))
    first = tile(2)
    assert np.argmax(first[20, 30]) == 1                     # TP green
    assert np.argmax(first[20, 90]) == 0                     # FP red
    assert tuple(first[60, 90]) == (int(128 * TN_DIM),) * 3  # TN dimmed
    assert np.argmax(tile(3)[20, 30]) == 2                   # empty prediction: FN blue
    for i in range(4):                                       # every tile has a title
        x = i * (tile_w + GAP)
        assert (out[:band, x:x + tile_w].min(axis=2) > 200).any()
    assert (out[:, tile_w:tile_w + GAP] == BAND_COLOR).all()  # gap between tiles


def test_panel_without_truth_has_no_gt_tile() -> None:
    image = np.zeros((30, 30, 3), np.uint8)
    mask = np.ones((30, 30), bool)
    out = panel(image, None, [("a", mask), ("b", mask)], height=60)
    assert out.shape[1] == 3 * 60 + 2 * GAP
    colors = palette(2)
    assert np.argmax(out[-1, 60 + GAP + 5]) == np.argmax(colors[0])


def test_panel_keeps_thin_lines_when_downscaling() -> None:
    image = np.zeros((400, 400, 3), np.uint8)
    line = np.zeros((400, 400), bool)
    line[:, 201] = True                                       # 1-px crack
    out = panel(image, line, [], height=100)
    gt_tile = out[-100:, 100 + GAP:200 + GAP]
    assert (gt_tile.max(axis=2) > 0).any(axis=1).all()        # visible on every row
