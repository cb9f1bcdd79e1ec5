"""What the Jobs tab shows of a job: its findings and counts as tables, unreadable photos, progress with an ETA.

The findings table fits the tab's column at 1280 px: the columns an inspector reads first, short photo and prompt
names; every column of ``findings.csv`` is one click away (:func:`findings_tables`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import pandas as pd

from drywall_qa.app.messages import escape_md, without_server_paths
from drywall_qa.jobs import report_content
from drywall_qa.jobs.exports import COLUMNS, findings_rows
from drywall_qa.jobs.findings import BAND_NAMES
from drywall_qa.jobs.runner import JobSettings

#: findings rows sent to the browser; findings.csv holds them all
MAX_TABLE_ROWS = 500
#: the instances without a width band: blobs and specks, whose skeleton says nothing about a width
NOT_BANDED = "not thin"
COUNT_HEADERS = ["prompt", *report_content.COUNT_HEADERS, NOT_BANDED]
#: the findings.csv columns the tab shows first, in this order
KEY_COLUMNS = ("photo", "prompt", "instance", "length", "mean_width", "max_width", "width_band")
#: longest photo name shown in the key table; longer ones keep their start and end around an ellipsis
MAX_NAME = 24


def findings_tables(records: Sequence[dict], settings: JobSettings) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """``(key, full, count)``: the key columns of the first :data:`MAX_TABLE_ROWS` findings with short names, the
    same rows with every column of ``findings.csv``, and how many findings there are in all."""
    rows = findings_rows(records, settings)
    full = pd.DataFrame(rows[:MAX_TABLE_ROWS], columns=list(COLUMNS))
    unit = settings.measure.unit
    headers = {"instance": "#", "length": f"length {unit}", "mean_width": f"width {unit}",
               "max_width": f"max {unit}", "width_band": "band"}
    key = full[list(KEY_COLUMNS)].rename(columns=headers)
    key["photo"], key["prompt"] = key["photo"].map(short_label), key["prompt"].map(short_prompt)
    key["band"] = key["band"].replace("", NOT_BANDED)
    for column in list(headers.values())[1:4]:
        key[column] = key[column].map(lambda value: value if value == "" else round(value, 1))
    return key, full, len(rows)


def short_label(name: str, limit: int = MAX_NAME) -> str:
    """``name``, or its start and end around an ellipsis when longer than ``limit`` characters."""
    if len(name) <= limit:
        return name
    tail = (limit - 1) // 2
    return f"{name[:limit - 1 - tail]}…{name[-tail:]}"


def short_prompt(prompt: str) -> str:
    """A prompt without its leading ``segment`` (``segment taping area`` → ``taping area``)."""
    rest = prompt.removeprefix("segment ").strip()
    return rest or prompt


def counts_table(counts: dict) -> pd.DataFrame:
    """Instances per prompt and width band, from the job's summary, and the instances not banded (only thin ones
    are: :data:`NOT_BANDED`), so each row adds up."""
    rows = []
    for prompt, total in counts["instances"].items():
        banded = [counts["bands"][prompt][band] for band in BAND_NAMES]
        rows.append([prompt, total, *banded, total - sum(banded)])
    return pd.DataFrame(rows, columns=COUNT_HEADERS)


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
