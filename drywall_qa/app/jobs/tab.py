"""Jobs tab: an inspection job (:mod:`drywall_qa.jobs`) over uploaded photos and zip archives, run through the heavy
lane with a progress bar (photos done and left, ETA) and a Stop button; the findings table, counts per prompt and
width band, unreadable photos with the reason, ``report.html``, ``report.pdf`` and a zip of the job folder to
download, and notes per photo that go into the report.

Each run writes into ``<out>/jobs/<time>-<id>/`` (:mod:`drywall_qa.jobs.folders`), kept within the app's retention
like evaluations. Stop ends the run after the current photo and keeps the photos done; pressing Run again with the
same uploads and settings continues that job, anything else starts a new one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr

from drywall_qa.app.forms import handler, named_inputs
from drywall_qa.app.inspect.tab import DEFAULT_PROMPTS
from drywall_qa.app.jobs.scale import build_scale_box
from drywall_qa.app.jobs.views import (
    COUNT_HEADERS,
    MAX_TABLE_ROWS,
    NOT_BANDED,
    counts_table,
    duration,
    findings_tables,
    photo_reporter,
    problems_markdown,
)
from drywall_qa.app.messages import cleared, error_message, escape_md, guarded
from drywall_qa.app.models import ModelCache
from drywall_qa.app.prompts import parse_prompts
from drywall_qa.app.widgets import prompt_inputs, threshold_inputs, threshold_value, whole_number
from drywall_qa.core.errors import InputError
from drywall_qa.core.tiling import TILING_MODES
from drywall_qa.jobs import Finished, Job, JobSettings, finish
from drywall_qa.jobs.findings import DEFAULT_MIN_AREA, MAX_MM_PER_PIXEL, MeasureSettings
from drywall_qa.jobs.folders import (
    JOB_NOTE,
    MAX_JOB_PHOTOS,
    copy_uploads,
    discarded_on_failure,
    existing_folder,
    job_photos,
    jobs_root,
    new_folder,
    note_of,
    open_job,
    same_uploads,
    write_note,
    zip_job,
)
from drywall_qa.jobs.report import REPORT
from drywall_qa.jobs.report_pdf import PDF
from drywall_qa.serving.lanes import HeavyLane, JobStopped, client_address
from drywall_qa.serving.retention import Retention, prune_evaluations
from drywall_qa.serving.stops import StopRequests, session_of

#: largest smallest-instance a user may set, in pixels
MAX_MIN_AREA = 1_000_000


@dataclass
class JobsForm:
    """The controls a Run press reads."""

    #: the model box's cache key
    model: str | None = None
    #: uploaded photos and zip archives (server paths)
    photos: Sequence[str] | None = None
    selected: Sequence[str] | None = DEFAULT_PROMPTS
    typed: str | None = None
    tuned: bool = True
    threshold: float = 0.5
    #: the photos' scale; empty or 0 measures in pixels
    mm_per_pixel: float | None = None
    #: smallest instance in pixels
    min_area: float | None = DEFAULT_MIN_AREA
    tiling: str = "auto"
    #: the session's last job folder (its name), which a run with the same uploads and settings continues
    job: str | None = None


@dataclass
class NoteForm:
    """The notes controls: the session's job, the photo picked (or :data:`JOB_NOTE`) and its note."""

    job: str | None = None
    photo: str | None = None
    note: str | None = None


class JobRan(NamedTuple):
    status: str
    problems: str | None
    counts: Any
    findings: Any
    details: Any
    downloads: list[str] | None
    photo: Any
    job: str | None


def measure_settings(form: JobsForm) -> MeasureSettings:
    """The measurement the form asks for; :class:`InputError` for a scale that is not a positive number."""
    scale = form.mm_per_pixel
    if scale is not None and not (isinstance(scale, (int, float)) and 0 <= scale <= MAX_MM_PER_PIXEL):
        raise InputError("mm per pixel", f"{scale!r:.40} is not a number from 0 to {MAX_MM_PER_PIXEL:g}",
                         "leave it empty for pixels")
    min_area = whole_number(form.min_area, "smallest instance", DEFAULT_MIN_AREA, 1, MAX_MIN_AREA)
    return MeasureSettings(min_area, float(scale) if scale else None)


