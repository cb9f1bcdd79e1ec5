"""What a job's report says, built once from the photo records and read by both of its renderings (``report.html``
and ``report.pdf``), so that the two always show the same numbers.

The summary leads: photos and how many have findings, instances per prompt and width band, each prompt's longest and
widest thin finding (where on which photo), and how each prompt was run (threshold and views, counted over the
photos, since a large photo may be tiled where a small one is not). Then one section per photo measured, photos with
findings first (job order otherwise), each with its own threshold and view per prompt.

Notes come from ``notes.json`` in the job folder, when there is one: ``{"job": "…", "photos": {"<photo name>":
"…"}}``; a photo without a note gets an empty box to write in on paper."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from drywall_qa.core.errors import InputError
from drywall_qa.core.imaging import short_path
from drywall_qa.core.visualisation import palette
from drywall_qa.jobs.findings import BAND_NAMES
from drywall_qa.jobs.runner import JobSettings

NOTES = "notes.json"


@dataclass(frozen=True)
class PromptRun:
    """How one prompt ran on one photo and what it found there."""

    prompt: str
    found: int
    coverage: float
    threshold: float
    view: str
    unknown_concept: bool

    @property
    def line(self) -> str:
        """``segment crack: 2 found, coverage 1.72 % · threshold 0.75, tiled: 54 windows at 640 px``."""
        unknown = " (unknown concept: unreliable)" if self.unknown_concept else ""
        return (f"{self.prompt}: {self.found} found, coverage {100 * self.coverage:.2f} % · threshold "
                f"{self.threshold:.2f}, {self.view}{unknown}")


@dataclass(frozen=True)
class PhotoSection:
    """One photo's part of the report: ``findings`` as ``(prompt, finding record)`` in prompt order."""

    name: str
    key: str
    width: int
    height: int
    overlay: Path
    note: str
    runs: list[PromptRun]
    findings: list[tuple[str, dict]]


@dataclass(frozen=True)
class Extreme:
    """The finding of a prompt with the largest ``value`` of a measure, and where it is."""

    photo: str
    key: str
    instance: int
    value: float

    def describe(self, digits: int) -> str:
        """``300.0 — site/large.jpg #2``."""
        return f"{self.value:.{digits}f} — {self.photo} #{self.instance}"


@dataclass(frozen=True)
class ReportContent:
    """Everything the report shows; ``counts`` is :func:`~drywall_qa.jobs.exports.summary`'s."""

    settings: JobSettings
    counts: dict
    colours: dict[str, str]
    photos: list[PhotoSection]
    runs: dict[str, list[str]]
    longest: dict[str, Extreme | None]
    widest: dict[str, Extreme | None]
    job_note: str

    @property
    def with_findings(self) -> list[PhotoSection]:
        return [photo for photo in self.photos if photo.findings]

    @property
    def unit(self) -> str:
        return self.settings.measure.unit

    @property
    def headline(self) -> str:
        """``12 photos (11 measured, 4 with findings, 1 unreadable) · model …``."""
        unreadable = f", {len(self.counts['unreadable'])} unreadable" if self.counts["unreadable"] else ""
        return (f"{self.counts['photos']} photos ({self.counts['measured']} measured, {len(self.with_findings)} with "
                f"findings{unreadable}) · model {self.settings.model}")

    @property
    def band_note(self) -> str:
        low, mid, high = self.settings.measure.band_limits
        return (f"Width bands ({self.unit}): hairline < {low} ≤ fine < {mid} ≤ medium < {high} ≤ wide; only thin "
                "instances (cracks, joints) are banded.")

    def count_rows(self) -> list[list[str]]:
        """Per prompt: its instances in all, then per width band (:data:`COUNT_HEADERS` after the prompt)."""
        return [[prompt, str(self.counts["instances"][prompt]),
                 *(str(self.counts["bands"][prompt][band]) for band in BAND_NAMES)] for prompt in self.settings.prompts]

    def settings_rows(self) -> list[tuple[str, str]]:
        """``(what, value)``: the model, each prompt's thresholds and views, tiling, smallest instance, scale."""
        measure = self.settings.measure
        scale = f"{measure.mm_per_pixel} mm per pixel" if measure.mm_per_pixel else "none: measurements in pixels"
        return [("model", self.settings.model),
                *((f"{prompt}: threshold, view", "; ".join(self.runs[prompt]) or "—") for prompt in self.runs),
                ("tiling", self.settings.tiling), ("smallest instance", f"{measure.min_area} px"), ("scale", scale)]

    def finding_headers(self) -> list[str]:
        unit = self.unit
        return ["prompt", "#", f"length ({unit})", f"mean width ({unit})", f"max width ({unit})", "band",
                f"area ({unit}²)", "orientation (°)", "score"]


