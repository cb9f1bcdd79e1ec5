"""A job: a folder of results for a list of photos under one set of settings, filled one photo at a time.

Layout of the job folder::

    job.json                 the settings (prompts, model, threshold, tiling, measurement)
    photos/<key>.json        one record per photo done: its findings with their COCO RLE, or why it was unreadable
    masks/<key>__NN_<prompt>.png, overlays/<key>.jpg

A photo's record is written last, atomically, so a job killed mid-photo loses at most that photo, and running the
job again on the same folder skips the photos that have a record. A folder holding a job with other settings is
refused rather than mixed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drywall_qa.core.atomic import write_atomic
from drywall_qa.core.errors import InputError
from drywall_qa.core.imaging import short_path
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.jobs.findings import MeasureSettings
from drywall_qa.jobs.photo import MASKS, OVERLAYS, annotated_overlay, prompt_record, write_jpeg
from drywall_qa.jobs.sources import Photo

JOB_FILE, RECORDS = "job.json", "photos"
#: called after each photo with (photos done in this run, photos this run does)
PhotoProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class JobSettings:
    """What every photo of a job is run with; ``model``: the segmenter's name."""

    prompts: tuple[str, ...]
    model: str
    threshold: float | None = None
    tiling: str = "auto"
    measure: MeasureSettings = field(default_factory=MeasureSettings)

    def to_dict(self) -> dict:
        return {"prompts": list(self.prompts), "model": self.model, "threshold": self.threshold,
                "tiling": self.tiling, "measure": self.measure.to_dict()}

    @classmethod
    def from_dict(cls, saved: dict) -> JobSettings:
        """The settings that :meth:`to_dict` wrote (a job folder's ``job.json``)."""
        measure = saved["measure"]
        return cls(tuple(saved["prompts"]), saved["model"], saved["threshold"], saved["tiling"],
                   MeasureSettings(measure["min_area"], measure["mm_per_pixel"], tuple(measure["bands"])))


class Job:
    """The job folder ``folder`` run with ``settings``; :meth:`open` it to start or resume."""

    def __init__(self, folder: Path, settings: JobSettings) -> None:
        self.folder, self.settings = folder, settings

    @classmethod
    def open(cls, folder: Path, settings: JobSettings, clean: bool = True) -> Job:
        """Start a job in ``folder``, or resume the one there; with ``clean`` (only in the first of several
        processes) temp files of a killed run are removed. Raises :class:`InputError` when the folder holds a job
        with other settings."""
        job = cls(folder, settings)
        for name in (RECORDS, MASKS, OVERLAYS):
            (folder / name).mkdir(parents=True, exist_ok=True)
        saved = job.saved_settings()
        if saved is not None and saved != settings.to_dict():
            changed = sorted(k for k in saved.keys() | settings.to_dict().keys()
                             if saved.get(k) != settings.to_dict().get(k))
            raise InputError(short_path(folder), f"holds a job run with other settings ({', '.join(changed)})",
                             "pass a new --out folder, or the settings of that job")
        if saved is None:
            write_atomic(folder / JOB_FILE, json.dumps(settings.to_dict(), indent=2) + "\n")
        for name in (RECORDS, MASKS, OVERLAYS) if clean else ():
            for leftover in (folder / name).glob(".*.tmp"):
                leftover.unlink(missing_ok=True)
        return job

    def saved_settings(self) -> dict | None:
        """The settings in the folder's ``job.json``, None when there is none."""
        try:
            return json.loads((self.folder / JOB_FILE).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            raise InputError(short_path(self.folder / JOB_FILE), f"cannot be read ({err})",
                             "pass a new --out folder") from None

    def record_path(self, photo: Photo) -> Path:
        return self.folder / RECORDS / f"{photo.key}.json"

    def record(self, photo: Photo) -> dict | None:
        """The photo's record, None when it is not done."""
        try:
            return json.loads(self.record_path(photo).read_text())
        except FileNotFoundError:
            return None

    def pending(self, photos: Sequence[Photo]) -> list[Photo]:
        """The photos without a record."""
        return [photo for photo in photos if not self.record_path(photo).is_file()]

    def run(self, segmenter: Segmenter, photos: Sequence[Photo], progress: PhotoProgress | None = None,
            should_stop: Callable[[], bool] | None = None) -> int:
        """Run the photos without a record, in order; stop early when ``should_stop()`` says so between photos.
        The next photo is read and decoded in a thread while the model runs the current one, so decoding a large
        JPEG is off the model's path. Returns how many were run."""
        todo = self.pending(photos)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="photo-reader") as reader:
            upcoming = reader.submit(_read, todo[0]) if todo else None
            for done, photo in enumerate(todo, start=1):
                if should_stop is not None and should_stop():
                    upcoming.cancel()
                    return done - 1
                image = upcoming.result()
                upcoming = reader.submit(_read, todo[done]) if done < len(todo) else None
                self.run_photo(segmenter, photo, image)
                if progress is not None:
                    progress(done, len(todo))
        return len(todo)

    def run_photo(self, segmenter: Segmenter, photo: Photo, image: np.ndarray | InputError | None = None) -> dict:
        """Predict, measure and write one photo (``image``: already read, or why it could not be; None: read it
        now); an unreadable photo's record says why. Returns the record."""
        image = _read(photo) if image is None else image
        if isinstance(image, InputError):
            record = {"name": photo.name, "key": photo.key, "error": image.problem}
        else:
            record = self._predict(segmenter, photo, image)
        write_atomic(self.record_path(photo), json.dumps(record) + "\n")
        return record

    def _predict(self, segmenter: Segmenter, photo: Photo, image) -> dict:
        settings = self.settings
        predictions = segmenter.predict(image, list(settings.prompts), settings.threshold, settings.tiling)
        entries, findings = zip(*(prompt_record(p, i, photo.key, self.folder, settings.measure)
                                  for i, p in enumerate(predictions)))
        overlay_file = f"{OVERLAYS}/{photo.key}.jpg"
        write_jpeg(self.folder / overlay_file, annotated_overlay(image, predictions, findings))
        return {"name": photo.name, "key": photo.key, "width": int(image.shape[1]), "height": int(image.shape[0]),
                "overlay": overlay_file, "prompts": list(entries)}

    def records(self, photos: Sequence[Photo]) -> list[dict]:
        """The records of the photos done, in the photos' order."""
        return [record for record in map(self.record, photos) if record is not None]


def _read(photo: Photo) -> np.ndarray | InputError:
    """The photo's pixels, or the error that says why it cannot be read (returned, to be recorded in order)."""
    try:
        return photo.read()
    except InputError as err:
        return err
