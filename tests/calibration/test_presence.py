"""Presence: raw score, Platt fit, AUROC, predictions carrying it, evaluation against negatives, calibrate CLI."""

from __future__ import annotations

import csv
import json
import shutil
from itertools import product
from pathlib import Path

import numpy as np
import pytest
import torch

from drywall_qa.cli.calibrate import main as calibrate_main
from drywall_qa.cli.evaluate import main as evaluate_main
from drywall_qa.core.backends.clipseg import ClipSegBackend
from drywall_qa.core.postprocess import SETTINGS_FILE
from drywall_qa.core.presence import (
    MIN_AUROC_CLASS,
    TOP_FRACTION,
    PresenceRecords,
    auroc,
    describe_auroc,
    describe_presence,
    fit_platt,
    is_present,
    presence_logit,
    presence_probability,
    verdict_counts,
)
from drywall_qa.core.segmenter import Prediction, Segmenter
from drywall_qa.core.shapes import SHAPES
from drywall_qa.core.tiling import VIEWS
from drywall_qa.data.coco import DATASETS, CocoSplit
from tests.helpers import evaluate_to_dict, make_mixed_split


def test_presence_logit_averages_the_most_confident_logits() -> None:
    logits = torch.full((100, 100), -5.0)
    k = round(TOP_FRACTION * logits.numel())
    logits.view(-1)[:k] = 3.0
    assert presence_logit(logits) == pytest.approx(3.0)
    logits.view(-1)[k // 2: k] = -5.0                       # half of the top cells now low
    assert presence_logit(logits) == pytest.approx(-1.0)
    assert presence_logit(torch.tensor([[0.7]])) == pytest.approx(0.7)     # at least one pixel
    saturated = torch.full((100, 100), 30.0)
    saturated.view(-1)[:k] = 40.0                             # probabilities are 1.0 either way, logits still rank
    assert presence_logit(saturated) > presence_logit(torch.full((100, 100), 30.0))


def test_presence_probability_identity_and_monotonic() -> None:
    for z in (-3.0, 0.0, 2.5):
        assert presence_probability(z) == pytest.approx(1 / (1 + np.exp(-z)))
        assert presence_probability(z, (1.0, 0.0)) == presence_probability(z)
    assert presence_probability(0.5, (2.0, -1.0)) == pytest.approx(0.5)
    values = [presence_probability(z, (2.0, -1.0)) for z in (-1.0, 0.2, 3.0)]
    assert values == sorted(values) and all(0 < v < 1 for v in values)
    assert presence_probability(-1e4) == 0.0 and presence_probability(1e4) == 1.0   # no overflow


def test_describe_presence() -> None:
    assert describe_presence(0.87, True) == "likely present (87%)"
    assert describe_presence(0.04, True) == "likely absent (96%)"
    assert describe_presence(0.5, False) == "likely present (50%, uncalibrated)"


def test_with_a_mask_the_verdict_follows_the_mask() -> None:
    assert describe_presence(0.87, True, found=True) == "present (presence 87%)"
    assert describe_presence(0.04, True, found=False) == "absent (presence 4%)"
    assert describe_presence(0.45, True, found=True) == "present (presence 45%, low confidence)"
    assert describe_presence(0.62, False, found=False) == "absent (presence 62%, low confidence, uncalibrated)"
    for presence, found in product((0.0, 0.3, 0.5, 0.9, 1.0), (True, False)):
        assert is_present(presence, found) == found
        assert describe_presence(presence, True, found=found).startswith("present" if found else "absent")
    assert is_present(0.5) and not is_present(0.49)


def test_verdict_counts_compare_presence_with_the_mask() -> None:
    pairs = [(0.45, True), (0.9, True), (0.2, True), (0.7, False), (0.1, False)]
    assert verdict_counts(pairs) == {"mask_verdict_disagreements": 0, "masks_with_low_presence": 2,
                                     "empty_with_high_presence": 1}
    assert verdict_counts([]) == {"mask_verdict_disagreements": 0, "masks_with_low_presence": 0,
                                  "empty_with_high_presence": 0}


def _records(positives: int, negatives: int) -> PresenceRecords:
    records = PresenceRecords()
    for i in range(positives):
        records.add("p", 0.6 + i / 1000, True)
    for i in range(negatives):
        records.add("p", 0.4 - i / 1000, False)
    return records


def test_auroc_needs_enough_images_of_each_class() -> None:
    summary = _records(MIN_AUROC_CLASS, MIN_AUROC_CLASS).summary()["p"]
    assert summary["auroc"] == 1.0
    assert describe_auroc(summary) == f"1.000 ({MIN_AUROC_CLASS} with / {MIN_AUROC_CLASS} without the target)"
    one_negative = _records(208, 1).summary()["p"]
    assert one_negative["auroc"] is None and (one_negative["positives"], one_negative["negatives"]) == (208, 1)
    assert describe_auroc(one_negative) == (f"n/a — add a negatives split (208 with / 1 without the target; needs "
                                            f"{MIN_AUROC_CLASS} of each)")
    assert describe_auroc(_records(MIN_AUROC_CLASS - 1, 50).summary()["p"]).startswith(
        "n/a — score more images with the target")
    assert describe_auroc(None) == "n/a — no presence scores"


def test_auroc_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, 60) / 5.0                     # many ties
    labels = rng.random(60) < 0.4
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0)
             for p, n in product(scores[labels], scores[~labels])]
    assert auroc(scores, labels) == pytest.approx(np.mean(pairs))
    assert auroc([0.1, 0.2, 0.9], [False, False, True]) == 1.0
    assert auroc([0.9, 0.2], [False, True]) == 0.0
    assert auroc([0.1, 0.2], [True, True]) is None


