"""Evaluation: scores against a scripted segmenter, end to end with the tiny CLIPSeg, and CLI errors."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import drywall_qa.core.backends
from drywall_qa.cli.evaluate import main
from drywall_qa.core.atomic import write_atomic
from drywall_qa.core.segmenter import Prediction, Segmenter
from drywall_qa.data.coco import DATASETS, CocoSplit
from drywall_qa.evaluation import CSV_FIELDS, EvaluationResult, EvaluationSettings, evaluate_split
from drywall_qa.evaluation.metrics import TOLERANCES, crack_score_names, mean_width
from tests.helpers import MIXED_SIZES, evaluate_to_dict, make_mixed_split, make_split

REPO = Path(__file__).resolve().parents[2]
METRIC_KEYS = {"loss", "miou", "dice", "pooled_iou", "precision", "recall", "threshold",
               *crack_score_names(TOLERANCES)}
SCORE_KEYS = METRIC_KEYS | {"shape", "mask_verdict_disagreements", "masks_with_low_presence",
                             "empty_with_high_presence"}


def edit_annotations(directory: Path, edit: Callable[[dict], None]) -> Path:
    """Apply ``edit`` to the split's annotation document in place; the annotation file's path."""
    path = directory / "_annotations.coco.json"
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))
    return path


def add_degenerate_annotations(document: dict) -> None:
    """Image 3 gains an annotation with only a 2-point polygon (skipped) and one whose second polygon has no area."""
    document["annotations"] += [
        {"id": 3, "image_id": 3, "category_id": 1, "iscrowd": 0, "segmentation": [[1, 1, 5, 5]]},
        {"id": 4, "image_id": 3, "category_id": 1, "iscrowd": 0,
         "segmentation": [[2, 2, 8, 2, 8, 8], [1, 1, 2, 2, 3, 3]]},
    ]


@pytest.fixture
def split_dir(tmp_path: Path) -> Path:
    return make_mixed_split(tmp_path / "split")


class ScriptedSegmenter:
    """Answers with masks chosen per image index and prompt; zero logits (loss = ln 2)."""

    name = "scripted"

    def __init__(self, split: CocoSplit, script: dict[str, list[str]]) -> None:
        self.split, self.script, self.calls = split, script, []

    def model_size(self) -> dict[str, float]:
        return {"parameters": 10, "trainable_parameters": 4, "megabytes": 0.1}

    def predict(self, image: np.ndarray, prompts: list[str], threshold: float | None = None,
                tiling: str = "auto") -> list[Prediction]:
        index = len(self.calls)
        self.calls.append(list(prompts))
        truth = self.split.mask(index)
        masks = {"truth": truth, "empty": np.zeros_like(truth), "full": np.ones_like(truth)}
        threshold = 0.5 if threshold is None else threshold
        return [Prediction(p, masks[self.script[p][index]].astype(np.float32), masks[self.script[p][index]],
                           torch.zeros(4, 4), threshold) for p in prompts]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_scores_match_hand_computation(split_dir: Path, tmp_path: Path) -> None:
    split = CocoSplit(split_dir)
    areas = [int(split.mask(i).sum()) for i in range(3)]
    assert areas[0] > 0 and areas[1] > 0 and areas[2] == 0
    script = {"first": ["truth", "empty", "full"], "second": ["truth", "truth", "truth"]}
    segmenter = ScriptedSegmenter(split, script)
    progress: list[tuple[int, int]] = []
    out = tmp_path / "out"
    metrics = evaluate_to_dict(segmenter, split, ["first", "second"], None, out, panels=2,
                             progress=lambda done, total: progress.append((done, total)), dataset="cracks")

    assert segmenter.calls == [["first", "second"]] * 3            # one call per image, all prompts at once
    assert progress == [(1, 3), (2, 3), (3, 3)]
    first, second = metrics["prompts"]["first"], metrics["prompts"]["second"]
    # ious: [1, 0 (missed everything), 0 (full mask on an empty truth)]
    assert first["miou"] == pytest.approx(1 / 3) and first["dice"] == pytest.approx(1 / 3)
    h2, w2 = MIXED_SIZES[2]
    assert first["pooled_iou"] == pytest.approx(areas[0] / (areas[0] + areas[1] + h2 * w2))
    assert first["precision"] == pytest.approx((1 + 1 + 0) / 3)    # empty prediction counts as precise
    assert first["recall"] == pytest.approx((1 + 0 + 1) / 3)       # empty truth counts as fully recalled
    assert first["loss"] == pytest.approx(math.log(2))
    assert second["miou"] == second["pooled_iou"] == 1.0
    # crack scores: one perfect image of three, as for the IoU; the truth predicted scores 1 everywhere
    assert (first["cldice"], first["tol_f1_2px"], first["tol_precision_5px"]) == pytest.approx((1 / 3, 1 / 3, 2 / 3))
    assert second["cldice"] == second["tol_f1_5px"] == 1.0 and metrics["tolerances"] == [2, 5]
    assert first["threshold"] == 0.5
    sweep = metrics["threshold_sweep"]["first"]
    assert sweep["miou"] == pytest.approx([1 / 3] * len(sweep["thresholds"]))
    assert (metrics["dataset"], metrics["model"], metrics["num_images"]) == ("cracks", "scripted", 3)
    assert metrics["partial"] is False and "stopped_after" not in metrics
    assert metrics["model_size"]["parameters"] == 10

    assert json.loads((out / "metrics.json").read_text()) == metrics
    rows = _read_csv(out / "per_image.csv")
    assert [(r["image"], r["prompt"]) for r in rows] == [(f"img {i}.png", p) for i in range(3)
                                                          for p in ("first", "second")]
    assert [float(r["iou"]) for r in rows if r["prompt"] == "first"] == [1.0, 0.0, 0.0]
    assert [float(r["cldice"]) for r in rows if r["prompt"] == "first"] == [1.0, 0.0, 0.0]
    assert [int(r["true_area"]) for r in rows if r["prompt"] == "second"] == areas
    second_rows = [r for r in rows if r["prompt"] == "second"]            # predicted the truth: same widths
    assert [float(r["true_width"]) for r in second_rows] == pytest.approx([mean_width(split.mask(i)) for i in range(3)])
    assert [r["pred_width"] for r in second_rows] == [r["true_width"] for r in second_rows]
    # first two images, then the two worst by the first prompt's IoU (ties: earlier image first)
    assert sorted(p.name for p in (out / "panels").iterdir()) == [
        "first_000_img_0.png", "first_001_img_1.png", "worst_000_img_1.png", "worst_001_img_2.png"]
    assert not list(out.rglob("*.tmp"))


def test_worst_panels_are_ranked(split_dir: Path, tmp_path: Path) -> None:
    split = CocoSplit(split_dir)
    script = {"p": ["empty", "truth", "full"]}                     # ious 0, 1, 0
    out = tmp_path / "out"
    evaluate_to_dict(ScriptedSegmenter(split, script), split, ["p"], 0.3, out, panels=1)
    names = sorted(p.name for p in (out / "panels").iterdir())
    assert names == ["first_000_img_0.png", "worst_000_img_0.png"]
    # a second run with fewer panels replaces the old ones instead of mixing runs
    evaluate_to_dict(ScriptedSegmenter(split, script), split, ["p"], 0.3, out, panels=0)
    assert list((out / "panels").iterdir()) == []
    assert json.loads((out / "metrics.json").read_text())["prompts"]["p"]["threshold"] == 0.3


def test_tolerances_name_the_crack_columns(split_dir: Path, tmp_path: Path) -> None:
    split = CocoSplit(split_dir)
    metrics = evaluate_to_dict(ScriptedSegmenter(split, {"p": ["truth"] * 3}), split, ["p"], out_dir=tmp_path / "three",
                             panels=0, tolerances=[3])
    assert metrics["prompts"]["p"]["tol_f1_3px"] == 1.0 and "tol_f1_5px" not in metrics["prompts"]["p"]
    assert list(_read_csv(tmp_path / "three" / "per_image.csv")[0]) == [*CSV_FIELDS, *crack_score_names([3])]
    metrics = evaluate_to_dict(ScriptedSegmenter(split, {"p": ["truth"] * 3}), split, ["p"], out_dir=tmp_path / "none",
                             panels=0, tolerances=None)
    assert metrics["tolerances"] is None and "cldice" not in metrics["prompts"]["p"]
    assert list(_read_csv(tmp_path / "none" / "per_image.csv")[0]) == list(CSV_FIELDS)


def test_the_evaluation_result_is_typed_and_written_on_request(split_dir: Path, tmp_path: Path) -> None:
    split = CocoSplit(split_dir)
    result = evaluate_split(ScriptedSegmenter(split, {"p": ["truth"] * 3}), split, ["p"],
                            settings=EvaluationSettings(limit=2, tolerances=[3], dataset="cracks"))
    assert isinstance(result, EvaluationResult) and not result.partial
    assert (result.num_images, result.dataset, result.tolerances) == (2, "cracks", [3])
    assert result.prompts["p"]["miou"] == 1.0 and [row["image"] for row in result.rows] == ["img 0.png", "img 1.png"]
    result.mark_stopped(2, 3, "images")
    result.write(tmp_path / "out")
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written == result.to_dict() and written["partial"] is True and "rows" not in written
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metrics.json", "per_image.csv", "per_source.csv"]


def test_limit_and_no_output(split_dir: Path) -> None:
    split = CocoSplit(split_dir)
    segmenter = ScriptedSegmenter(split, {"p": ["truth"] * 3})
    metrics = evaluate_to_dict(segmenter, split, ["p"], None, None, limit=2)
    assert metrics["num_images"] == 2 and len(segmenter.calls) == 2


def test_stop_keeps_the_images_scored_so_far(split_dir: Path, tmp_path: Path) -> None:
    split = CocoSplit(split_dir)
    segmenter = ScriptedSegmenter(split, {"p": ["truth"] * 3})
    progress: list[tuple[int, int]] = []
    out = tmp_path / "out"
    metrics = evaluate_to_dict(segmenter, split, ["p"], None, out, panels=1, progress=lambda *a: progress.append(a),
                             stop=lambda: len(progress) >= 2)
    assert progress == [(1, 3), (2, 3)] and len(segmenter.calls) == 2
    assert metrics["partial"] is True and metrics["stopped_after"] == {"done": 2, "of": 3, "unit": "images"}
    assert metrics["num_images"] == 2 and metrics["prompts"]["p"]["miou"] == 1.0
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert [r["image"] for r in _read_csv(out / "per_image.csv")] == ["img 0.png", "img 1.png"]
    metrics = evaluate_to_dict(ScriptedSegmenter(split, {"p": ["truth"] * 3}), split, ["p"], stop=lambda: True)
    assert metrics["num_images"] == 1 and metrics["partial"] is True
    metrics = evaluate_to_dict(ScriptedSegmenter(split, {"p": ["truth"] * 3}), split, ["p"], limit=1,
                             stop=lambda: True)
    assert metrics["partial"] is False and "stopped_after" not in metrics    # Stop on the last image: complete


def test_write_atomic_gives_the_permissions_of_a_plain_new_file(tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text("x")
    write_atomic(tmp_path / "atomic.json", "x")
    assert (tmp_path / "atomic.json").stat().st_mode == plain.stat().st_mode


def test_write_atomic_keeps_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "metrics.json"
    write_atomic(target, "old")

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("drywall_qa.core.atomic.os.replace", fail)
    with pytest.raises(OSError):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def _check_outputs(out: Path, prompts: list[str], num_images: int, panels: int) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_images"] == num_images
    assert list(metrics["prompts"]) == prompts
    for scores in metrics["prompts"].values():
        assert set(scores) == SCORE_KEYS and scores["shape"] == "pixels"
        assert all(0.0 <= scores[k] <= 1.0 for k in METRIC_KEYS - {"loss"})
        assert scores["loss"] >= 0.0
    assert metrics["model_size"]["parameters"] >= metrics["model_size"]["trainable_parameters"] > 0
    assert metrics["timing"]["total_s"] >= 0.0
    rows = _read_csv(out / "per_image.csv")
    assert len(rows) == num_images * len(prompts)
    files = sorted((out / "panels").glob("*.png"))
    assert len(files) == 2 * panels
    width, height = Image.open(files[0]).size
    assert height > 320 and width > (2 + len(prompts)) * 320 * 0.75    # titled tiles side by side
    return metrics


def test_cli_tiny_clipseg(split_dir: Path, tiny_clipseg_dir: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    prompts = ["segment crack", "segment wall crack"]
    edit_annotations(split_dir, add_degenerate_annotations)
    negatives = make_mixed_split(tmp_path / "negatives")
    with pytest.warns(UserWarning, match="degenerate polygon|nothing to draw"):
        rc = main(["--split", str(split_dir), "--prompts", *prompts, "--model", str(tiny_clipseg_dir),
                   "--panels", "2", "--negatives-split", str(negatives), "--out", str(out)])
    assert rc == 0
    metrics = _check_outputs(out, prompts, num_images=3, panels=2)
    assert metrics["dataset"] is None and metrics["threshold"] is None
    assert (metrics["skipped_annotations"], metrics["skipped_polygons"]) == (1, 2)
    assert (metrics["negatives"]["skipped_annotations"], metrics["negatives"]["skipped_polygons"]) == (0, 0)
    printed = capsys.readouterr().out
    assert "segment crack" in printed and "clDice F1@2px F1@5px thr" in " ".join(printed.split())
    assert "\nsplit: 1 annotations with nothing to draw and 2 degenerate polygons skipped" in printed
    assert "95% intervals, bootstrap over 3 source photos (2000 resamples, seed 0)" in printed
    assert "".join(f"[{low:.3f},{high:.3f}]" for low, high in
                   metrics["intervals"]["prompts"]["segment crack"].values()) in printed.replace(" ", "")
    assert "negatives split:" not in printed


def test_cli_real_data(data_root: Path, tiny_clipseg_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rc = main(["--split", str(data_root / "cracks" / "valid"), "--dataset", "cracks", "--model",
               str(tiny_clipseg_dir), "--limit", "3", "--threshold", "0.4", "--out", str(out)])
    assert rc == 0
    metrics = _check_outputs(out, list(DATASETS["cracks"].prompts), num_images=3, panels=3)
    assert metrics["dataset"] == "cracks" and metrics["threshold"] == 0.4


def _run_failing(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    return err


def test_cli_missing_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere" / "valid"
    err = _run_failing(["--split", str(missing), "--dataset", "cracks", "--out", str(tmp_path / "o")], capsys)
    assert str(missing) in err


def test_cli_malformed_json(split_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (split_dir / "_annotations.coco.json").write_text("{not json")
    err = _run_failing(["--split", str(split_dir), "--prompts", "x", "--out", str(tmp_path / "o")], capsys)
    assert str(split_dir / "_annotations.coco.json") in err


def test_cli_polygon_far_outside_its_image_exits_2_in_a_subprocess(split_dir: Path, tmp_path: Path) -> None:
    """pycocotools segfaulted drawing such a polygon: the CLI died with 139 and no message."""
    def far_polygon(document: dict) -> None:
        document["annotations"][0]["segmentation"] = [[0, 0, 4e8, 0, 4e8, 4e8]]

    path = edit_annotations(split_dir, far_polygon)
    result = subprocess.run([sys.executable, "-m", "drywall_qa.cli.evaluate", "--split", str(split_dir), "--prompts",
                             "segment crack", "--out", str(tmp_path / "o")], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"drywall-qa evaluate: error: {path}: annotations[0] (id 1): "
                                    "segmentation polygon point (4e+08, 0) lies far outside the 64×48 image")


def test_cli_missing_model(split_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-model"
    err = _run_failing(["--split", str(split_dir), "--prompts", "x", "--model", str(missing),
                        "--out", str(tmp_path / "o")], capsys)
    assert str(missing) in err


def test_cli_default_model_absent(split_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(drywall_qa.core.backends, "BUNDLED_DIR", tmp_path / "bundled")
    err = _run_failing(["--split", str(split_dir), "--prompts", "x", "--out", str(tmp_path / "o")], capsys)
    assert str(tmp_path / "bundled") in err


@pytest.mark.parametrize("argv", [
    ["--split", "s", "--out", "o"],                                   # neither --dataset nor --prompts
    ["--split", "s", "--dataset", "walls", "--out", "o"],             # unknown dataset
    ["--split", "s", "--prompts", "x", "--threshold", "1.5", "--out", "o"],
    ["--split", "s", "--prompts", "x", "--limit", "0", "--out", "o"],
    ["--split", "s", "--prompts", "x", "--tolerances", "-1", "--out", "o"],
])
def test_cli_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_tiling_reaches_every_prediction(tiny_lite_dir: Path, tmp_path: Path) -> None:
    split = CocoSplit(make_split(tmp_path / "split", n=2, size=700))
    segmenter = Segmenter.load(tiny_lite_dir, device="cpu")
    views = []
    original = segmenter.predict
    segmenter.predict = lambda *a, **k: [views.append(p.view) or p for p in original(*a, **k)]
    metrics = {mode: evaluate_to_dict(segmenter, split, ["segment crack"], tiling=mode, tolerances=None)
               for mode in ("on", "off")}
    assert views == ["tiled: 4 windows at 640 px"] * 2 + ["whole image"] * 2
    assert metrics["on"]["tiling"] == "on" and metrics["off"]["tiling"] == "off"
