"""Review tab callbacks and the review store: scores worst first, row selection, decisions saved atomically."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from drywall_qa.errors import InputError
from drywall_qa.ui.forms import SplitForm
from drywall_qa.ui.models import ModelCache
from drywall_qa.ui.review_tab import DecisionForm, ReviewTab
from drywall_qa.ui.reviews import ReviewStore
from tests.helpers import make_split

PROMPTS = ["segment crack", "segment wall crack"]


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache(device="cpu")


@pytest.fixture
def tab(models: ModelCache, tmp_path: Path) -> ReviewTab:
    make_split(tmp_path / "data" / "cracks" / "valid", n=3)
    return ReviewTab(models, [tmp_path / "data"], tmp_path / "out")


def score(tab: ReviewTab, key: Path, limit: int = 3, value: str | None = None) -> tuple:
    value = value or str(tab.roots[0] / "cracks" / "valid")
    return tab.score(SplitForm(model=str(key), split=value, selected=PROMPTS, limit=limit))


def test_scores_every_image_and_prompt_worst_first(tab: ReviewTab, tiny_lite_dir: Path) -> None:
    status, table, session, review_file = score(tab, tiny_lite_dir)
    assert "Scored 3 of 3 images" in status and review_file is None
    assert len(table) == 3 * len(PROMPTS)
    assert sorted(set(table["Prompt"])) == sorted(PROMPTS)
    assert list(table["IoU"]) == sorted(table["IoU"])
    assert all(0 <= v <= 1 for v in table["Dice"])


def test_limit_caps_the_images_scored(tab: ReviewTab, tiny_lite_dir: Path) -> None:
    _, table, session, _ = score(tab, tiny_lite_dir, limit=2)
    assert set(table["Image"]) == {"img0.png", "img1.png"} and set(session.index) == {"img0.png", "img1.png"}


def test_selecting_a_row_shows_input_truth_prediction_and_errors(tab: ReviewTab, tiny_lite_dir: Path) -> None:
    _, table, session, _ = score(tab, tiny_lite_dir)
    worst = list(table.iloc[0])
    event = gr.SelectData(None, {"index": [0, 3], "value": worst[3], "row_value": worst})
    status, image, truth, prediction, errors, name, prompt, decision, comment = tab.select(session, event)
    assert worst[0] in status and f"IoU {worst[2]:.3f}" in status
    assert image.shape == truth.shape == prediction.shape == errors.shape == (64, 64, 3)
    assert not np.array_equal(image, truth)          # the ground-truth polygon is drawn
    assert (name, prompt) == (worst[0], worst[1]) and decision is None and comment == ""


def test_decisions_are_saved_shown_and_survive_a_restart(tab: ReviewTab, tiny_lite_dir: Path,
                                                         models: ModelCache) -> None:
    _, table, session, _ = score(tab, tiny_lite_dir)
    image, prompt = table.iloc[0]["Image"], table.iloc[0]["Prompt"]
    status, table, review_file = tab.save(DecisionForm(session, image, prompt, "reject", " wrong seam "))
    assert "Saved reject" in status
    row = table[(table["Image"] == image) & (table["Prompt"] == prompt)].iloc[0]
    assert (row["Decision"], row["Comment"]) == ("reject", "wrong seam")
    stored = json.loads(Path(review_file).read_text())
    assert stored["split"] == "cracks/valid"
    assert stored["reviews"][image][prompt]["decision"] == "reject"
    restarted = ReviewTab(models, tab.roots, tab.out_dir)
    *_, decision, comment = restarted.show(session, image, prompt)
    assert (decision, comment) == ("reject", "wrong seam")


def test_bad_review_requests_give_messages(tab: ReviewTab, tiny_lite_dir: Path, tmp_path: Path) -> None:
    status, *rest = tab.save(DecisionForm(None, None, None, "accept", ""))
    assert "press Score" in status and rest == [None, None]
    _, _, session, _ = score(tab, tiny_lite_dir)
    status, *_ = tab.save(DecisionForm(session, "", PROMPTS[0], "accept", ""))
    assert "click a row" in status
    status, *_ = tab.save(DecisionForm(session, "img0.png", PROMPTS[0], None, "  "))
    assert "nothing to save" in status
    status, *_ = tab.save(DecisionForm(session, "img9.png", PROMPTS[0], "accept", ""))
    assert "not in the scored table" in status
    status, *_ = tab.show(session, "not-scored.png", PROMPTS[0])
    assert "no scored row" in status
    outside = make_split(tmp_path / "outside")
    status, table, session, _ = score(tab, tiny_lite_dir, value=str(outside))
    assert "outside the configured data folders" in status and table is None and session is None
    status, *_ = score(tab, tiny_lite_dir, value=str(tab.roots[0] / "cracks" / "valid" / ".." / ".." / ".."))
    assert "outside the configured data folders" in status


def test_same_split_name_in_two_roots_keeps_separate_decisions(models: ModelCache, tiny_lite_dir: Path,
                                                                 tmp_path: Path) -> None:
    roots = [tmp_path / "a", tmp_path / "b"]
    for root in roots:
        make_split(root / "cracks" / "valid", n=2)
    tab = ReviewTab(models, roots, tmp_path / "out")
    files = []
    for root, decision in zip(roots, ["accept", "reject"]):
        _, _, session, _ = score(tab, tiny_lite_dir, limit=2, value=str(root / "cracks" / "valid"))
        _, _, review_file = tab.save(DecisionForm(session, "img0.png", PROMPTS[0], decision, ""))
        files.append(Path(review_file))
    assert files[0] != files[1]
    assert [json.loads(f.read_text())["reviews"]["img0.png"][PROMPTS[0]]["decision"] for f in files] == \
        ["accept", "reject"]


def test_heavy_requests_beyond_the_lane_are_refused_at_once(tab: ReviewTab, tiny_lite_dir: Path) -> None:
    client = SimpleNamespace(client=SimpleNamespace(host="203.0.113.9"))
    form = SplitForm(model=str(tiny_lite_dir), split=str(tab.roots[0] / "cracks" / "valid"), selected=PROMPTS)
    with tab.lane.admit("203.0.113.9"):
        status, table, *_ = tab.score(replace(form, limit=3), client)
    assert "already has 1 scoring or evaluation job" in status and table is None
    status, *_ = tab.score(replace(form, limit=float("nan")), client)
    assert "images to score: nan is not a finite number" in status


def test_store_concurrent_saves_keep_every_entry(tmp_path: Path) -> None:
    path = tmp_path / "reviews" / "cracks__valid.json"
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        store = ReviewStore(path, "cracks/valid")  # one store per thread, same file: the lock is per file
        try:
            for i in range(15):
                store.save(f"img{t}_{i}.png", "segment crack", "accept" if i % 2 else "reject", f"t{t} i{i}")
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    reviews = json.loads(path.read_text())["reviews"]
    assert len(reviews) == 6 * 15
    assert reviews["img3_4.png"]["segment crack"]["comment"] == "t3 i4"
    assert [p.name for p in path.parent.iterdir()] == [path.name]          # no temp files left


def test_store_failed_write_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ReviewStore(tmp_path / "r.json", "cracks/valid")
    store.save("a.png", "segment crack", "accept")
    before = store.path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        store.save("b.png", "segment crack", "reject")
    assert store.path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_store_refuses_to_overwrite_a_foreign_or_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="not a valid review file"):
        ReviewStore(path, "x").save("a.png", "p", "accept")
    path.write_text('{"something": "else"}')
    with pytest.raises(InputError, match="not a review file"):
        ReviewStore(path, "x").save("a.png", "p", "accept")
    assert path.read_text() == '{"something": "else"}'


def test_store_validates_decision_and_comment(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / "r.json", "x")
    with pytest.raises(InputError, match="not a decision"):
        store.save("a.png", "p", "maybe")
    with pytest.raises(InputError, match="limit"):
        store.save("a.png", "p", "accept", "x" * 5000)
    assert not store.path.exists()


def test_skipped_annotations_are_reported(tab: ReviewTab, tiny_lite_dir: Path) -> None:
    folder = tab.roots[0] / "cracks" / "valid"
    document = json.loads((folder / "_annotations.coco.json").read_text())
    document["annotations"][0]["segmentation"].append([1, 1, 2, 2, 3, 3])     # zero area: dropped
    (folder / "_annotations.coco.json").write_text(json.dumps(document))
    status, *_ = score(tab, tiny_lite_dir)
    assert "0 annotation(s) with nothing to draw and 1 degenerate polygon(s) skipped" in status


def test_a_full_review_file_refuses_new_entries_but_updates_old_ones(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from drywall_qa.ui import reviews

    monkeypatch.setattr(reviews, "MAX_ENTRIES", 3)
    store = ReviewStore(tmp_path / "r.json", "cracks/valid")
    for index in range(3):
        store.save(f"img{index}.png", "segment crack", "accept")
    with pytest.raises(InputError, match="holds 3 decisions"):
        store.save("img3.png", "segment crack", "accept")
    assert store.save("img0.png", "segment crack", "reject")["decision"] == "reject"
