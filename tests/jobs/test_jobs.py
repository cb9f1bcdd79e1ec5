"""``drywall-qa job`` in process, on the tiny drywall-qa-lite: photos from folders, globs and zips
with bad files among them, resuming, the COCO round trip and refused settings."""

from __future__ import annotations

import csv
import io
import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from drywall_qa.cli.job import main
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.data.drawing import draw_crack
from drywall_qa.jobs import sources
from drywall_qa.jobs.runner import Job, JobSettings

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPTS = ["segment crack", "segment taping area"]


def make_photos(folder: Path, n: int, size: tuple[int, int] = (160, 120), seed: int = 0) -> list[Path]:
    """``n`` JPEG photos of a noisy wall with a drawn crack each."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(n):
        image = Image.fromarray(rng.integers(170, 220, (size[1], size[0], 3), dtype=np.uint8))
        draw_crack(image, rng, steps=12)
        paths.append(folder / f"wall_{index:02d}.jpg")
        image.save(paths[-1], quality=90)
    return paths


def encoded(path: Path, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.open(path).save(buffer, format=fmt)
    return buffer.getvalue()


def run_job(model: Path, out: Path, *photos: object, extra: tuple[str, ...] = ()) -> int:
    return main([*map(str, photos), "--prompts", *PROMPTS, "--out", str(out), "--model", str(model),
                 "--threshold", "0.45", "--min-area", "4", *extra])


def outputs(out: Path) -> dict[str, str]:
    """The job's exports and photo records, by name."""
    names = ["findings.csv", "photos.coco.json", "predictions.coco.json", "summary.json"]
    return {name: (out / name).read_text() for name in names} | {
        p.name: p.read_text() for p in sorted((out / "photos").glob("*.json"))}


@pytest.fixture
def mixed(tmp_path: Path) -> dict:
    """A folder of 3 photos plus a broken, an empty and an ignored file; a glob's 2 photos; a zip of 2 photos, one
    named to climb out of the folder, and one member too large."""
    folder = tmp_path / "site"
    make_photos(folder, 3)
    (folder / "broken.jpg").write_bytes(b"not an image at all")
    (folder / "empty.png").write_bytes(b"")
    (folder / "sub").mkdir()
    (folder / "sub" / "wall_00.jpg").write_bytes(folder.joinpath("wall_00.jpg").read_bytes())  # same name, kept apart
    (folder / "notes.txt").write_text("not a photo")
    (folder / ".hidden.jpg").write_bytes(b"ignored")
    loose = make_photos(tmp_path / "loose", 2, seed=1)
    archive = tmp_path / "walls.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("a/wall_a.jpg", encoded(loose[0], "JPEG"))
        handle.writestr("../../escape.jpg", encoded(loose[1], "JPEG"))
        handle.writestr("huge.png", b"\0" * 50_000)
        handle.writestr("__MACOSX/a/._wall_a.png", b"resource fork")
    return {"folder": folder, "glob": str(tmp_path / "loose" / "*.jpg"), "zip": archive}