def test_platt_recovers_known_parameters() -> None:
    rng = np.random.default_rng(1)
    a, b = 1.7, -0.6
    x = rng.normal(0.0, 2.0, 20000)
    labels = rng.random(x.size) < 1 / (1 + np.exp(-(a * x + b)))
    fitted = fit_platt(x, labels)
    assert fitted == pytest.approx((a, b), abs=0.08)


def test_platt_stays_finite_on_separable_data() -> None:
    a, b = fit_platt([-3.0, -2.0, 2.0, 4.0], [False, False, True, True])
    assert np.isfinite([a, b]).all() and a > 0
    assert presence_probability(4.0, (a, b)) > 0.5 > presence_probability(-3.0, (a, b))
    with pytest.raises(ValueError):
        fit_platt([0.1, 0.2], [True, True])


@pytest.fixture
def model_copy(tiny_clipseg_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_clipseg_dir, tmp_path / "model"))


def test_predictions_carry_raw_or_calibrated_presence(model_copy: Path) -> None:
    segmenter = Segmenter(ClipSegBackend.from_pretrained(str(model_copy)))
    image = np.random.default_rng(2).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    raw = segmenter.predict(image, ["segment crack", "segment taping area"])
    for prediction in raw:
        assert prediction.presence == pytest.approx(presence_probability(presence_logit(prediction.logits)))
    segmenter.backend.settings.presence = {"segment crack": (2.0, -1.0)}
    crack, taping = segmenter.predict(image, ["segment crack", "segment taping area"])
    assert crack.presence == pytest.approx(presence_probability(presence_logit(raw[0].logits), (2.0, -1.0)))
    assert taping.presence == pytest.approx(raw[1].presence)


class PresenceSegmenter:
    """Presence taken from a list, one value per call; a one-pixel mask where it is high (or where ``found``
    says, one value per call)."""

    name = "scripted"

    def __init__(self, presence: list[float], found: list[bool] | None = None) -> None:
        self.presence, self.found = iter(presence), iter(found) if found is not None else None
        self.calls = 0

    def model_size(self) -> dict[str, float]:
        return {"parameters": 1, "trainable_parameters": 1, "megabytes": 0.0}

    def predict(self, image: np.ndarray, prompts: list[str], threshold: float | None = None,
                tiling: str = "auto") -> list[Prediction]:
        value, self.calls = next(self.presence), self.calls + 1
        mask = np.zeros(image.shape[:2], bool)
        mask[0, 0] = value > 0.5 if self.found is None else next(self.found)
        return [Prediction(p, mask.astype(np.float32), mask, torch.zeros(2, 2), 0.5, value) for p in prompts]


def test_evaluation_reports_presence_auroc_with_negatives(tmp_path: Path) -> None:
    split = CocoSplit(make_mixed_split(tmp_path / "split"))          # images 0, 1 annotated; image 2 empty
    negatives = CocoSplit(make_mixed_split(tmp_path / "negatives"))
    # split: 0.9, 0.6 (targets), 0.7 (empty) ; negatives: 0.2, 0.8, 0.1
    segmenter = PresenceSegmenter([0.9, 0.6, 0.7, 0.2, 0.8, 0.1])
    progress: list[tuple[int, int]] = []
    out = tmp_path / "out"
    metrics = evaluate_to_dict(segmenter, split, ["p"], out_dir=out, panels=0, negatives=negatives,
                             progress=lambda done, total: progress.append((done, total)))
    presence = metrics["presence"]["p"]
    assert presence["auroc"] is None                        # 2 with / 4 without: below MIN_AUROC_CLASS
    assert (presence["positives"], presence["negatives"]) == (2, 4)
    assert presence["mean_positive"] == pytest.approx(0.75)
    assert metrics["negatives"]["num_images"] == 3
    assert metrics["negatives"]["prompts"]["p"]["images_with_detections"] == pytest.approx(1 / 3)
    assert progress[-1] == (6, 6)
    with (out / "per_image.csv").open() as handle:
        assert [float(r["presence"]) for r in csv.DictReader(handle)] == [0.9, 0.6, 0.7]


