"""Jobs tab callbacks with the tiny model: a job over uploaded photos and a zip (findings, counts, unreadable photos,
downloads), Stop and a run that continues the job, notes that go into the report, bad input, the lane and the
retention of job folders."""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from drywall_qa.app.jobs.tab import JobsForm, JobsTab, NoteForm
from drywall_qa.app.models import ModelCache
from drywall_qa.jobs import folders as job_folders
from drywall_qa.jobs.exports import COLUMNS
from drywall_qa.jobs.folders import JOB_NOTE
from drywall_qa.serving.retention import Retention

REPO = Path(__file__).resolve().parents[2]
PROMPTS = ["segment crack", "segment taping area"]
DEMOS = ["seam_and_crack.png", "hairline_crack.png", "horizontal_seam.png"]


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache(device="cpu")


@pytest.fixture
def tab(models: ModelCache, tmp_path: Path) -> JobsTab:
    return JobsTab(models, tmp_path / "out")


def uploads(folder: Path, names: list[str] = DEMOS) -> list[str]:
    """The demo photos as gradio hands uploads over: each in a folder of its own."""
    paths = []
    for number, name in enumerate(names):
        (folder / str(number)).mkdir(parents=True)
        paths.append(str(shutil.copy(REPO / "examples" / name, folder / str(number) / name)))
    return paths


def run(tab: JobsTab, key: Path, photos: list[str], progress=lambda *a, **k: None, session: str = "s1",
        **extra) -> tuple:
    form = JobsForm(**{"model": str(key), "photos": photos, "selected": PROMPTS, "tuned": False, "threshold": 0.45,
                       **extra})
    return tab.run(form, SimpleNamespace(session_hash=session), progress)


def test_run_measures_uploads_and_a_zip_and_offers_downloads(tab: JobsTab, tiny_lite_dir: Path,
                                                             tmp_path: Path) -> None:
    photos = uploads(tmp_path / "up", DEMOS[:2])
    walls = tmp_path / "up" / "walls.zip"
    with zipfile.ZipFile(walls, "w") as archive:
        archive.write(REPO / "examples" / DEMOS[2], f"level2/{DEMOS[2]}")
    torn = tmp_path / "up" / "torn.jpg"
    torn.write_bytes((REPO / "examples" / DEMOS[0]).read_bytes()[:3000])
    calls = []
    status, problems, counts, findings, details, files, picker, job = run(
        tab, tiny_lite_dir, [*photos, str(walls), str(torn)], progress=lambda *a, **k: calls.append((a, k)))
    assert status.startswith("Job done: 4 photos (4 photos in ") and "3 measured" in status
    assert "- torn.jpg: the image is truncated or corrupt" in problems
    assert list(counts["prompt"]) == PROMPTS
    assert list(counts.columns[1:]) == ["instances", "hairline", "fine", "medium", "wide", "not thin"]
    assert (counts.iloc[:, 2:].sum(axis=1) == counts["instances"]).all()       # each row adds up
    assert list(details.columns) == list(COLUMNS) and len(details) == len(findings)
    assert list(findings.columns) == ["photo", "prompt", "#", "length px", "width px", "max px", "band"]
    assert (findings["band"] == "not thin").sum() == (details["width_band"] == "").sum()
    assert [a[0] for a, _ in calls] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert "1 photos done, 3 left, ETA " in calls[0][1]["desc"] and calls[-1][1]["desc"].endswith("ETA none")
    folder = tab.out_dir / "jobs" / job
    assert [Path(f) for f in files] == [folder / "report.html", folder / "report.pdf", folder / f"{job}.zip"]
    rows = list(csv.DictReader((folder / "findings.csv").open()))
    assert len(rows) == len(findings) and {r["photo"] for r in rows} <= {*DEMOS[:2], f"walls.zip/level2/{DEMOS[2]}"}
    assert set(findings["prompt"]) <= {"crack", "taping area"}
    assert picker["choices"] == [("Whole job", JOB_NOTE), *((n, n) for n in sorted(
        [*DEMOS[:2], f"walls.zip/level2/{DEMOS[2]}"]))]
    with zipfile.ZipFile(files[-1]) as archive:
        names = set(archive.namelist())
    assert {f"{job}/findings.csv", f"{job}/report.html", f"{job}/report.pdf", f"{job}/predictions.coco.json"} <= names
    assert not any("/uploads/" in name for name in names)
    assert "torn.jpg" in Path(files[0]).read_text()