def test_folders_globs_zips_and_bad_files(mixed: dict, tiny_lite_dir: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(sources, "MAX_MEMBER_BYTES", 40_000)
    out = tmp_path / "job"
    typo = tmp_path.parent / "typo.jpg"          # not there: it must not pull the names' folder up to its parent
    assert run_job(tiny_lite_dir, out, mixed["folder"], mixed["glob"], mixed["zip"], tmp_path / "nothing*.jpg",
                   typo) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["measured"] == 8  # 4 in the folder, 2 from the glob, 2 in the zip
    reasons = {p["photo"]: p["reason"] for p in summary["unreadable"]}
    # named relative to the folder holding all that was named (tmp_path), never with the server's folders
    assert set(reasons) == {"site/broken.jpg", "site/empty.png", "walls.zip/huge.png", "nothing*.jpg", str(typo)}
    reasons = {Path(name).name: reason for name, reason in reasons.items()}
    assert "empty" in reasons["empty.png"] and "not a readable image" in reasons["broken.jpg"]
    assert "40,000" in reasons["huge.png"] and "no file matches" in reasons["nothing*.jpg"]
    assert all(out in p.parents for p in tmp_path.parent.rglob("escape*"))  # the member's name reaches nothing
    assert len(list((out / "overlays").glob("*.jpg"))) == 8
    assert len(list((out / "masks").glob("*.png"))) == 8 * len(PROMPTS)
    records = [json.loads(p.read_text()) for p in (out / "photos").glob("*.json")]
    assert all(p.parent == out / "photos" for p in (out / "photos").iterdir())
    assert len(records) == 10  # the 8 photos and the 2 unreadable files named by the folder
    assert {r["name"] for r in records if "error" not in r} == {
        "site/wall_00.jpg", "site/wall_01.jpg", "site/wall_02.jpg", "site/sub/wall_00.jpg", "loose/wall_00.jpg",
        "loose/wall_01.jpg", "walls.zip/a/wall_a.jpg", "walls.zip/../../escape.jpg"}
    for name in ("findings.csv", "summary.json", "photos.coco.json", "report.html"):
        assert str(tmp_path) not in (out / name).read_text()
    err = capsys.readouterr().err
    assert "broken.jpg: not a readable image file" in err
    assert (out / "report.html").is_file()


def test_coco_results_load_against_the_photos_and_match_the_csv(tiny_lite_dir: Path, tmp_path: Path) -> None:
    make_photos(tmp_path / "photos", 3)
    out = tmp_path / "job"
    assert run_job(tiny_lite_dir, out, tmp_path / "photos") == 0
    ground = COCO(str(out / "photos.coco.json"))
    results = ground.loadRes(str(out / "predictions.coco.json"))
    rows = list(csv.DictReader((out / "findings.csv").open()))
    assert rows and len(results.anns) == len(rows)
    assert [c["name"] for c in ground.loadCats(ground.getCatIds())] == PROMPTS
    for annotation, row in zip(results.anns.values(), rows):
        image = ground.imgs[annotation["image_id"]]
        assert Path(image["file_name"]).name == Path(row["photo"]).name
        assert ground.cats[annotation["category_id"]]["name"] == row["prompt"]
        decoded = mask_utils.decode(annotation["segmentation"]).astype(bool)
        assert decoded.shape == (image["height"], image["width"])
        assert decoded.sum() == pytest.approx(float(row["area"]))
        assert annotation["score"] == pytest.approx(float(row["score"]), abs=1e-4)
        prompt_index = PROMPTS.index(row["prompt"])
        key = Path(row["photo"]).stem
        mask = np.asarray(Image.open(out / "masks" / f"{key}__{prompt_index:02d}_"
                                     f"{row['prompt'].replace(' ', '_')}.png")) > 0
        assert not (decoded & ~mask).any()  # each instance lies inside its prompt's mask


def test_rerun_skips_photos_done_and_redoes_a_lost_one(tiny_lite_dir: Path, tmp_path: Path) -> None:
    make_photos(tmp_path / "photos", 3)
    out = tmp_path / "job"
    assert run_job(tiny_lite_dir, out, tmp_path / "photos") == 0
    first = outputs(out)
    kept = out / "photos" / "wall_00.json"
    stamp = kept.stat().st_mtime_ns
    (out / "photos" / "wall_02.json").unlink()
    (out / "photos" / ".wall_02.json.abc.tmp").write_text("{half")  # a kill mid-write
    assert run_job(tiny_lite_dir, out, tmp_path / "photos") == 0
    assert kept.stat().st_mtime_ns == stamp
    assert outputs(out) == first
    assert not list(out.rglob("*.tmp"))


def test_a_folder_of_another_job_is_refused(tiny_lite_dir: Path, tmp_path: Path, capsys) -> None:
    make_photos(tmp_path / "photos", 1)
    out = tmp_path / "job"
    assert run_job(tiny_lite_dir, out, tmp_path / "photos") == 0
    assert run_job(tiny_lite_dir, out, tmp_path / "photos", extra=("--mm-per-pixel", "0.5")) == 2
    assert "holds a job run with other settings (measure)" in capsys.readouterr().err


def test_measurements_in_millimetres(tiny_lite_dir: Path, tmp_path: Path) -> None:
    make_photos(tmp_path / "photos", 1)
    pixels, mm = tmp_path / "px", tmp_path / "mm"
    assert run_job(tiny_lite_dir, pixels, tmp_path / "photos") == 0
    assert run_job(tiny_lite_dir, mm, tmp_path / "photos", extra=("--mm-per-pixel", "0.5")) == 0
    px_rows, mm_rows = (list(csv.DictReader((d / "findings.csv").open())) for d in (pixels, mm))
    assert px_rows and len(px_rows) == len(mm_rows)
    for a, b in zip(px_rows, mm_rows):
        assert (a["unit"], b["unit"]) == ("px", "mm")
        assert float(b["area"]) == pytest.approx(float(a["area"]) * 0.25, rel=1e-3)


def test_no_photos_is_an_error(tiny_lite_dir: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert run_job(tiny_lite_dir, tmp_path / "job", tmp_path / "empty", tmp_path / "missing.jpg") == 2
    assert "no photos found" in capsys.readouterr().err


def test_keys_are_safe_and_unique() -> None:
    keys = sources.unique_keys(["a/IMG 1.jpg", "a_IMG_1.png", "../../x.png", "", "ü.jpg"])
    assert len(set(keys)) == len(keys)
    assert all("/" not in key and not key.startswith(".") for key in keys)


def test_the_next_photo_is_read_while_the_model_runs_the_current_one(tiny_lite_dir: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    paths = make_photos(tmp_path / "in", 3)
    photos = [sources.Photo(p.name, p.stem, p) for p in paths] + [sources.Photo("gone.jpg", "gone", tmp_path / "x")]
    second_read, real_read = threading.Event(), sources.Photo.read

    def read(photo: sources.Photo) -> np.ndarray:
        image = real_read(photo)
        if photo.key == photos[1].key:
            second_read.set()
        return image

    monkeypatch.setattr(sources.Photo, "read", read)
    segmenter, overlapped = Segmenter.load(tiny_lite_dir), []

    class FirstPhotoWaits:
        """Predicting the first photo waits (up to 10 s) for the second to be read."""

        def predict(self, *args, **kwargs):
            if not overlapped:
                overlapped.append(second_read.wait(timeout=10))
            return segmenter.predict(*args, **kwargs)

    job = Job.open(tmp_path / "out", JobSettings(tuple(PROMPTS), segmenter.name))
    assert job.run(FirstPhotoWaits(), photos) == 4 and overlapped == [True]
    records = job.records(photos)
    assert [("error" in r) for r in records] == [False, False, False, True]  # in order, the unreadable one too


def test_a_job_folder_inside_its_photo_folder_does_not_read_its_own_outputs(tiny_lite_dir: Path,
                                                                            tmp_path: Path) -> None:
    make_photos(tmp_path / "site", 3)
    out = tmp_path / "site" / "job"
    assert run_job(tiny_lite_dir, out, tmp_path / "site") == 0
    first = outputs(out)
    assert run_job(tiny_lite_dir, out, tmp_path / "site") == 0          # resumed: overlays are not photos
    assert outputs(out) == first and len(json.loads(first["summary.json"])["instances"]) == 2
    assert sorted(p.name for p in (out / "photos").glob("*.json")) == [f"wall_0{i}.json" for i in range(3)]


def test_a_zip_holding_two_members_of_one_name_refuses_both_by_name(tmp_path: Path) -> None:
    good, other = make_photos(tmp_path / "p", 2)
    archive = tmp_path / "walls.zip"
    with zipfile.ZipFile(archive, "w") as handle, pytest.warns(UserWarning, match="Duplicate name"):
        handle.writestr("a.jpg", good.read_bytes())
        handle.writestr("a.jpg", b"not a photo")
        handle.writestr("b.jpg", other.read_bytes())
    photos, refused = sources.collect([archive])
    assert [p.name for p in photos] == ["walls.zip/b.jpg"]
    assert [(r.name, r.reason.split(",")[0]) for r in refused] == [
        ("walls.zip/a.jpg", "the archive holds 2 members of this name")]
