"""``report.html``: one self-contained page an inspector can send to a client, rendered with Jinja2 from the
template ``templates/report.html.j2``: the job's summary (photos, instances per prompt and width band, the model and
its settings), then per photo its overlay (embedded as a base64 JPEG, at most :data:`PREVIEW_SIDE` pixels), its
findings table and the inspector's notes.

Notes come from ``notes.json`` in the job folder, when there is one: ``{"job": "…", "photos": {"<photo name>":
"…"}}``; a photo without a note gets an empty box to write in on paper."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from pathlib import Path

import jinja2
from PIL import Image

from drywall_qa.atomic import write_atomic
from drywall_qa.errors import InputError
from drywall_qa.findings import BAND_NAMES
from drywall_qa.imaging import short_path
from drywall_qa.jobs.runner import JobSettings
from drywall_qa.visualisation import palette

REPORT, NOTES = "report.html", "notes.json"
#: longest side of an overlay embedded in the report
PREVIEW_SIDE = 1280
PREVIEW_QUALITY = 80

_ENVIRONMENT = jinja2.Environment(loader=jinja2.PackageLoader("drywall_qa.jobs", "templates"),
                                  autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                                  lstrip_blocks=True)


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


def preview(path: Path) -> str:
    """An overlay JPEG shrunk to :data:`PREVIEW_SIDE`, as a ``data:`` URL."""
    with Image.open(path) as image:
        image.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))
        small = image.convert("RGB")
    small.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=PREVIEW_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def render_report(folder: Path, records: Sequence[dict], settings: JobSettings, counts: dict) -> str:
    """The report's HTML for the job's records and :func:`~drywall_qa.jobs.exports.summary` ``counts``."""
    notes = read_notes(folder)
    colours = dict(zip(settings.prompts, ("#%02x%02x%02x" % c for c in palette(len(settings.prompts)))))
    photos = [{"record": record, "preview": preview(folder / record["overlay"]),
               "note": notes["photos"].get(record["name"], "")}
              for record in records if "error" not in record]
    thresholds = _thresholds(records)
    return _ENVIRONMENT.get_template("report.html.j2").render(
        settings=settings, counts=counts, photos=photos, colours=colours, bands=BAND_NAMES,
        band_limits=settings.measure.band_limits, unit=settings.measure.unit, job_note=notes["job"],
        thresholds=thresholds)


def _thresholds(records: Sequence[dict]) -> dict[str, float]:
    """Each prompt's threshold and view as run (from the first photo read)."""
    first = next((record for record in records if "error" not in record), None)
    return {entry["prompt"]: f"{entry['threshold']:.2f} ({entry['view'].split(':')[0]})"
            for entry in (first["prompts"] if first else [])}


def write_report(folder: Path, records: Sequence[dict], settings: JobSettings, counts: dict) -> Path:
    """Write ``report.html`` into the job folder atomically; its path."""
    path = folder / REPORT
    write_atomic(path, render_report(folder, records, settings, counts))
    return path