def test_stop_keeps_the_photos_done_and_run_continues_the_job(tab: JobsTab, tiny_lite_dir: Path,
                                                              tmp_path: Path) -> None:
    photos = uploads(tmp_path / "up")
    status, _, _, findings, _, files, _, job = run(tab, tiny_lite_dir, photos,
                                                progress=lambda *a, **k: tab.stop(SimpleNamespace(session_hash="s1")))
    assert status.startswith("Stopped after 1 of 3 photos") and "press Run job again" in status
    assert set(findings["photo"]) <= {DEMOS[1]} and Path(files[0]).is_file()
    assert tab.stop(SimpleNamespace(session_hash="s1")) == "No job of this session is running."
    status, *_, again = run(tab, tiny_lite_dir, photos, job=job)
    assert again == job and status.startswith("Job done: 3 photos (2 photos in ") and "1 done earlier" in status
    status, *_, other = run(tab, tiny_lite_dir, photos, job=job, min_area=10)     # other settings: a new job
    assert other != job and "Job done: 3 photos (3 photos in " in status
    assert len(list((tab.out_dir / "jobs").iterdir())) == 2


def test_notes_go_into_the_report_and_the_zip(tab: JobsTab, tiny_lite_dir: Path, tmp_path: Path) -> None:
    *_, job = run(tab, tiny_lite_dir, uploads(tmp_path / "up", DEMOS[:1]))
    folder = tab.out_dir / "jobs" / job
    status, files = tab.save_note(NoteForm(job, DEMOS[0], "Fill the crack <b>before</b> painting."))
    assert status.startswith("Saved seam\\_and\\_crack.png's note")
    tab.save_note(NoteForm(job, JOB_NOTE, "Level 2, east wing."))
    assert json.loads((folder / "notes.json").read_text()) == {"job": "Level 2, east wing.",
                                                              "photos": {DEMOS[0]: "Fill the crack <b>before</b> "
                                                                         "painting."}}
    report = Path(files[0]).read_text()
    assert "Fill the crack &lt;b&gt;before&lt;/b&gt; painting." in report and "Level 2, east wing." in report
    with zipfile.ZipFile(files[-1]) as archive:
        assert "Level 2, east wing." in archive.read(f"{job}/report.html").decode()
    note, overlay = tab.show_note(NoteForm(job, DEMOS[0]))
    assert note.startswith("Fill the crack") and Path(overlay).is_file()
    assert tab.show_note(NoteForm(job, JOB_NOTE)) == ("Level 2, east wing.", None)
    assert tab.show_note(NoteForm("../../etc", JOB_NOTE)) == ("", None)
    assert tab.save_note(NoteForm(None, DEMOS[0], "x"))[0] == "Run a job first, then pick a photo."
    status, _ = tab.save_note(NoteForm(job, JOB_NOTE, "x" * 10**6))
    assert "note: 1,000,000 characters; the limit is 4,000" in status
    assert json.loads((folder / "notes.json").read_text())["job"] == "Level 2, east wing."


@pytest.mark.parametrize(("extra", "message"), [
    ({"photos": []}, "photos: none uploaded"),
    ({"mm_per_pixel": -1.0}, "-1.0 is not a number from 0 to 1000"),
    ({"mm_per_pixel": float("nan")}, "nan is not a number from 0 to 1000"),
    ({"mm_per_pixel": 1e308}, "mm per pixel: 1e+308 is not a number from 0 to 1000"),
    ({"threshold": float("nan")}, "threshold: nan is not a probability from 0 to 1"),
    ({"tiling": "sideways"}, "'sideways' is not one of auto, off, on"),
    ({"selected": [], "typed": ""}, "no prompt given"),
])
def test_bad_input_gives_a_message_and_keeps_the_sessions_job(tab: JobsTab, tiny_lite_dir: Path, tmp_path: Path,
                                                              extra: dict, message: str) -> None:
    form = {"photos": uploads(tmp_path / "up", DEMOS[:1]), "job": "20250101-000000-abcdef", **extra}
    status, problems, counts, findings, details, files, picker, job = run(tab, tiny_lite_dir, **form)
    assert status.startswith("**Error:**") and message in status.replace("\\", "")
    assert (problems, counts, findings, details, files, picker) == (None,) * 6 and job == "20250101-000000-abcdef"
    assert not (tab.out_dir / "jobs").exists()


