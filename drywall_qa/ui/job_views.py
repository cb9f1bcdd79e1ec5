"""What the Jobs tab shows of a job: its findings and counts as tables, unreadable photos, progress with an ETA."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import pandas as pd

from drywall_qa.jobs import report_content
from drywall_qa.jobs.exports import COLUMNS, findings_rows
from drywall_qa.jobs.findings import BAND_NAMES
from drywall_qa.jobs.runner import JobSettings
from drywall_qa.ui.messages import escape_md, without_server_paths

#: findings rows sent to the browser; findings.csv holds them all
MAX_TABLE_ROWS = 500
COUNT_HEADERS = ["prompt", *report_content.COUNT_HEADERS]


def findings_table(records: Sequence[dict], settings: JobSettings) -> tuple[pd.DataFrame, int]:
    """The first :data:`MAX_TABLE_ROWS` rows of ``findings.csv`` and how many there are in all."""
    rows = findings_rows(records, settings)
    return pd.DataFrame(rows[:MAX_TABLE_ROWS], columns=list(COLUMNS)), len(rows)


def counts_table(counts: dict) -> pd.DataFrame:
    """Instances per prompt and width band, from the job's summary."""
    return pd.DataFrame([[prompt, total, *(counts["bands"][prompt][band] for band in BAND_NAMES)]
                         for prompt, total in counts["instances"].items()], columns=COUNT_HEADERS)


def problems_markdown(counts: dict) -> str:
    """The unreadable photos with the reason, as a Markdown list (empty when every photo was read)."""
    return "\n".join(["**Unreadable photos** (left out, the job went on):"]
                     + [f"- {escape_md(p['photo'])}: {escape_md(without_server_paths(p['reason']))}"
                        for p in counts["unreadable"]]) if counts["unreadable"] else ""


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s`` or ``1 h 12 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def photo_reporter(progress: Callable[..., object], earlier: int, total: int) -> Callable[[int, int], None]:
    """A :data:`~drywall_qa.jobs.runner.PhotoProgress` that moves the bar over the whole job (``earlier`` photos
    were done by an earlier run) with the photos done and left and an ETA from this run's pace."""
    start = time.monotonic()

    def report(done: int, of: int) -> None:
        left = of - done
        eta = duration((time.monotonic() - start) / done * left) if left else "none"
        progress((earlier + done, total), desc=f"{earlier + done} photos done, {left} left, ETA {eta}",
                 unit="photos")

    return report