#: the text columns of :meth:`ReportContent.finding_headers` (the others are numbers)
TEXT_COLUMNS = (0, 5)
COUNT_HEADERS = ("instances", *BAND_NAMES)


def finding_cells(prompt: str, finding: dict) -> list[str]:
    """A finding's row of the findings table, under :meth:`ReportContent.finding_headers`."""

    def number(value: float | None, digits: int) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    return [prompt, str(finding["instance"]), number(finding["length"], 1), number(finding["mean_width"], 2),
            number(finding["max_width"], 2), finding["band"] or "—", number(finding["area"], 1),
            number(finding["orientation"], 0), number(finding["score"], 2)]


def read_notes(folder: Path) -> dict:
    """``notes.json`` of the job folder as ``{"job": str, "photos": {name: str}}`` (empty when absent)."""
    path = folder / NOTES
    try:
        notes = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"job": "", "photos": {}}
    except (OSError, ValueError) as err:
        raise InputError(short_path(path), f"cannot be read ({err})", "fix or remove the notes file") from None
    if not (isinstance(notes, dict) and isinstance(notes.get("job", ""), str)
            and isinstance(notes.get("photos", {}), dict)):
        raise InputError(short_path(path), "is not {\"job\": text, \"photos\": {photo name: text}}",
                         "fix or remove the notes file")
    return {"job": notes.get("job", ""), "photos": {str(k): str(v) for k, v in notes.get("photos", {}).items()}}


def build_content(folder: Path, records: Sequence[dict], settings: JobSettings, counts: dict) -> ReportContent:
    """The report of the job in ``folder`` from its photo ``records`` and summary ``counts`` (notes from its
    ``notes.json``)."""
    notes = read_notes(folder)
    photos = [_section(folder, record, notes["photos"].get(record["name"], ""))
              for record in records if "error" not in record]
    photos.sort(key=lambda photo: not photo.findings)      # stable: job order within each group
    colours = dict(zip(settings.prompts, ("#%02x%02x%02x" % c for c in palette(len(settings.prompts)))))
    return ReportContent(settings=settings, counts=counts, colours=colours, photos=photos,
                         runs={prompt: _how_run(photos, prompt) for prompt in settings.prompts},
                         longest={prompt: _extreme(photos, prompt, "length") for prompt in settings.prompts},
                         widest={prompt: _extreme(photos, prompt, "max_width") for prompt in settings.prompts},
                         job_note=notes["job"])


def _section(folder: Path, record: dict, note: str) -> PhotoSection:
    runs = [PromptRun(prompt=entry["prompt"], found=len(entry["findings"]), coverage=entry["coverage"],
                      threshold=entry["threshold"], view=entry["view"], unknown_concept=entry["unknown_concept"])
            for entry in record["prompts"]]
    findings = [(entry["prompt"], finding) for entry in record["prompts"] for finding in entry["findings"]]
    return PhotoSection(name=record["name"], key=record["key"], width=record["width"], height=record["height"],
                        overlay=folder / record["overlay"], note=note, runs=runs, findings=findings)


def _how_run(photos: Sequence[PhotoSection], prompt: str) -> list[str]:
    """Each threshold and view ``prompt`` ran with, with how many photos: ``0.75, tiled: 54 windows at 640 px
    (3 photos)``."""
    seen = Counter(f"{run.threshold:.2f}, {run.view}" for photo in photos for run in photo.runs
                   if run.prompt == prompt)
    return [f"{how} ({n} photo{'s' if n != 1 else ''})" for how, n in seen.most_common()]


def _extreme(photos: Sequence[PhotoSection], prompt: str, measure: str) -> Extreme | None:
    """The ``prompt`` finding with the largest ``measure`` (None when no finding has one: only thin instances have
    a length and widths)."""
    candidates = [Extreme(photo=photo.name, key=photo.key, instance=finding["instance"], value=finding[measure])
                  for photo in photos for name, finding in photo.findings
                  if name == prompt and finding[measure] is not None]
    return max(candidates, key=lambda extreme: extreme.value, default=None)