def test_missing_model_and_too_many_photos_are_refused(tab: JobsTab, tiny_lite_dir: Path, tmp_path: Path,
                                                       monkeypatch) -> None:
    photos = uploads(tmp_path / "up", DEMOS[:2])
    assert "no model is loaded" in tab.run(JobsForm(photos=photos), None, lambda *a, **k: None).status
    monkeypatch.setattr(job_folders, "MAX_JOB_PHOTOS", 1)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for name in DEMOS[:2]:
            zipped.write(REPO / "examples" / name, name)
    (tmp_path / "two.zip").write_bytes(archive.getvalue())
    status, *_ = run(tab, tiny_lite_dir, [str(tmp_path / "two.zip")])
    assert "2 photos uploaded; a job holds at most 1" in status
    assert list((tab.out_dir / "jobs").iterdir()) == []          # the refused job's uploads are gone at once


def test_a_job_failing_before_any_photo_leaves_no_folder_and_one_with_photos_is_kept(
        tab: JobsTab, tiny_lite_dir: Path, tmp_path: Path, monkeypatch) -> None:
    photos = uploads(tmp_path / "up", DEMOS[:2])
    calls = []

    def fail_second(job, segmenter, photo, image=None):
        calls.append(photo.name)
        if len(calls) == 2 or calls == ["fail"]:
            raise OverflowError("cannot convert float infinity to integer")
        return real(job, segmenter, photo, image)
    real = job_folders.Job.run_photo
    monkeypatch.setattr(job_folders.Job, "run_photo", fail_second)
    status, *_, job = run(tab, tiny_lite_dir, photos)
    assert "OverflowError" in status and job is None
    kept = list((tab.out_dir / "jobs").iterdir())
    assert len(kept) == 1 and len(list((kept[0] / "photos").glob("*.json"))) == 1   # one photo done: resumable
    calls[:] = ["fail"]
    shutil.rmtree(kept[0])
    status, *_ = run(tab, tiny_lite_dir, photos)
    assert "OverflowError" in status and list((tab.out_dir / "jobs").iterdir()) == []


def test_stop_while_waiting_runs_nothing(tab: JobsTab, tiny_lite_dir: Path, tmp_path: Path) -> None:
    photos = uploads(tmp_path / "up", DEMOS[:1])
    with tab.lane.admit("other"):
        status, *_, job = run(tab, tiny_lite_dir, photos, job=None,
                              progress=lambda *a, **k: tab.stop(SimpleNamespace(session_hash="s1")))
    assert status == "Stopped while waiting for another job to finish; nothing was run." and job is None
    assert not (tab.out_dir / "jobs").exists()


def test_old_job_folders_beyond_the_retention_are_removed(models: ModelCache, tiny_lite_dir: Path,
                                                          tmp_path: Path) -> None:
    tab = JobsTab(models, tmp_path / "out", retention=Retention(count=1))
    photos = uploads(tmp_path / "up", DEMOS[:1])
    *_, first = run(tab, tiny_lite_dir, photos)
    *_, second = run(tab, tiny_lite_dir, photos, min_area=10)
    assert [p.name for p in (tab.out_dir / "jobs").iterdir()] == [second] != [first]


def test_long_photo_names_keep_their_ends_in_the_findings_table() -> None:
    from drywall_qa.app.jobs.views import short_label, short_prompt

    name = "1040-dat_png_jpg.rf.69f0a1b2c3d4e5f6.jpg"
    assert short_label(name) == "1040-dat_png…3d4e5f6.jpg" and len(short_label(name)) == 24
    assert short_label("wall.jpg") == "wall.jpg"
    assert (short_prompt("segment taping area"), short_prompt("segment"), short_prompt("crack")) == (
        "taping area", "segment", "crack")

def test_retention_runs_when_a_job_starts_even_if_it_fails(models: ModelCache, tiny_lite_dir: Path,
                                                           tmp_path: Path, monkeypatch) -> None:
    tab = JobsTab(models, tmp_path / "out", retention=Retention(count=1))
    for number in range(3):
        (tab.out_dir / "jobs" / f"2020010{number}-000000-abcdef").mkdir(parents=True)
    monkeypatch.setattr(job_folders.Job, "run_photo", lambda *a: 1 / 0)
    status, *_ = run(tab, tiny_lite_dir, uploads(tmp_path / "up", DEMOS[:1]))
    assert "ZeroDivisionError" in status
    assert len(list((tab.out_dir / "jobs").iterdir())) == 1