class JobsTab:
    """Callbacks (tests call them directly) and the tab's layout."""

    def __init__(self, models: ModelCache, out_dir: Path, lane: HeavyLane | None = None,
                 retention: Retention | None = None) -> None:
        self.models, self.out_dir = models, Path(out_dir)
        self.lane, self.retention = lane or HeavyLane(), retention or Retention()
        self.stops = StopRequests()
        #: serialises rewriting a job's exports, report and zip (a run's end, a saved note)
        self._writing = threading.Lock()

    def stop(self, request: gr.Request | None = None) -> str:
        """Ask this session's job to stop after the current photo."""
        if not self.stops.ask(session_of(request)):
            return "No job of this session is running."
        return "Stopping after the current photo…"

    def run(self, form: JobsForm, request: gr.Request | None = None,
            progress: gr.Progress = gr.Progress()) -> JobRan:
        """Run the uploaded photos (continuing the session's job when the uploads and settings are the same); the
        session keeps its job when the run fails."""
        ran = self._run(form, request, progress)
        return ran if ran.job is not None else ran._replace(job=form.job)

    @guarded(JobRan)
    def _run(self, form: JobsForm, request: gr.Request | None, progress: gr.Progress) -> JobRan:
        files = [str(f) for f in form.photos or []]
        if not files:
            raise InputError("photos", "none uploaded", "upload photos, or a .zip of them")
        if len(files) > MAX_JOB_PHOTOS:
            raise InputError("photos", f"{len(files)} files uploaded; a job holds at most {MAX_JOB_PHOTOS} photos",
                             "split the visit into several jobs")
        prompts, notes = parse_prompts(form.selected, form.typed)
        if form.tiling not in TILING_MODES:
            raise InputError("tiling", f"{form.tiling!r:.40} is not one of {', '.join(TILING_MODES)}", "pick one")
        measure = measure_settings(form)
        session = session_of(request)
        try:
            with self.stops.job(session) as stopped, self.lane.admit(
                    client_address(request), stopped, lambda ahead: progress(0, desc=f"Waiting: {ahead} job(s) ahead")):
                model = self.models.get(form.model)
                notes += model.prompt_notes(prompts)
                settings = JobSettings(tuple(prompts), model.name, threshold_value(form.tuned, form.threshold),
                                       form.tiling, measure)
                prune_evaluations(jobs_root(self.out_dir), self.retention, keep=existing_folder(self.out_dir, form.job))
                job = self._job(form.job, files, settings)
                with discarded_on_failure(job.folder, fresh=job.folder.name != form.job):
                    photos, refused = job_photos(job.folder)
                    earlier, start = len(photos) - len(job.pending(photos)), time.monotonic()
                    job.run(model, photos, photo_reporter(progress, earlier, len(photos)), stopped)
                    with self._writing:
                        finished = finish(job, photos, refused)
                        zip_job(job.folder)
                prune_evaluations(jobs_root(self.out_dir), self.retention, keep=job.folder)
        except JobStopped:
            return cleared(JobRan, "Stopped while waiting for another job to finish; nothing was run.")
        status = _headline(len(finished.records), len(photos), earlier, finished.summary, model.name,
                           time.monotonic() - start, job.folder.name)
        return self._shown(job, finished, status, notes)

    def _job(self, previous: str | None, files: list[str], settings: JobSettings) -> Job:
        """The session's previous job when it holds these uploads with these settings, else a new one."""
        folder = existing_folder(self.out_dir, previous)
        if folder is not None and same_uploads(folder, files) \
                and open_job(folder).settings.to_dict() == settings.to_dict():
            return Job.open(folder, settings)
        folder = new_folder(self.out_dir)
        with discarded_on_failure(folder):
            copy_uploads(folder, files)
            return Job.open(folder, settings)

    def _shown(self, job: Job, finished: Finished, status: str, notes: Sequence[str] = ()) -> JobRan:
        """The tab's outputs for a job whose exports were just written."""
        records, counts = finished
        table, details, rows = findings_tables(records, job.settings)
        if rows > MAX_TABLE_ROWS:
            notes = [*notes, f"the first {MAX_TABLE_ROWS} of {rows} findings are shown; all are in findings.csv"]
        if notes:
            status += " · " + escape_md("; ".join(notes))
        names = [record["name"] for record in records if "error" not in record]
        picker = gr.update(choices=[("Whole job", JOB_NOTE), *((n, n) for n in names)], value=JOB_NOTE)
        return JobRan(status, problems_markdown(counts), counts_table(counts), table, details,
                      _downloads(job.folder), picker, job.folder.name)

    def show_note(self, form: NoteForm) -> tuple[str, str | None]:
        """The picked photo's note and overlay (the whole job's note and no overlay for :data:`JOB_NOTE`)."""
        folder = existing_folder(self.out_dir, form.job)
        if folder is None or not form.photo:
            return "", None
        return note_of(folder, form.photo), _overlay(folder, form.photo)

    def save_note(self, form: NoteForm) -> tuple[str, list[str] | None]:
        """Save the picked photo's note and rebuild the report and the zip; ``(status, downloads)``."""
        folder = existing_folder(self.out_dir, form.job)
        if folder is None or not form.photo:
            return "Run a job first, then pick a photo.", gr.skip()
        try:
            with self._writing:
                write_note(folder, form.photo, (form.note or "").strip())
                job = open_job(folder)
                finish(job, *job_photos(folder))
                zip_job(folder)
        except Exception as err:  # noqa: BLE001 — shown beside the notes box
            return error_message(err), gr.skip()
        which = "the job's" if form.photo == JOB_NOTE else f"{escape_md(form.photo)}'s"
        return f"Saved {which} note; the report and the zip were rebuilt.", _downloads(folder)

    def build(self, model_key: gr.State) -> None:
        """Lay out the tab and wire its events (inside a ``gr.Blocks`` context)."""
        with gr.Row():
            with gr.Column(scale=2):
                photos = gr.File(label=f"Photos, or .zip archives of them (at most {MAX_JOB_PHOTOS} photos)",
                                 file_count="multiple", file_types=["image", ".zip"], elem_id="jobs-photos",
                                 height=180)
                with gr.Row():
                    run = gr.Button("Run job", variant="primary", elem_id="jobs-run", scale=3)
                    stop = gr.Button("Stop", variant="stop", elem_id="jobs-stop", scale=1)
                selected, typed = prompt_inputs(DEFAULT_PROMPTS)
                with gr.Row():
                    scale = gr.Number(0, label="mm per pixel", minimum=0, elem_id="jobs-scale",
                                      info="0 or empty: measurements in pixels")
                    min_area = gr.Number(DEFAULT_MIN_AREA, label="Smallest instance (px)", precision=0, minimum=1,
                                         maximum=MAX_MIN_AREA)
                build_scale_box(scale)
                tiling = gr.Radio(list(TILING_MODES), value="auto", label="Tiling",
                                  info="auto: each prompt's tuned view · off: whole photo · on: overlapping windows")
                with gr.Accordion("Threshold", open=False):
                    tuned, threshold = threshold_inputs()
            with gr.Column(scale=3):
                status = gr.Markdown(elem_id="jobs-status")
                problems = gr.Markdown(elem_id="jobs-problems")
                counts = gr.Dataframe(headers=COUNT_HEADERS, interactive=False, elem_id="jobs-counts",
                                      label=f"Findings per prompt and width band (only thin ones, such as cracks and "
                                      f"joints, have a width: the others are counted as {NOT_BANDED})")
                findings = gr.Dataframe(interactive=False, elem_id="jobs-findings", max_height=360,
                                        label="Findings (width: the mean along the instance; max: its widest point)")
                with gr.Accordion("All columns of findings.csv (area, orientation, score, box)", open=False):
                    details = gr.Dataframe(interactive=False, elem_id="jobs-findings-all", max_height=360)
                files = gr.File(label="report.html, report.pdf and the job folder as a zip", file_count="multiple",
                                interactive=False, elem_id="jobs-files")
                with gr.Accordion("Inspector's notes (go into the report)", open=True):
                    photo = gr.Dropdown([], label="Photo", elem_id="jobs-photo")
                    overlay = gr.Image(label="Overlay", interactive=False, height=300, elem_id="jobs-overlay")
                    note = gr.Textbox(label="Note", lines=3, elem_id="jobs-note")
                    save = gr.Button("Save note", size="sm", elem_id="jobs-save-note")
                    saved = gr.Markdown(elem_id="jobs-note-status")
        job = gr.State(None)
        form = named_inputs(model=model_key, photos=photos, selected=selected, typed=typed, tuned=tuned,
                            threshold=threshold, mm_per_pixel=scale, min_area=min_area, tiling=tiling, job=job)
        run.click(handler(self.run, JobsForm), inputs_kwargs=form,
                  outputs=JobRan(status, problems, counts, findings, details, files, photo, job),
                  concurrency_id="batch", concurrency_limit=self.lane.capacity + 1, show_progress_on=findings,
                  api_name="run_job")
        stop.click(self.stop, None, status, queue=False, api_name="stop_job")
        notes = named_inputs(job=job, photo=photo, note=note)
        photo.change(handler(self.show_note, NoteForm), inputs_kwargs=notes, outputs=[note, overlay],
                     api_visibility="private")
        save.click(handler(self.save_note, NoteForm), inputs_kwargs=notes, outputs=[saved, files],
                   api_name="save_job_note")


def _downloads(folder: Path) -> list[str]:
    return [str(folder / REPORT), str(folder / PDF), str(folder / f"{folder.name}.zip")]


def _overlay(folder: Path, name: str) -> str | None:
    """The overlay file of the photo called ``name`` (None for the whole job or a photo not measured)."""
    job = open_job(folder)
    photos, _ = job_photos(folder)
    record = next((job.record(p) for p in photos if p.name == name), None)
    return str(folder / record["overlay"]) if record and "overlay" in record else None


def _headline(done: int, total: int, earlier: int, counts: dict, model: str, seconds: float, folder: str) -> str:
    """The status line: how far the job got, what it found and where it was saved."""
    found = sum(counts["instances"].values())
    ran = f"{done - earlier} photos in {duration(seconds)}" + (f", {earlier} done earlier" if earlier else "")
    saved = f"{found} findings with {escape_md(model)} · saved as {escape_md(folder)}"
    if done < total:
        return (f"Stopped after {done} of {total} photos ({ran}): the results cover the photos done; press Run job "
                f"again to continue · {saved}")
    return f"Job done: {total} photos ({ran}), {counts['measured']} measured · {saved}"