def test_evaluation_counts_masks_the_presence_disagrees_with(tmp_path: Path) -> None:
    split = CocoSplit(make_mixed_split(tmp_path / "split"))
    segmenter = PresenceSegmenter([0.45, 0.9, 0.7], found=[True, True, False])
    scores = evaluate_to_dict(segmenter, split, ["p"], panels=0)["prompts"]["p"]
    assert (scores["mask_verdict_disagreements"], scores["masks_with_low_presence"],
            scores["empty_with_high_presence"]) == (0, 1, 1)


def test_stop_among_the_negatives_keeps_the_split_and_the_negatives_so_far(tmp_path: Path) -> None:
    split = CocoSplit(make_mixed_split(tmp_path / "split"))
    negatives = CocoSplit(make_mixed_split(tmp_path / "negatives"))
    segmenter = PresenceSegmenter([0.9, 0.6, 0.7, 0.2, 0.8, 0.1])
    metrics = evaluate_to_dict(segmenter, split, ["p"], panels=0, negatives=negatives,
                               stop=lambda: segmenter.calls >= 4)
    assert metrics["num_images"] == 3 and metrics["negatives"]["num_images"] == 1
    assert metrics["partial"] is True and metrics["stopped_after"] == {"done": 4, "of": 6, "unit": "images"}
    assert metrics["presence"]["p"]["negatives"] == 2               # the split's empty image and one negative
    metrics = evaluate_to_dict(PresenceSegmenter([0.9] * 3), split, ["p"], negatives=negatives, limit=1,
                             stop=lambda: True)                         # stopped before any negative
    assert metrics["negatives"]["num_images"] == 0
    assert metrics["negatives"]["prompts"]["p"] == {"images_with_detections": None, "mean_coverage": None}


def _data_root(directory: Path) -> Path:
    for name in DATASETS.values():
        make_mixed_split(directory / name.folder / "valid")
    return directory


def test_calibrate_cli_writes_settings(model_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _data_root(tmp_path / "data")
    config = (model_copy / "config.json").read_text()
    assert calibrate_main(["--model", str(model_copy), "--data-root", str(root)]) == 0
    assert (model_copy / "config.json").read_text() == config
    settings = json.loads((model_copy / SETTINGS_FILE).read_text())
    stored = settings["presence"]
    assert set(stored) == {p for spec in DATASETS.values() for p in spec.prompts}
    assert all(len(v) == 2 and np.isfinite(v).all() for v in stored.values())
    assert "presence calibration written" in capsys.readouterr().out
    assert set(settings["shapes"]) == set(stored) and set(settings["shapes"].values()) <= set(SHAPES)
    assert set(settings["thresholds"]) == set(stored)
    assert set(settings["scales"]) == set(stored) and {s["view"] for s in settings["scales"].values()} <= set(VIEWS)
    segmenter = Segmenter.load(model_copy, device="cpu")
    assert segmenter.backend.settings.presence["segment crack"] == tuple(stored["segment crack"])
    prediction, = segmenter.predict(CocoSplit(root / "cracks" / "valid").load_image(0), "segment crack")
    assert prediction.presence == pytest.approx(presence_probability(presence_logit(prediction.logits),
                                                                     tuple(stored["segment crack"])))


def test_calibrate_cli_errors(tiny_clipseg_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert calibrate_main(["--model", str(tmp_path / "nothing"), "--data-root", str(tmp_path)]) == 2
    assert "config.json" in capsys.readouterr().err
    root = tmp_path / "data"
    make_mixed_split(root / "cracks" / "valid")
    copy = shutil.copytree(tiny_clipseg_dir, tmp_path / "model")
    assert calibrate_main(["--model", str(copy), "--data-root", str(root), "--datasets", "cracks", "taping"]) == 2
    assert "drywall-join-detect" in capsys.readouterr().err          # the missing split is named


def test_calibrate_and_evaluate_real_data(model_copy: Path, data_root: Path, tmp_path: Path) -> None:
    assert calibrate_main(["--model", str(model_copy), "--data-root", str(data_root), "--limit", "3"]) == 0
    assert "segment crack" in json.loads((model_copy / SETTINGS_FILE).read_text())["presence"]
    out = tmp_path / "eval"
    rc = evaluate_main(["--split", str(data_root / "cracks" / "valid"), "--dataset", "cracks", "--model",
                        str(model_copy), "--limit", "3", "--panels", "0", "--out", str(out),
                        "--negatives-split", str(data_root / "drywall-join-detect" / "valid")])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for prompt in DATASETS["cracks"].prompts:
        presence = metrics["presence"][prompt]
        assert presence["negatives"] >= 3 and presence["positives"] >= 1
        assert presence["auroc"] is None                     # 3 images of each split: below MIN_AUROC_CLASS
