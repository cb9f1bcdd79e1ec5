"""Review tab callbacks: per-image decisions, filters, paging, next undecided, ground-truth fixes, the corrected
export re-scored, two models compared, and the crack-aware scores in Review and Evaluate."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from drywall_qa.app.evaluate.views import metrics_table
from drywall_qa.app.messages import escape_md
from drywall_qa.app.models import ModelCache
from drywall_qa.app.review.forms import (
    EDITED,
    PREDICTION,
    TRUTH,
    CorrectionForm,
    DecisionForm,
    EditForm,
    MoveForm,
    RowForm,
    ScoreForm,
)
from drywall_qa.app.review.tab import ReviewTab
from drywall_qa.data.coco import CocoSplit
from drywall_qa.review import EXCLUDE_IMAGE, GROUND_TRUTH_WRONG, PREDICTION_CORRECT, PREDICTION_WRONG, read_decisions
from drywall_qa.review import table as review_table
from drywall_qa.review.session import ReviewSession, short_name, short_names
from drywall_qa.review.table import ALL_PROMPTS, NO_ANNOTATION, UNDECIDED, ViewForm, rows_in_view
from tests.helpers import make_split

PROMPTS = ["segment crack", "segment wall crack"]


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache(device="cpu")


@pytest.fixture
def tab(models: ModelCache, tmp_path: Path, tiny_lite_dir: Path) -> ReviewTab:
    make_split(tmp_path / "data" / "cracks" / "valid", n=4)
    return ReviewTab(models, [tmp_path / "data"], tmp_path / "out", compare_choices=[("tiny", str(tiny_lite_dir))])


def score(tab: ReviewTab, key: Path, limit: int = 4, value: str | None = None, **options) -> tuple:
    value = value or str(tab.roots[0] / "cracks" / "valid")
    return tab.score(ScoreForm(model=str(key), split=value, selected=PROMPTS, limit=limit, **options))


def decide(tab: ReviewTab, session: ReviewSession, image: str, decision: str, **fields) -> tuple:
    return tab.decide(DecisionForm(RowForm(session, image), decision=decision, **fields))


def test_short_names_drop_roboflow_hashes_unless_two_images_would_share_one() -> None:
    assert short_name("00017_jpg.rf.46590b8083565f559fda1bd3f6ad174e.jpg") == "00017.jpg"
    assert short_name("2000x1500_71_resized_jpg.rf.5174c8.jpg") == "2000x1500_71_resized.jpg"
    assert short_name("img 0.png") == "img 0.png"
    names = ["a_jpg.rf.1.jpg", "a_jpg.rf.2.jpg", "b_png.rf.3.png"]
    assert short_names(names) == {"a_jpg.rf.1.jpg": "a_jpg.rf.1.jpg", "a_jpg.rf.2.jpg": "a_jpg.rf.2.jpg",
                                  "b_png.rf.3.png": "b.png"}


def test_one_row_per_image_worst_first_with_crack_scores_and_synonyms_in_the_detail(
        tab: ReviewTab, tiny_lite_dir: Path) -> None:
    status, table, line, session, review_file, *filters = score(tab, tiny_lite_dir)
    assert "Scored 4 of 4 images" in status and review_file is None
    assert len(table) == 4 and set(table["Prompt"]) == {PROMPTS[0]}
    assert list(table["IoU"]) == sorted(table["IoU"])
    assert {"clDice", "F1 2px", "F1 5px"} <= set(table.columns)
    assert line.startswith("Page 1 of 1 · 4 rows in view · 0 of 4")
    assert filters[1]["choices"] == [*PROMPTS, ALL_PROMPTS]
    _, every, _ = tab.view(MoveForm(RowForm(session), ViewForm(prompt=ALL_PROMPTS)))
    assert len(every) == 8
    worst = list(table.iloc[0])
    event = gr.SelectData(None, {"index": [0, 2], "value": worst[2], "row_value": worst})
    line, image, truth, prediction, errors, name, prompt, decision, comment, detail, editor = tab.select(session, event)
    assert worst[0] in line and f"IoU {worst[2]:.3f}" in line and "clDice" in line
    assert image.shape == truth.shape == prediction.shape == errors.shape == (64, 64, 3)
    assert (name, prompt, decision, comment, editor) == (worst[0], PROMPTS[0], None, "", None)
    assert list(detail["Prompt"]) == PROMPTS


def test_an_image_without_annotation_sorts_last_flagged(tab: ReviewTab, tiny_lite_dir: Path) -> None:
    folder = tab.roots[0] / "cracks" / "valid"
    document = json.loads((folder / "_annotations.coco.json").read_text())
    document["annotations"] = [a for a in document["annotations"] if a["image_id"] != 1]
    (folder / "_annotations.coco.json").write_text(json.dumps(document))
    _, table, _, session, *_ = score(tab, tiny_lite_dir)
    assert table.iloc[-1]["Image"] == "img1.png" and table.iloc[-1]["Note"] == NO_ANNOTATION
    assert all(NO_ANNOTATION not in note for note in table["Note"][:-1])
    assert NO_ANNOTATION in tab.show(RowForm(session, "img1.png")).status


def test_decisions_per_image_with_reviewer_survive_a_restart(tab: ReviewTab, tiny_lite_dir: Path,
                                                               models: ModelCache) -> None:
    _, table, _, session, *_ = score(tab, tiny_lite_dir)
    image = table.iloc[0]["Image"]
    status, table, line, review_file, decision = decide(tab, session, image, PREDICTION_WRONG,
                                                        comment=" wrong seam ", reviewer="ana")
    assert "Saved *prediction wrong*" in status and decision == PREDICTION_WRONG
    row = table[table["Image"] == image].iloc[0]
    assert (row["Decision"], row["Note"]) == ("prediction wrong", "wrong seam")
    assert "1 of 4 scored images decided" in line
    stored = read_decisions(Path(review_file))[image]
    assert (stored.decision, stored.comment, stored.reviewer) == (PREDICTION_WRONG, "wrong seam", "ana")
    restarted = ReviewTab(models, tab.roots[:1], tab.out_dir)
    shown = restarted.show(RowForm(session, image))
    assert (shown.decision, shown.comment) == (PREDICTION_WRONG, "wrong seam") and "by ana" in shown.status


def test_the_first_review_format_is_read(tab: ReviewTab, tiny_lite_dir: Path) -> None:
    _, _, _, session, *_ = score(tab, tiny_lite_dir)
    path = tab.store(session).path
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 1, "split": "cracks/valid", "reviews": {
        "img2.png": {PROMPTS[0]: {"decision": "accept", "comment": "", "updated": "2025-01-01T00:00:00+00:00"}}}}))
    _, table, _ = tab.view(MoveForm(RowForm(session), ViewForm()))
    assert table[table["Image"] == "img2.png"].iloc[0]["Decision"] == "prediction correct"


def test_filters_paging_and_next_undecided(tab: ReviewTab, tiny_lite_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _, table, _, session, *_ = score(tab, tiny_lite_dir)
    order = list(table["Image"])
    monkeypatch.setattr(review_table, "PAGE_SIZE", 3)
    _, first, line = tab.view(MoveForm(RowForm(session), ViewForm()))
    assert list(first["Image"]) == order[:3] and line.startswith("Page 1 of 2")
    _, second, line = tab.view(MoveForm(RowForm(session), ViewForm(page=2)))
    assert list(second["Image"]) == order[3:] and line.startswith("Page 2 of 2")
    decide(tab, session, order[1], EXCLUDE_IMAGE)
    _, undecided, _ = tab.view(MoveForm(RowForm(session), ViewForm(decision=UNDECIDED, page=9)))
    assert order[1] not in set(undecided["Image"])
    _, excluded, _ = tab.view(MoveForm(RowForm(session), ViewForm(decision=EXCLUDE_IMAGE)))
    assert list(excluded["Image"]) == [order[1]]
    low = float(table.iloc[0]["IoU"])
    _, narrow, _ = tab.view(MoveForm(RowForm(session), ViewForm(iou_min=low - 5e-4, iou_max=low + 5e-4)))
    assert list(narrow["IoU"]) == [low]
    visited, current = [], None
    for _ in range(3):
        shown = tab.next_undecided(MoveForm(RowForm(session, current)))
        current = shown.image
        visited.append(current)
        decide(tab, session, current, PREDICTION_CORRECT)
    assert visited == [order[0], order[2], order[3]]
    assert "every image in view is decided" in tab.next_undecided(MoveForm(RowForm(session, current))).status


def test_use_prediction_export_and_rescore_shows_the_changed_iou(tab: ReviewTab, tiny_lite_dir: Path) -> None:
    _, table, _, session, *_ = score(tab, tiny_lite_dir)
    worst = table.iloc[0]
    assert worst["IoU"] < 1
    status, table, *_, decision = tab.correct(CorrectionForm(RowForm(session, worst["Image"]), source=PREDICTION))
    assert "with the corrected ground truth (prediction)" in status and decision == GROUND_TRUTH_WRONG
    assert "ground truth corrected (prediction)" in table[table["Image"] == worst["Image"]].iloc[0]["Note"]
    decide(tab, session, table.iloc[-1]["Image"], EXCLUDE_IMAGE)
    status, files, split = tab.export(session)
    assert "Exported 3 images" in status and "1 with corrected ground truth, 1 excluded" in status
    assert sorted(Path(f).name for f in files) == ["_annotations.coco.json", "decisions.csv"]
    assert Path(split["value"]).parent.parent.name == "corrected" and split["value"] in dict(
        (v, k) for k, v in split["choices"])
    assert len(CocoSplit(split["value"])) == 3
    _, rescored, *_ = score(tab, tiny_lite_dir, value=split["value"])
    assert rescored[rescored["Image"] == worst["Image"]].iloc[0]["IoU"] == 1.0


def test_edit_adds_and_removes_brush_strokes_from_the_starting_mask(tab: ReviewTab, tiny_lite_dir: Path) -> None:
    _, table, _, session, *_ = score(tab, tiny_lite_dir)
    image = table.iloc[0]["Image"]
    status, editor, start = tab.edit(EditForm(RowForm(session, image), source=TRUTH))
    assert "Editing the ground truth" in status and start == TRUTH
    assert editor["background"].shape == (64, 64, 3) and editor["layers"] == []
    truth = CocoSplit(tab.roots[0] / "cracks" / "valid")[int(image[3])].mask
    layer = np.zeros((64, 64, 4), np.uint8)
    layer[2:6, 2:12] = (255, 0, 102, 153)            # the adding brush
    layer[truth] = (0, 200, 255, 153)                # the removing brush over the whole ground truth…
    layer[truth & (np.arange(64) < 40)[None, :]] = 0  # …but its left part erased again
    edited = {**editor, "layers": [layer]}
    status, *_ = tab.correct(CorrectionForm(RowForm(session, image), source=EDITED, editor=edited, start=start))
    assert "corrected ground truth (edited)" in status
    saved = read_decisions(tab.store(session).path)[image]
    expected = truth & (np.arange(64) < 40)[None, :]
    expected[2:6, 2:12] = True
    assert saved.mask_source == EDITED and np.array_equal(saved.mask_array(), expected)
    decide(tab, session, image, GROUND_TRUTH_WRONG, comment="band too wide")     # the mask stays
    kept = read_decisions(tab.store(session).path)[image]
    assert kept.comment == "band too wide" and np.array_equal(kept.mask_array(), expected)
    _, from_prediction, start = tab.edit(EditForm(RowForm(session, image), source=PREDICTION))
    assert start == PREDICTION and from_prediction["background"].shape == (64, 64, 3)
    status, *_ = tab.correct(CorrectionForm(RowForm(session, image), source=EDITED, editor=None))
    assert "press an Edit button" in status


def test_two_models_side_by_side_sorted_by_disagreement(tab: ReviewTab, tiny_lite_dir: Path, tmp_path: Path) -> None:
    status, table, _, session, *_ = score(tab, tiny_lite_dir, compare=str(tiny_lite_dir))
    assert {"IoU B", "Δ IoU", "clDice B"} <= set(table.columns) and session.compare is not None
    # the same model twice: every paired difference and its interval is exactly 0
    assert "B − A, mean over images, 95 % interval" in status
    assert escape_md(f"{session.prompts[0]}: IoU +0.000 [+0.000, +0.000], clDice +0.000 [+0.000, +0.000]") in status
    shown = tab.show(RowForm(session, table.iloc[0]["Image"]))
    assert shown.errors.shape == (64, 2 * 64 + 8, 3) and "B: IoU" in shown.status
    status, *_ = score(tab, tiny_lite_dir, compare=str(tmp_path))
    assert "is not offered by this server" in status
    rows = [{"image": f"i{n}", "prompt": "p", "annotated": True, "scores": {"iou": a, "dice": a},
             "other": {"iou": b}} for n, (a, b) in enumerate([(0.1, 0.2), (0.9, 0.1), (0.5, 0.5)])]
    synthetic = ReviewSession("s", "cracks/valid", "x", "m", "m", ["p"], None, rows, {"i0": 0, "i1": 1, "i2": 2},
                              "b", "b")
    assert [row["image"] for row in rows_in_view(synthetic, {}, ViewForm())] == ["i1", "i0", "i2"]


def test_bad_requests_give_messages_and_keep_the_table(tab: ReviewTab, tiny_lite_dir: Path, tmp_path: Path) -> None:
    status, *rest = decide(tab, None, None, PREDICTION_CORRECT)
    assert "press Score" in status and all(isinstance(r, type(gr.skip())) for r in rest)
    _, _, _, session, *_ = score(tab, tiny_lite_dir)
    assert "no image selected" in decide(tab, session, "", PREDICTION_CORRECT)[0]
    assert "none picked" in decide(tab, session, "img0.png", None)[0]
    assert "not a scored image" in decide(tab, session, "img9.png", PREDICTION_CORRECT)[0]
    assert "no decision saved" in tab.export(session).status
    outside = make_split(tmp_path / "outside")
    status, table, _, session, *_ = score(tab, tiny_lite_dir, value=str(outside))
    assert "outside the configured data folders" in status and table is None and session is None


def test_same_split_name_in_two_roots_keeps_separate_decisions(models: ModelCache, tiny_lite_dir: Path,
                                                                 tmp_path: Path) -> None:
    roots = [tmp_path / "a", tmp_path / "b"]
    for root in roots:
        make_split(root / "cracks" / "valid", n=2)
    tab = ReviewTab(models, roots, tmp_path / "out")
    files = []
    for root, decision in zip(roots, [PREDICTION_CORRECT, PREDICTION_WRONG]):
        _, _, _, session, *_ = score(tab, tiny_lite_dir, limit=2, value=str(root / "cracks" / "valid"))
        files.append(Path(decide(tab, session, "img0.png", decision).review_file))
    assert files[0] != files[1]
    assert [read_decisions(f)["img0.png"].decision for f in files] == [PREDICTION_CORRECT, PREDICTION_WRONG]


def test_heavy_requests_beyond_the_lane_are_refused_at_once(tab: ReviewTab, tiny_lite_dir: Path) -> None:
    client = SimpleNamespace(client=SimpleNamespace(host="203.0.113.9"))
    form = ScoreForm(model=str(tiny_lite_dir), split=str(tab.roots[0] / "cracks" / "valid"), selected=PROMPTS)
    with tab.lane.admit("203.0.113.9"):
        status, table, *_ = tab.score(replace(form, limit=3), client)
    assert "already has 1 heavy job(s) (Score, Evaluate, Jobs)" in status and table is None
    status, *_ = tab.score(replace(form, limit=float("nan")), client)
    assert "images to score: nan is not a finite number" in status


def test_skipped_annotations_are_reported(tab: ReviewTab, tiny_lite_dir: Path) -> None:
    folder = tab.roots[0] / "cracks" / "valid"
    document = json.loads((folder / "_annotations.coco.json").read_text())
    document["annotations"][0]["segmentation"].append([1, 1, 2, 2, 3, 3])     # zero area: dropped
    (folder / "_annotations.coco.json").write_text(json.dumps(document))
    status, *_ = score(tab, tiny_lite_dir)
    assert "0 annotation(s) with nothing to draw and 1 degenerate polygon(s) skipped" in status


def test_evaluate_metrics_table_shows_cldice_and_tolerance_f1() -> None:
    scores = {"miou": 0.5, "dice": 0.6, "pooled_iou": 0.4, "precision": 0.7, "recall": 0.8, "loss": 0.3,
              "cldice": 0.91, "tol_f1_2px": 0.8, "tol_f1_5px": 0.95, "threshold": 0.5}
    metrics = {"prompts": {"segment crack": scores}, "tolerances": [2, 5],
               "threshold_sweep": {"segment crack": {"best_threshold": 0.4}},
               "intervals": {"prompts": {"segment crack": {"miou": [0.41, 0.5864]}}}}
    row = metrics_table(metrics).iloc[0]
    assert (row["clDice"], row["F1 2px"], row["F1 5px"]) == (0.91, 0.8, 0.95)
    assert row["mIoU 95 %"] == "[0.410, 0.586]"
    single_source = {**metrics, "intervals": {"prompts": {"segment crack": None}}}
    assert metrics_table(single_source).iloc[0]["mIoU 95 %"] == "n/a"
    assert list(metrics_table({**metrics, "tolerances": None}).columns).count("F1 5px") == 0

