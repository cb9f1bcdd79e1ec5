"""The width bounds: centre lines and redraws of strips, the ordering of the bounds, the ridge fit, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drywall_qa.calibration.width_bound import Redraw, centre_line, fit_ridge, fixed_width_bounds, mean_iou
from drywall_qa.cli.width_bound import main


def strip(width: int, size: int = 64, vertical: bool = False) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    start = (size - width) // 2
    if vertical:
        mask[4:-4, start:start + width] = True
    else:
        mask[start:start + width, 4:-4] = True
    return mask


@pytest.mark.parametrize("width", [1, 5, 9])
def test_centre_line_of_an_odd_strip_is_its_middle_row(width: int) -> None:
    line = centre_line(strip(width))
    rows = np.flatnonzero(line[:, 32])
    assert rows.tolist() == [(64 - width) // 2 + width // 2]
    assert line[:, 10:54].sum(0).max() == 1              # one pixel per column away from the ends


@pytest.mark.parametrize("width", [3, 6, 11])
def test_redrawing_at_the_own_width_recovers_a_strip(width: int) -> None:
    item = Redraw.of(0, strip(width))
    assert abs(item.best_width - width) <= 1
    assert item.iou(width) > 0.9
    assert item.iou(width) > max(item.iou(width / 3), item.iou(3 * width))


def test_one_fixed_width_cannot_fit_thin_and_wide_masks() -> None:
    items = [Redraw.of(0, strip(3)), Redraw.of(1, strip(21, vertical=True))]
    bounds = fixed_width_bounds(items, widths=range(1, 30))
    own = mean_iou(items, [r.best_width for r in items])
    assert own > 0.8
    assert max(bounds.values()) < own - 0.2


def test_ridge_fit_recovers_a_linear_law() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = x @ np.array([1.0, -2.0, 0.0, 0.5, 0.0]) + 3.0 + rng.normal(0, 0.01, 200)
    mean, scale, coef, intercept = fit_ridge(x, y)
    predicted = ((x - mean) / scale) @ coef + intercept
    assert np.abs(predicted - y).max() < 0.1


def _strip_split(directory: Path, widths: list[int]) -> Path:
    """Grey images with a dark horizontal strip of each width, annotated as a polygon."""
    directory.mkdir()
    images, annotations = [], []
    for k, width in enumerate(widths):
        image = np.full((64, 64, 3), 200, np.uint8)
        image[strip(width)] = 40
        Image.fromarray(image).save(directory / f"{k}.png")
        top = (64 - width) // 2
        images.append({"id": k + 1, "file_name": f"{k}.png", "height": 64, "width": 64})
        annotations.append({"id": k + 1, "image_id": k + 1, "category_id": 1, "bbox": [4, top, 56, width],
                            "area": 56 * width, "iscrowd": 0,
                            "segmentation": [[4, top, 60, top, 60, top + width, 4, top + width]]})
    images.append({"id": len(widths) + 1, "file_name": "0.png", "height": 64, "width": 64})   # unannotated
    (directory / "_annotations.coco.json").write_text(json.dumps({
        "images": images, "annotations": annotations, "categories": [{"id": 1, "name": "crack"}]}))
    return directory


def test_cli_prints_the_bounds_and_the_probe(tmp_path: Path, tiny_lite_dir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    widths = [2, 4, 8, 12, 16] * 3
    split = _strip_split(tmp_path / "split", widths)
    assert main(["--split", str(split), "--probe-train", str(split), "--probe-model", str(tiny_lite_dir)]) == 0
    out = capsys.readouterr().out
    assert f"{len(widths)} masks of {split}" in out                  # the unannotated image is left out
    assert "each mask at its best width: mIoU 0.9" in out
    assert "R² of log width" in out and out.count("predicted width ×") == 4


def test_cli_reports_a_split_without_masks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    split = _strip_split(tmp_path / "split", [])
    assert main(["--split", str(split)]) == 2
    err = capsys.readouterr().err
    assert str(split) in err and "no image has an annotated mask" in err
