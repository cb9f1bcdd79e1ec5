"""Intervals over source photos: the grouping by Roboflow name, the bootstrap against a distribution enumerated by
hand, and what evaluation writes with them."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from drywall_qa.data.coco import CocoSplit
from drywall_qa.evaluation.intervals import (
    Sources,
    bootstrap_means,
    intervals,
    paired_difference,
    per_source_rows,
    percentile_interval,
    resample_weights,
)
from drywall_qa.evaluation.metrics import ImageScores
from tests.evaluation.test_evaluate import ScriptedSegmenter
from tests.helpers import evaluate_to_dict, make_split


def scores(iou: float, cldice: float = 0.0) -> ImageScores:
    return ImageScores(iou=iou, dice=iou, precision=1.0, recall=1.0, loss=0.0, pred_area=1, true_area=1,
                       intersection=1, crack={"cldice": cldice, "tol_f1_5px": cldice})


def test_source_is_the_roboflow_name_before_rf_or_the_image_itself() -> None:
    sources = Sources.of(["1040-dat_png_jpg.rf.69f921a851479bb2019bd0ed4740374a.jpg", "wall 3.png",
                          "1040-dat_png_jpg.rf.22d225d14f9aaa166b9278ce05633b42.jpg", ".rf.abc.jpg"])
    assert sources.names == ["1040-dat_png_jpg", "wall 3.png", ".rf.abc.jpg"]   # nothing before .rf.: its own
    assert sources.index.tolist() == [0, 1, 0, 2]


def test_bootstrap_matches_the_enumerated_distribution() -> None:
    # source A: two images scoring 1 and 0; source B: one image scoring 1. Two draws per resample, equally likely:
    # AA → 1/4·(1+0+1+0) = 0.5, AB and BA → (1+0+1)/3 = 2/3, BB → 1. So 0.5, 2/3, 1 with probability 1/4, 1/2, 1/4
    # (a mean of per-source means would give 0.75 for AB instead), and the 95 % interval is [0.5, 1].
    sources = Sources.of(["A.rf.1.jpg", "A.rf.2.jpg", "B.rf.1.jpg"])
    weights = resample_weights(2, resamples=4000, seed=3)
    means = bootstrap_means(np.array([[1.0], [0.0], [1.0]]), sources, weights)[:, 0]
    counts = Counter(np.round(means, 6).tolist())
    assert set(counts) == {0.5, round(2 / 3, 6), 1.0}
    assert [counts[v] / len(means) for v in (0.5, round(2 / 3, 6), 1.0)] == pytest.approx([0.25, 0.5, 0.25],
                                                                                           abs=0.03)
    assert percentile_interval(means[:, None]).tolist() == [[0.5, 1.0]]


def test_interval_is_numpys_percentile_of_the_resampled_means() -> None:
    # three sources of 1, 2 and 3 images; each resample's mean recomputed image by image, then np.percentile
    names = ["a.rf.1.jpg", "b.rf.1.jpg", "b.rf.2.jpg", "c.rf.1.jpg", "c.rf.2.jpg", "c.rf.3.jpg"]
    values = np.array([0.9, 0.2, 0.4, 0.7, 0.6, 0.5])
    weights = resample_weights(3, resamples=500, seed=0)
    sources = Sources.of(names)
    by_hand = []
    for draw in weights:
        picked = np.concatenate([np.repeat(values[sources.index == s], int(n)) for s, n in enumerate(draw)])
        by_hand.append(picked.mean())
    means = bootstrap_means(values[:, None], sources, weights)[:, 0]
    assert means == pytest.approx(np.array(by_hand))
    result = intervals({"p": [scores(v) for v in values]}, names, tolerances=None, resamples=500, seed=0)
    assert result["prompts"]["p"]["miou"] == pytest.approx(np.percentile(by_hand, [2.5, 97.5]).tolist())
    assert result["sources"] == 3 and result["level"] == 0.95


def test_intervals_are_seeded_and_need_two_sources() -> None:
    names = [f"{s}.rf.{i}.jpg" for s in "abcd" for i in range(2)]
    per_prompt = {"p": [scores(i / 8, cldice=1 - i / 8) for i in range(8)]}
    first, again = (intervals(per_prompt, names, tolerances=[5]) for _ in range(2))
    assert first == again and set(first["prompts"]["p"]) == {"miou", "dice", "cldice", "tol_f1_5px"}
    low, high = first["prompts"]["p"]["miou"]
    assert low < np.mean(np.arange(8) / 8) < high
    assert intervals(per_prompt, ["one.rf.x.jpg"] * 8, tolerances=[5])["prompts"] == {"p": None}


def test_per_source_rows_average_each_photos_images() -> None:
    names = ["a.rf.1.jpg", "b.rf.1.jpg", "a.rf.2.jpg"]
    rows = per_source_rows({"p": [scores(1.0, 0.5), scores(0.2), scores(0.0, 0.1)]}, names, tolerances=[5])
    assert rows == [{"source": "a", "prompt": "p", "images": 2, "miou": 0.5, "dice": 0.5, "cldice": 0.3,
                     "tol_f1_5px": 0.3},
                    {"source": "b", "prompt": "p", "images": 1, "miou": 0.2, "dice": 0.2, "cldice": 0.0,
                     "tol_f1_5px": 0.0}]


def test_evaluate_writes_intervals_and_per_source(tmp_path: Path) -> None:
    split = CocoSplit(make_split(tmp_path / "split", n=4))
    script = {"p": ["truth", "empty", "truth", "full"]}
    metrics = evaluate_to_dict(ScriptedSegmenter(split, script), split, ["p"], out_dir=tmp_path / "out", panels=0)
    assert metrics["intervals"]["sources"] == 4       # img0.png … img3.png: no Roboflow mark, one source each
    low, high = metrics["intervals"]["prompts"]["p"]["miou"]
    assert 0 <= low <= metrics["prompts"]["p"]["miou"] <= high <= 1
    with (tmp_path / "out" / "per_source.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["source"], r["images"]) for r in rows] == [(f"img{i}.png", "1") for i in range(4)]


def test_paired_difference_resamples_photos_for_both_models() -> None:
    # differences 0.1, 0.2 (photo a) and 0.1 (photo b): resamples aa → 0.15, ab/ba → 0.4/3, bb → 0.1
    names = ["a.rf.1.jpg", "a.rf.2.jpg", "b.rf.1.jpg"]
    first, second = np.array([[0.5], [0.5], [0.5]]), np.array([[0.6], [0.7], [0.6]])
    mean, bounds = paired_difference(first, second, names)
    assert mean == pytest.approx([0.4 / 3]) and bounds[0] == pytest.approx([0.1, 0.15])
    mean, bounds = paired_difference(first, first, names)
    assert mean.tolist() == [0.0] and bounds.tolist() == [[0.0, 0.0]]
    assert paired_difference(first, second, ["one.jpg"] * 3)[1] is None
