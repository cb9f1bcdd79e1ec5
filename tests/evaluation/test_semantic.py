"""Semantic maps: label assignment, legend picture, per-class scores from a multi-class ground truth, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from drywall_qa.cli.semantic import main
from drywall_qa.core.segmenter import Prediction
from drywall_qa.core.visualisation import palette
from drywall_qa.data.coco import DATASETS, CocoSplit
from drywall_qa.evaluation.semantic import (
    LEGEND_CHARS,
    Confusion,
    SemanticClass,
    evaluate_semantic,
    legend,
    render_semantic,
    semantic_map,
)
from tests.helpers import make_mixed_split


def _prediction(prompt: str, probabilities: np.ndarray, threshold: float) -> Prediction:
    probabilities = np.asarray(probabilities, np.float32)
    return Prediction(prompt, probabilities, probabilities > threshold, torch.zeros(1, 1), threshold)


def test_each_pixel_gets_the_most_probable_prompt_above_its_threshold() -> None:
    a = np.array([[0.9, 0.6, 0.2, 0.1, 0.55]], np.float32)
    b = np.array([[0.7, 0.8, 0.1, 0.3, 0.65]], np.float32)
    labels = semantic_map([a, b], [a > 0.5, b > 0.7])          # 0.65 is below b's own threshold
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, [[1, 2, 0, 0, 1]])


def test_confusion_scores_match_hand_counts() -> None:
    truth = np.array([[0, 1, 1, 2], [2, 2, 0, 0]])
    pred = np.array([[0, 1, 2, 2], [2, 0, 0, 1]])
    confusion = Confusion(3)
    confusion.add(truth, pred)
    confusion.add(np.zeros((1, 2), int), np.zeros((1, 2), int))     # two more true background pixels
    assert confusion.matrix.sum() == 10
    scores = confusion.scores(["background", "crack", "taping"])
    # crack: TP 1, predicted 2, actual 2 ; taping: TP 2, predicted 3, actual 3 ; background: TP 4, pred 5, actual 5
    assert scores["crack"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "iou": 1 / 3, "support": 2})
    assert scores["taping"]["precision"] == pytest.approx(2 / 3) and scores["taping"]["iou"] == pytest.approx(0.5)
    assert scores["background"]["recall"] == pytest.approx(4 / 5)


def test_absent_class_follows_metric_conventions() -> None:
    confusion = Confusion(2)
    confusion.add(np.zeros((2, 2), int), np.zeros((2, 2), int))
    assert confusion.scores(["background", "crack"])["crack"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0,
                                                                  "iou": 1.0, "support": 0}


def test_legend_and_render() -> None:
    names = ["segment crack", "segment taping area", "segment drywall seam"]
    key = legend(names)
    assert key.shape[0] > legend(names[:1]).shape[0]
    assert legend(["x" * 200]).shape == legend(["x" * (LEGEND_CHARS - 1) + "…"]).shape   # long names are cut
    for color in palette(3):                                        # every swatch is drawn
        assert (key == np.asarray(color, np.uint8)).all(axis=2).any()
    image = np.full((40, 60, 3), 100, np.uint8)
    labels = np.zeros((40, 60), np.uint8)
    labels[:10] = 2
    picture = render_semantic(image, labels, names, alpha=1.0)
    assert picture.shape[1] > 60 and picture.shape[0] >= 40
    np.testing.assert_array_equal(picture[0, 0], palette(3)[1])      # label 2 → second colour
    np.testing.assert_array_equal(picture[20, 0], image[20, 0])      # background untouched


def _paint(split: CocoSplit, channel: int) -> CocoSplit:
    """Draw each image's mask into one colour channel (lossless), so a channel reader is an exact model."""
    for i in range(len(split)):
        image = np.zeros((*split.mask(i).shape, 3), np.uint8)
        image[..., channel] = split.mask(i) * 255
        Image.fromarray(image).save(split.image_path(i))
    return split


class ChannelSegmenter:
    """Prompt "red"/"green": probability = that colour channel."""

    name = "channels"

    def predict(self, image: np.ndarray, prompts: list[str], threshold: float | None = None,
                tiling: str = "auto") -> list[Prediction]:
        return [_prediction(p, image[..., {"red": 0, "green": 1}[p]] / 255, 0.5) for p in prompts]


def test_evaluate_semantic_scores_the_multiclass_truth(tmp_path: Path) -> None:
    cracks = _paint(CocoSplit(make_mixed_split(tmp_path / "cracks")), 0)
    taping = _paint(CocoSplit(make_mixed_split(tmp_path / "taping")), 1)
    classes = [SemanticClass("crack", "red", cracks), SemanticClass("taping", "green", taping)]
    report = evaluate_semantic(ChannelSegmenter(), classes, out_dir=tmp_path / "out", panels=1)
    for name in ("background", "crack", "taping"):
        assert report["scores"][name]["f1"] == 1.0 and report["scores"][name]["iou"] == 1.0
    assert report["classes"]["taping"]["num_images"] == 3
    assert json.loads((tmp_path / "out" / "semantic.json").read_text()) == report
    assert sorted(p.name for p in (tmp_path / "out" / "semantic_panels").iterdir()) == ["crack_000.png",
                                                                                       "taping_000.png"]

    _paint(taping, 0)                  # taping targets now look like cracks: found, but as the wrong class
    report = evaluate_semantic(ChannelSegmenter(), classes, limit=2)
    area = [int(cracks.mask(i).sum()) for i in range(2)]
    crack = report["scores"]["crack"]
    assert crack["recall"] == 1.0 and crack["precision"] == pytest.approx(0.5)   # same areas in both splits
    assert report["scores"]["taping"]["recall"] == 0.0 and report["scores"]["taping"]["support"] == sum(area)
    assert report["confusion"]["matrix"][2][1] == sum(area)


def test_cli_tiny_clipseg(tiny_clipseg_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    for spec in DATASETS.values():
        make_mixed_split(root / spec.folder / "valid")
    out = tmp_path / "out"
    assert main(["--data-root", str(root), "--model", str(tiny_clipseg_dir), "--out", str(out), "--panels", "1"]) == 0
    report = json.loads((out / "semantic.json").read_text())
    assert list(report["scores"]) == ["background", *sorted(DATASETS)]
    assert {c["prompt"] for c in report["classes"].values()} == {s.canonical for s in DATASETS.values()}
    pixels = sum(int(np.prod(CocoSplit(root / s.folder / "valid").mask(i).shape)) for s in DATASETS.values()
                 for i in range(3))
    assert np.sum(report["confusion"]["matrix"]) == pixels
    assert "mean" in capsys.readouterr().out


def test_cli_prompt_count_must_match(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    for spec in DATASETS.values():
        make_mixed_split(root / spec.folder / "valid")
    assert main(["--data-root", str(root), "--prompts", "only one", "--out", str(tmp_path / "o")]) == 2
    assert "--prompts" in capsys.readouterr().err


def test_cli_real_data(data_root: Path, tiny_clipseg_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["--data-root", str(data_root), "--model", str(tiny_clipseg_dir), "--limit", "2",
                 "--panels", "1", "--out", str(out)]) == 0
    report = json.loads((out / "semantic.json").read_text())
    assert all(c["num_images"] == 2 for c in report["classes"].values())
    assert report["scores"]["taping"]["support"] > 0 and report["scores"]["cracks"]["support"] > 0
    assert len(list((out / "semantic_panels").glob("*.png"))) == 2
