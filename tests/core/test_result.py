"""The result of one image and its prompts: list-like access, notes, JSON with RLE, COCO results, saved masks and the
overlay, on the tiny drywall-qa-lite and on hand-made predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from drywall_qa.core.prediction import Prediction
from drywall_qa.core.result import Result
from drywall_qa.core.segmenter import Segmenter


def _prediction(prompt: str, mask: np.ndarray, **fields) -> Prediction:
    return Prediction(prompt=prompt, probabilities=mask.astype(np.float16), mask=mask, logits=torch.zeros(1),
                      threshold=0.5, **fields)


@pytest.fixture
def result() -> Result:
    crack = np.zeros((6, 8), bool)
    crack[1:3, 2:7] = True
    return Result(image=np.full((6, 8, 3), 200, np.uint8), model="m", family="drywall-qa-lite", name="wall.jpg",
                  token_limit=16,
                  predictions=(_prediction("segment crack", crack, presence=0.9),
                               _prediction("segment mould", np.zeros((6, 8), bool), unknown_concept=True,
                                           closest_concept="segment crack", concept_similarity=0.4),
                               _prediction("a very long prompt", np.zeros((6, 8), bool), truncated=True)))


def test_a_result_reads_like_its_predictions(result: Result) -> None:
    assert len(result) == 3 and result[0].prompt == "segment crack"
    assert [p.prompt for p in result] == ["segment crack", "segment mould", "a very long prompt"]
    assert result.size == (6, 8)


def test_notes_name_the_truncated_and_the_unknown_prompts(result: Result) -> None:
    notes = result.notes()
    assert len(notes) == 2
    assert "16-token limit" in notes[0] and "'a very long prompt'" in notes[0]
    assert "'segment mould' is not a concept drywall-qa-lite was trained on" in notes[1]


def test_json_and_coco_decode_to_the_masks(result: Result) -> None:
    document = result.to_json()
    assert (document["image"], document["width"], document["height"]) == ("wall.jpg", 8, 6)
    for record, prediction in zip(document["predictions"], result):
        decoded = mask_utils.decode({**record["rle"], "counts": record["rle"]["counts"].encode()})
        assert np.array_equal(decoded.astype(bool), prediction.mask)
        assert record["found"] == bool(prediction.mask.any()) and record["coverage"] == prediction.coverage
    coco = result.to_coco(image_id=7)
    assert [c["name"] for c in coco["categories"]] == [p.prompt for p in result]
    [annotation] = coco["annotations"]                    # empty masks give no annotation
    assert (annotation["image_id"], annotation["category_id"]) == (7, 1)
    assert annotation["bbox"] == [2, 1, 5, 2] and annotation["area"] == 10 and annotation["score"] == 0.9


def test_save_writes_one_png_per_prompt_and_the_summary(result: Result, tmp_path: Path) -> None:
    paths = result.save(tmp_path, extra={"note": "x"})
    assert [p.name for p in paths] == ["00_segment_crack.png", "01_segment_mould.png", "02_a_very_long_prompt.png",
                                       "predictions.json"]
    summary = json.loads((tmp_path / "predictions.json").read_text())
    assert summary["note"] == "x"
    for record, prediction in zip(summary["predictions"], result):
        assert np.array_equal(np.asarray(Image.open(tmp_path / record["mask"])) > 0, prediction.mask)


def test_mask_names_stay_distinct(result: Result) -> None:
    twins = Result(image=result.image, model="m", family="f", name="../my wall.png",
                   predictions=(result[0], result[0]))
    assert twins.mask_names(numbered=False) == ["my_wall__segment_crack.png", "my_wall__segment_crack-2.png"]


def test_the_overlay_colours_only_the_masked_pixels(result: Result) -> None:
    picture = result.overlay(alpha=0.5)
    changed = (picture != result.image).any(axis=2)
    assert np.array_equal(changed, result[0].mask)


def test_the_segmenter_returns_a_result(tiny_lite_dir: Path) -> None:
    segmenter = Segmenter.load(tiny_lite_dir)
    image = np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    result = segmenter.predict(image, ["segment crack", "segment taping area"])
    assert isinstance(result, Result) and len(result) == 2
    assert result.model == segmenter.name and result.family == segmenter.backend.family
    assert np.array_equal(result.image, image) and result[1].mask.shape == (40, 52)
