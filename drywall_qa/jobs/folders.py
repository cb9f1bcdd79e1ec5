"""The Jobs tab's folders: ``<out>/jobs/<time>-<id>/`` holds a job (see :mod:`drywall_qa.jobs.runner`) plus the
uploaded files in ``uploads/``, so a stopped job can be run on after gradio has dropped its copies, and a zip of the
rest of the folder to download."""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from drywall_qa.core.atomic import write_atomic
from drywall_qa.core.errors import InputError
from drywall_qa.jobs import Job, JobSettings, Photo, Refused, collect
from drywall_qa.jobs.report_content import NOTES, read_notes
from drywall_qa.jobs.runner import JOB_FILE, RECORDS
from drywall_qa.jobs.sources import unique_keys

JOBS, UPLOADS = "jobs", "uploads"
#: photos one job may hold (archives counted by their photos)
MAX_JOB_PHOTOS = 500
#: longest note of a photo or of the whole job, in characters (a page of text)
MAX_NOTE_CHARS = 4000
#: the note key of the whole job in the photo picker: no photo has this name, as every photo's ends in its suffix
JOB_NOTE = "(job)"
#: already compressed: stored in the zip as they are
_STORED = frozenset({".jpg", ".jpeg", ".png", ".zip"})
_FOLDER_NAME = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")


def jobs_root(out_dir: Path) -> Path:
    return Path(out_dir) / JOBS


def new_folder(out_dir: Path) -> Path:
    """A new, empty job folder named after the time and a random id."""
    folder = jobs_root(out_dir) / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    return folder


def existing_folder(out_dir: Path, name: str | None) -> Path | None:
    """The job folder ``name`` (as :func:`new_folder` names them), None when it is not one or no longer exists."""
    if not name or not _FOLDER_NAME.fullmatch(name):
        return None
    folder = jobs_root(out_dir) / name
    return folder if (folder / JOB_FILE).is_file() else None


def upload_names(files: Sequence[str | Path]) -> list[str]:
    """The names the uploads get in ``uploads/``: their own, numbered when two are alike."""
    keys = unique_keys([Path(f).name for f in files])
    return [f"{key}{Path(f).suffix.lower()}" for key, f in zip(keys, files)]


def same_uploads(folder: Path, files: Sequence[str | Path]) -> bool:
    """Whether ``uploads/`` holds these files (by name and size): a run of them continues the job."""
    held = {p.name: p.stat().st_size for p in (folder / UPLOADS).iterdir()} if (folder / UPLOADS).is_dir() else {}
    return held == {name: Path(f).stat().st_size for name, f in zip(upload_names(files), files)}


@contextmanager
def discarded_on_failure(folder: Path, fresh: bool = True) -> Iterator[None]:
    """Remove the job ``folder`` made for this run (``fresh``), uploads and all, when the body fails before any
    photo was done: a refused or failed job keeps no copy of its uploads. A job with photos done is kept, to be run
    on, and so is a job an earlier run made."""
    try:
        yield
    except BaseException:
        if fresh and not any((folder / RECORDS).glob("*.json")):
            shutil.rmtree(folder, ignore_errors=True)
        raise


def copy_uploads(folder: Path, files: Sequence[str | Path]) -> None:
    """Copy the uploaded files into ``uploads/``."""
    (folder / UPLOADS).mkdir(exist_ok=True)
    for name, source in zip(upload_names(files), files):
        shutil.copyfile(source, folder / UPLOADS / name)


def job_photos(folder: Path) -> tuple[list[Photo], list[Refused]]:
    """The uploads' photos in name order, named as uploaded (``walls.zip/a.jpg`` for an archive's), and what was
    refused; :class:`InputError` beyond :data:`MAX_JOB_PHOTOS`."""
    uploads = folder / UPLOADS
    photos, refused = collect(sorted(uploads.iterdir()))
    if len(photos) > MAX_JOB_PHOTOS:
        raise InputError("photos", f"{len(photos)} photos uploaded; a job holds at most {MAX_JOB_PHOTOS}",
                         "split the visit into several jobs, or run `drywall-qa job` on your machine")
    return photos, refused


def open_job(folder: Path) -> Job:
    """The job in ``folder`` with the settings of its ``job.json``."""
    return Job(folder, JobSettings.from_dict(json.loads((folder / JOB_FILE).read_text())))


def write_note(folder: Path, photo: str, text: str) -> None:
    """Set a photo's note (or the whole job's, for :data:`JOB_NOTE`) in ``notes.json``; an empty one is removed;
    :class:`InputError` past :data:`MAX_NOTE_CHARS`."""
    if len(text) > MAX_NOTE_CHARS:
        raise InputError("note", f"{len(text):,} characters; the limit is {MAX_NOTE_CHARS:,}", "shorten it")
    notes = read_notes(folder)
    if photo == JOB_NOTE:
        notes["job"] = text
    elif text:
        notes["photos"][photo] = text
    else:
        notes["photos"].pop(photo, None)
    write_atomic(folder / NOTES, json.dumps(notes, indent=2, ensure_ascii=False) + "\n")


def note_of(folder: Path, photo: str | None) -> str:
    """A photo's note, or the whole job's for :data:`JOB_NOTE`."""
    notes = read_notes(folder)
    return notes["job"] if photo == JOB_NOTE else notes["photos"].get(photo or "", "")


def zip_job(folder: Path) -> Path:
    """``<folder>/<name>.zip``: the job folder without the uploads (the user has them), written atomically."""
    target = folder / f"{folder.name}.zip"
    members = sorted(p for p in folder.rglob("*") if p.is_file() and p != target and not p.name.startswith(".")
                     and p.relative_to(folder).parts[0] != UPLOADS)

    def write(handle) -> None:
        with zipfile.ZipFile(handle, "w") as archive:
            for path in members:
                method = zipfile.ZIP_STORED if path.suffix.lower() in _STORED else zipfile.ZIP_DEFLATED
                archive.write(path, f"{folder.name}/{path.relative_to(folder)}", compress_type=method)

    write_atomic(target, write)
    return target
