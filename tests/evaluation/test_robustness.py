"""Robustness: perturbations (the ground truth follows geometry), the report against a segmenter that reads the
mask off the image, and the evaluate CLI's --perturb outputs with the tiny CLIPSeg."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from drywall_qa.cli.evaluate import main
from drywall_qa.core.errors import InputError
from drywall_qa.core.segmenter import Prediction
from drywall_qa.data.coco import CocoSplit
from drywall_qa.evaluation import ROBUSTNESS_FIELDS, evaluate_robustness, evaluate_split
from drywall_qa.evaluation.robustness import LEVELS, PERTURBATIONS, PerturbedSplit, parse_perturbations
from tests.helpers import make_mixed_split


@pytest.fixture
def drawn_split(tmp_path: Path) -> CocoSplit:
    """The evaluation test split with every image replaced by its mask drawn white on black (lossless PNG)."""
    split = CocoSplit(make_mixed_split(tmp_path / "split"))
    for i in range(len(split)):
        Image.fromarray(np.repeat(split.mask(i)[..., None], 3, axis=2).astype(np.uint8) * 255).save(
            split.image_path(i))
    return split


class BrightSegmenter:
    """Segments bright pixels: a perfect model on ``drawn_split`` whose failures come only from perturbations."""

    name = "bright"

    def model_size(self) -> dict[str, float]:
        return {"parameters": 1, "trainable_parameters": 0, "megabytes": 0.0}

    def predict(self, image: np.ndarray, prompts: list[str], threshold: float | None = None,
                tiling: str = "auto") -> list[Prediction]:
        probabilities = image.mean(axis=2).astype(np.float32) / 255
        logits = torch.logit(torch.from_numpy(probabilities), eps=1e-4)
        return [Prediction(p, probabilities, probabilities > 0.5, logits, 0.5, float(probabilities.max()))
                for p in prompts]


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_each_perturbation_changes_the_image_more_when_stronger(drawn_split: CocoSplit, name: str) -> None:
    sample = drawn_split[0]
    changes = []
    for strength in PERTURBATIONS[name].strengths:
        image = PerturbedSplit(drawn_split, PERTURBATIONS[name], strength)[0].image
        if name == "rotate":
            assert image.shape[0] > sample.image.shape[0] and image.shape[1] > sample.image.shape[1]
            changes.append(image.shape[0] * image.shape[1])
        else:
            assert image.shape == sample.image.shape and image.dtype == np.uint8
            changes.append(np.abs(image.astype(int) - sample.image.astype(int)).mean())
    assert 0 < changes[0] < changes[1]


def test_rotation_rotates_the_ground_truth(drawn_split: CocoSplit) -> None:
    for strength in PERTURBATIONS["rotate"].strengths:
        sample = PerturbedSplit(drawn_split, PERTURBATIONS["rotate"], strength)[0]
        assert sample.mask.shape == sample.image.shape[:2]
        assert sample.mask.sum() == pytest.approx(drawn_split.mask(0).sum(), rel=0.05)
        bright = sample.image.mean(axis=2) > 127
        assert (bright & sample.mask).sum() / (bright | sample.mask).sum() > 0.9


def test_drawn_crack_leaves_the_ground_truth_alone(drawn_split: CocoSplit) -> None:
    sample = PerturbedSplit(drawn_split, PERTURBATIONS["crack"], 3)[0]
    np.testing.assert_array_equal(sample.mask, drawn_split.mask(0))
    assert (sample.image != drawn_split[0].image).any()


def test_noise_is_reproducible_per_image(drawn_split: CocoSplit) -> None:
    noise = PERTURBATIONS["noise"]
    first = PerturbedSplit(drawn_split, noise, 8)[0].image
    np.testing.assert_array_equal(first, PerturbedSplit(drawn_split, noise, 8)[0].image)
    assert not np.array_equal(first, PerturbedSplit(drawn_split, noise, 8, seed=1)[0].image)


def test_parse_perturbations() -> None:
    assert parse_perturbations("all") == list(PERTURBATIONS)
    assert parse_perturbations("rotate, blur,rotate") == ["rotate", "blur"]
    for bad in ("sharpen", "blur,fog", ""):
        with pytest.raises(InputError, match="--perturb"):
            parse_perturbations(bad)


def test_report_drops(drawn_split: CocoSplit, tmp_path: Path) -> None:
    segmenter = BrightSegmenter()
    result = evaluate_split(segmenter, drawn_split, ["a", "b"])
    clean = result.prompts
    assert clean["a"]["miou"] == 1.0
    rows = evaluate_robustness(segmenter, drawn_split, ["a", "b"], ["brightness", "rotate", "noise"], result)
    result.robustness = rows
    result.write(tmp_path)
    assert len(rows) == 3 * len(LEVELS) * 2
    drop = {(r["perturbation"], r["level"], r["prompt"]): r["miou_drop"] for r in rows}
    # ×0.6 keeps white above half range, ×0.3 does not: the two annotated images are lost, the empty one is not
    assert drop["brightness", "low", "a"] == pytest.approx(0.0)
    assert drop["brightness", "high", "a"] == pytest.approx(2 / 3)
    for level in LEVELS:                      # a rotated mask matches the rotated image: almost no loss
        assert drop["rotate", level, "b"] < 0.1
        assert drop["noise", level, "b"] < 0.05
    for row in rows:
        assert row["miou"] == pytest.approx(clean[row["prompt"]]["miou"] - row["miou_drop"])
    with (tmp_path / "robustness.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == list(ROBUSTNESS_FIELDS) and len(table) == len(rows)
    assert Image.open(tmp_path / "robustness.png").size[0] > 300


def test_cli_perturb_tiny_clipseg(tiny_clipseg_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rc = main(["--split", str(make_mixed_split(tmp_path / "split")), "--prompts", "segment crack", "segment wall crack",
               "--model", str(tiny_clipseg_dir), "--limit", "2", "--panels", "0", "--perturb", "blur,rotate",
               "--out", str(out)])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    rows = metrics["robustness"]
    assert {(r["perturbation"], r["level"]) for r in rows} == {(p, lv) for p in ("blur", "rotate") for lv in LEVELS}
    for row in rows:
        clean = metrics["prompts"][row["prompt"]]
        assert row["dice_drop"] == pytest.approx(clean["dice"] - row["dice"])
    assert (out / "robustness.png").stat().st_size > 0 and (out / "robustness.csv").is_file()


def test_cli_rejects_unknown_perturbation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--split", "s", "--prompts", "x", "--perturb", "fog", "--out", str(tmp_path)])
    assert "fog" in capsys.readouterr().err


def test_real_data_rotation_keeps_annotation_aligned(data_root: Path) -> None:
    split = CocoSplit(data_root / "drywall-join-detect" / "valid")
    sample = PerturbedSplit(split, PERTURBATIONS["rotate"], 30)[0]
    assert sample.mask.shape == sample.image.shape[:2]
    assert sample.mask.sum() == pytest.approx(split.mask(0).sum(), rel=0.05)
    corners = sample.image[:5, :5]             # outside the rotated photo: black fill, never annotated
    assert not corners.any() and not sample.mask[:5, :5].any()
