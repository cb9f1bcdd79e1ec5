"""Review decisions and the corrected split they export: round trip through CocoSplit, history, errors."""

from __future__ import annotations

import csv
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from drywall_qa.cli.evaluate import main as evaluate_main
from drywall_qa.cli.review import main
from drywall_qa.core.errors import InputError
from drywall_qa.data.coco import CocoSplit, split_dir
from drywall_qa.review import DecisionStore, export_split, read_decisions
from tests.helpers import MIXED_SIZES, make_mixed_split


@pytest.fixture
def split(tmp_path: Path) -> Path:
    """img 0.png: a polygon; img 1.png: a box (empty segmentation); img 2.png: no annotation."""
    return make_mixed_split(tmp_path / "split")


def _edited(shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[5:20, 3:9] = True
    mask[30, 10:40] = True                             # a 1-px crack: must survive the round trip
    return mask


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_round_trip_corrected_kept_and_excluded(split: Path, tmp_path: Path) -> None:
    original, before = CocoSplit(split), _files(split)
    corrected = _edited(MIXED_SIZES[0])
    store = DecisionStore(tmp_path / "decisions.json", split)
    store.decide("img 0.png", "ground_truth_wrong", "annotation misses the crack", "ana", mask=corrected,
                 mask_source="edited", prompt="segment crack")
    store.decide("img 1.png", "prediction_wrong", reviewer="ben")
    store.decide("img 2.png", "exclude_image", "blurred")
    out = tmp_path / "corrected" / "cracks" / "valid"
    summary = export_split(tmp_path / "decisions.json", split, out)
    assert (summary.images, summary.corrected, summary.excluded, summary.unfixed) == (2, 1, 1, 0)

    exported = CocoSplit(out)
    assert [exported.file_name(i) for i in range(len(exported))] == ["img 0.png", "img 1.png"]   # excluded: gone
    assert np.array_equal(exported.mask(0), corrected)                                           # pixel for pixel
    assert np.array_equal(read_decisions(tmp_path / "decisions.json")["img 0.png"].mask_array(), corrected)
    assert np.array_equal(exported.mask(1), original.mask(1))
    assert np.array_equal(exported[0].image, original[0].image)
    document = json.loads((out / "_annotations.coco.json").read_text())
    box = [a for a in document["annotations"] if a["image_id"] == 2]
    assert box == [a for a in json.loads((split / "_annotations.coco.json").read_text())["annotations"]
                   if a["image_id"] == 2]                                                        # still a box
    [new] = [a for a in document["annotations"] if a["image_id"] == 1]
    assert (new["id"], new["area"], new["category_id"], new["iscrowd"]) == (3, corrected.sum(), 1, 0)
    assert os.stat(out / "img 0.png").st_ino == os.stat(split / "img 0.png").st_ino              # hard-linked
    with (out / "decisions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["image"], r["decision"], r["action"], r["reviewer"]) for r in rows] == [
        ("img 0.png", "ground_truth_wrong", "replaced", "ana"), ("img 1.png", "prediction_wrong", "kept", "ben"),
        ("img 2.png", "exclude_image", "dropped", "")]
    assert _files(split) == before                                                               # original untouched
    assert [p.name for p in out.parent.iterdir()] == ["valid"]                                  # no temp folder left


def test_empty_correction_unfixed_and_copies(split: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = DecisionStore(tmp_path / "decisions.json", split)
    store.decide("img 0.png", "ground_truth_wrong", mask=np.zeros(MIXED_SIZES[0], bool), mask_source="prediction")
    store.decide("img 1.png", "ground_truth_wrong", "box too wide")
    monkeypatch.setattr("drywall_qa.review.export.os.link", lambda *a: (_ for _ in ()).throw(OSError("EXDEV")))
    summary = export_split(tmp_path / "decisions.json", split, tmp_path / "out")
    exported, original = CocoSplit(tmp_path / "out"), CocoSplit(split)
    assert (summary.images, summary.corrected, summary.unfixed) == (3, 1, 1)
    assert not exported.mask(0).any()                                    # corrected to nothing: a negative image
    assert np.array_equal(exported.mask(1), original.mask(1))            # wrong, but no mask given: kept
    assert (tmp_path / "out" / "img 0.png").read_bytes() == (split / "img 0.png").read_bytes()


def test_decisions_keep_their_history(split: Path, tmp_path: Path) -> None:
    store = DecisionStore(tmp_path / "decisions.json", split)
    store.decide("img 0.png", "ground_truth_wrong", mask=_edited(MIXED_SIZES[0]), mask_source="edited",
                 reviewer="ana")
    entry = store.decide("img 0.png", "prediction_correct", "on second look it is fine", "ben", iou=0.8)
    assert (entry["decision"], entry["reviewer"], entry["iou"], "mask" in entry) == ("prediction_correct", "ben",
                                                                                      0.8, False)
    [earlier] = entry["history"]
    assert (earlier["decision"], earlier["reviewer"], earlier["mask_source"]) == ("ground_truth_wrong", "ana", "edited")
    assert "mask" not in earlier and earlier["updated"] <= entry["updated"]
    assert json.loads((tmp_path / "decisions.json").read_text())["split"] == str(split)
    with pytest.raises(InputError, match=r"\.decision: 'accept' is not a decision"):
        store.decide("img 1.png", "accept")
    with pytest.raises(InputError, match=r"\.mask: a corrected mask goes with ground_truth_wrong"):
        store.decide("img 1.png", "prediction_wrong", mask=np.ones((2, 2), bool), mask_source="edited")
    assert list(store.load()) == ["img 0.png"]


def test_concurrent_saves_keep_every_decision_and_a_foreign_file_is_kept(tmp_path: Path) -> None:
    store = DecisionStore(tmp_path / "decisions.json", "split")
    threads = [threading.Thread(target=store.decide, args=(f"{i}.jpg", "prediction_correct")) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(store.load()) == [f"{i}.jpg" for i in range(8)]
    (tmp_path / "other.json").write_text("{not json")
    with pytest.raises(InputError, match="other.json: not valid JSON"):
        DecisionStore(tmp_path / "other.json", "split").decide("a.jpg", "exclude_image")
    assert (tmp_path / "other.json").read_text() == "{not json"


def test_first_review_format_is_read(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"version": 1, "split": "cracks/valid", "reviews": {"a.jpg": {
        "segment crack": {"decision": "reject", "comment": "missed", "updated": "2025-01-02T00:00:00+00:00"},
        "segment wall crack": {"decision": "accept", "comment": "", "updated": "2025-01-01T00:00:00+00:00"}},
        "b.jpg": {"segment crack": {"decision": None, "comment": "only a note", "updated": "x"}}}}))
    decisions = read_decisions(path)
    assert list(decisions) == ["a.jpg"]
    assert (decisions["a.jpg"].decision, decisions["a.jpg"].comment) == ("prediction_wrong", "missed")


def test_exported_split_is_read_by_evaluate_and_training_layout(split: Path, tmp_path: Path,
                                                                tiny_clipseg_dir: Path) -> None:
    (tmp_path / "none.json").write_text('{"version": 2, "images": {}}')
    root = tmp_path / "corrected"
    for name in ("train", "valid"):
        export_split(tmp_path / "none.json", split, split_dir(root, "cracks", name))
        assert len(CocoSplit(split_dir(root, "cracks", name))) == 3
    out = tmp_path / "eval"
    assert evaluate_main(["--split", str(split_dir(root, "cracks", "valid")), "--dataset", "cracks", "--model",
                          str(tiny_clipseg_dir), "--panels", "0", "--out", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["num_images"] == 3


def _write(path: Path, images: dict) -> Path:
    path.write_text(json.dumps({"version": 2, "images": images}))
    return path


RLE_64x48 = {"size": [48, 64], "counts": "PP3"}                  # an empty 64×48 mask


@pytest.mark.parametrize(("images", "field", "problem"), [
    ({"img 0.png": {"decision": "accept2"}}, ".decision", "'accept2' is not a decision"),
    ({"img 0.png": {"decision": "exclude_image", "reviewer": 7}}, ".reviewer", "7 is not text"),
    ({"img 0.png": {"decision": "prediction_wrong", "mask": RLE_64x48, "mask_source": "edited"}}, ".mask",
     "a corrected mask goes with ground_truth_wrong"),
    ({"img 0.png": {"decision": "ground_truth_wrong", "mask": RLE_64x48, "mask_source": "brush"}}, ".mask_source",
     "'brush' is not a mask source"),
    ({"img 0.png": {"decision": "ground_truth_wrong", "mask": {"size": [48, 64], "counts": "!!"},
                    "mask_source": "edited"}}, ".mask", "not a valid COCO RLE string"),
    ({"img 1.png": {"decision": "ground_truth_wrong", "mask": RLE_64x48, "mask_source": "edited"}}, ".mask",
     "64×48, but the image is 48×64"),
    ({"nowhere.png": {"decision": "exclude_image"}}, "", "not an image of"),
])
def test_bad_decisions_give_one_line_naming_file_and_field(split: Path, tmp_path: Path, images: dict, field: str,
                                                           problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "decisions.json", images)
    assert main(["export", "--decisions", str(path), "--split", str(split), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    name = next(iter(images))
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"drywall-qa review export: error: {path}: images[{name!r}]{field}: ")
    assert problem in err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


@pytest.mark.parametrize("out", ["split", "split/inner", "exists"])
def test_export_refuses_to_overwrite(split: Path, tmp_path: Path, out: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "exists").mkdir()
    path = _write(tmp_path / "decisions.json", {})
    assert main(["export", "--decisions", str(path), "--split", str(split), "--out", str(tmp_path / out)]) == 2
    assert str(tmp_path / out) in capsys.readouterr().err
    assert not (split / "inner").exists()


def test_failed_export_leaves_nothing(split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (split / "img 1.png").unlink()
    path = _write(tmp_path / "decisions.json", {"img 0.png": {"decision": "exclude_image"}})
    with pytest.raises(InputError, match="img 1.png"):
        export_split(path, split, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decisions.json", "split"]
    assert main(["export", "--decisions", str(tmp_path / "missing.json"), "--split", str(split), "--out",
                 str(tmp_path / "out")]) == 2
    assert "missing.json: decisions file not found" in capsys.readouterr().err


@pytest.mark.parametrize(("content", "problem"), [
    ({"reviews": {"img 0.png": {"segment crack": {"decision": []}}}}, None),             # no decision: skipped
    ({"reviews": {"img 0.png": {"segment crack": {"decision": {}}}}}, None),
    ({"reviews": {"img 0.png": {"segment crack": {"decision": "reject", "comment": ["x"]}}}},
     "reviews['img 0.png'].comment: ['x'] is not text"),
    ({"reviews": {"img 0.png": {"segment crack": {"decision": "accept", "mask": "zzz"}}}},
     "reviews['img 0.png'].mask: a corrected mask goes with ground_truth_wrong"),
    ({"version": 2, "images": {"img 0.png": {"decision": "ground_truth_wrong", "mask": "zzz",
                                             "mask_source": "edited"}}}, "images['img 0.png'].mask: not a compressed"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("directory", "cannot be read (Is a directory)"),
])
def test_hand_edited_decision_files_give_one_line(split: Path, tmp_path: Path, content: object, problem: str | None,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "decisions.json"
    if content == "directory":
        path.mkdir()
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    code = main(["export", "--decisions", str(path), "--split", str(split), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if problem is None:
        assert code == 0 and err == ""
    else:
        assert code == 2 and err.count("\n") == 1 and problem in err, err
        assert not (tmp_path / "out").exists()
