"""Inspection jobs: many photos → per-photo results (:mod:`.runner`), findings exports (:mod:`.exports`) and a
client report built once (:mod:`.report_content`) and written as HTML (:mod:`.report`) and PDF (:mod:`.report_pdf`);
the photos come from files, folders, globs and zip archives (:mod:`.sources`)."""

from __future__ import annotations

from typing import NamedTuple

from drywall_qa.jobs.exports import write_exports
from drywall_qa.jobs.report import write_report
from drywall_qa.jobs.report_content import build_content
from drywall_qa.jobs.report_pdf import write_pdf
from drywall_qa.jobs.runner import Job, JobSettings
from drywall_qa.jobs.sources import Photo, Refused, collect

__all__ = ["Finished", "Job", "JobSettings", "Photo", "Refused", "collect", "finish", "write_exports", "write_pdf",
           "write_report"]


class Finished(NamedTuple):
    """What :func:`finish` read and wrote: the records of the photos done, in order, and the summary."""

    records: list[dict]
    summary: dict


def finish(job: Job, photos: list[Photo], refused: list[Refused]) -> Finished:
    """Write the exports and the report (HTML and PDF) of the photos done (their records read once)."""
    records = job.records(photos)
    counts = write_exports(job.folder, records, job.settings, refused)
    content = build_content(job.folder, records, job.settings, counts)
    write_report(job.folder, content)
    write_pdf(job.folder, content)
    return Finished(records, counts)
