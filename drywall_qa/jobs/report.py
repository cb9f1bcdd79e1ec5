"""``report.html``: one self-contained page an inspector can send to a client, rendered with Jinja2 from the
template ``templates/report.html.j2`` out of the job's :class:`~drywall_qa.jobs.report_content.ReportContent`: the
summary first (counts, the largest findings, thumbnails of the photos with findings, how each prompt ran), then per
photo its overlay (embedded as a base64 JPEG, at most :data:`PREVIEW_SIDE` pixels), how each prompt ran on it, its
findings table and the inspector's notes."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import jinja2
from PIL import Image

from drywall_qa.core.atomic import write_atomic
from drywall_qa.jobs.report_content import COUNT_HEADERS, TEXT_COLUMNS, ReportContent, finding_cells

REPORT = "report.html"
#: longest side of an overlay embedded in the report, and of a thumbnail in its summary
PREVIEW_SIDE, THUMBNAIL_SIDE = 1280, 240
PREVIEW_QUALITY = 80

_ENVIRONMENT = jinja2.Environment(loader=jinja2.PackageLoader("drywall_qa.jobs", "templates"),
                                  autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                                  lstrip_blocks=True)


def shrunk(path: Path, side: int) -> Image.Image:
    """An image file as RGB, shrunk to at most ``side`` pixels on its longer side (decoded at a reduced size where
    the format allows)."""
    with Image.open(path) as image:
        image.draft("RGB", (side, side))
        small = image.convert("RGB")
    small.thumbnail((side, side))
    return small


def preview(path: Path, side: int = PREVIEW_SIDE) -> str:
    """An overlay JPEG shrunk to ``side``, as a ``data:`` URL."""
    buffer = io.BytesIO()
    shrunk(path, side).save(buffer, format="JPEG", quality=PREVIEW_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def render_report(content: ReportContent) -> str:
    """The report's HTML."""
    return _ENVIRONMENT.get_template("report.html.j2").render(
        report=content, counts=content.counts, colours=content.colours, count_headers=COUNT_HEADERS,
        text_columns=TEXT_COLUMNS, finding_cells=finding_cells,
        previews={photo.key: preview(photo.overlay) for photo in content.photos},
        thumbnails={photo.key: preview(photo.overlay, THUMBNAIL_SIDE) for photo in content.with_findings})


def write_report(folder: Path, content: ReportContent) -> Path:
    """Write ``report.html`` into the job folder atomically; its path."""
    path = folder / REPORT
    write_atomic(path, render_report(content))
    return path
