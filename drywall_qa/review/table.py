"""What Review's table shows of a scoring run: one row per image for the prompt in view (every prompt's row on
request), filtered by decision and IoU range, a page at a time. Rows go worst IoU first, or by how much the two
models disagree when two are compared; images without any annotation go last, flagged, since their IoU only says
whether anything was predicted."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from drywall_qa.evaluation.intervals import paired_difference
from drywall_qa.evaluation.metrics import TOLERANCES
from drywall_qa.review import EXCLUDE_IMAGE, GROUND_TRUTH_WRONG, PREDICTION_CORRECT, PREDICTION_WRONG
from drywall_qa.review.session import ReviewSession

ALL_PROMPTS = "(every prompt)"
ANY, UNDECIDED = "any", "undecided"
PAGE_SIZE = 25
LABELS = {PREDICTION_CORRECT: "prediction correct", PREDICTION_WRONG: "prediction wrong",
          GROUND_TRUTH_WRONG: "ground truth wrong", EXCLUDE_IMAGE: "exclude image"}
DECISION_FILTERS = [("any", ANY), ("undecided", UNDECIDED), *((label, key) for key, label in LABELS.items())]
NO_ANNOTATION = "no annotation"
#: the table's score columns and their keys in a row's scores
SCORE_COLUMNS = {"IoU": "iou", "Dice": "dice", "clDice": "cldice", **{f"F1 {d}px": f"tol_f1_{d}px" for d in TOLERANCES}}
#: the second model's columns, when comparing
OTHER_COLUMNS = {"IoU B": "iou", "clDice B": "cldice", f"F1 {TOLERANCES[-1]}px B": f"tol_f1_{TOLERANCES[-1]}px"}
NOTE_CHARS = 60


@dataclass
class ViewForm:
    """The table's filters and page."""

    #: :data:`ANY`, :data:`UNDECIDED` or a decision
    decision: str | None = ANY
    #: the prompt whose rows are shown (None: the first scored), or :data:`ALL_PROMPTS`
    prompt: str | None = None
    iou_min: float | None = 0.0
    iou_max: float | None = 1.0
    page: float | None = 1


def _number(value: float | None, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _delta(row: dict[str, Any]) -> float | None:
    """The second model's IoU minus the first's, or None without a second model."""
    return None if row["other"] is None else row["other"]["iou"] - row["scores"]["iou"]


def _order(row: dict[str, Any]) -> tuple:
    """Annotated images first; then the largest disagreement, else the lowest IoU."""
    delta = _delta(row)
    first = -abs(delta) if delta is not None else row["scores"]["iou"]
    return not row["annotated"], first, row["scores"]["dice"], row["image"], row["prompt"]


def _matches(entry: dict[str, Any] | None, wanted: str | None) -> bool:
    if wanted in (None, "", ANY):
        return True
    return entry is None if wanted == UNDECIDED else entry is not None and entry["decision"] == wanted


def prompt_in_view(session: ReviewSession, view: ViewForm) -> str:
    """The prompt whose rows the view shows: the chosen one when scored (or :data:`ALL_PROMPTS`), else the first."""
    return view.prompt if view.prompt in (*session.prompts, ALL_PROMPTS) else session.prompts[0]


def rows_in_view(session: ReviewSession, decisions: dict[str, dict], view: ViewForm) -> list[dict[str, Any]]:
    """The session's rows the view's filters keep, in the table's order."""
    prompt = prompt_in_view(session, view)
    low, high = _number(view.iou_min, 0.0), _number(view.iou_max, 1.0)
    return sorted((row for row in session.rows
                   if prompt in (ALL_PROMPTS, row["prompt"]) and low <= row["scores"]["iou"] <= high
                   and _matches(decisions.get(row["image"]), view.decision)), key=_order)


def note(row: dict[str, Any], entry: dict[str, Any] | None) -> str:
    """The row's flags and comment: no annotation, a corrected ground truth and where it came from."""
    notes = [] if row["annotated"] else [NO_ANNOTATION]
    if entry and entry.get("mask") is not None:
        notes.append(f"ground truth corrected ({entry.get('mask_source')})")
    if entry and entry.get("comment"):
        notes.append(entry["comment"][:NOTE_CHARS])
    return " · ".join(notes)


def _cells(session: ReviewSession, row: dict[str, Any]) -> list[Any]:
    cells = [round(row["scores"][key], 3) for key in SCORE_COLUMNS.values()]
    if session.compare is not None:
        other = row["other"]
        cells += [round(other["iou"], 3), round(_delta(row), 3), *(round(other[k], 3) for k in
                                                                   list(OTHER_COLUMNS.values())[1:])]
    return cells


def columns(session: ReviewSession | None) -> list[str]:
    """The table's headers; the second model's columns (and the IoU delta) when comparing."""
    other = [] if session is None or session.compare is None else ["IoU B", "Δ IoU", *list(OTHER_COLUMNS)[1:]]
    return ["Image", "Prompt", *SCORE_COLUMNS, *other, "Decision", "Note"]


def comparison_line(session: ReviewSession) -> str:
    """Per prompt, model B's mean score minus model A's with its 95 % interval over source photos (Markdown)."""
    names = {"IoU": "iou", **{title.removesuffix(" B"): key for title, key in list(OTHER_COLUMNS.items())[1:]}}
    parts = []
    for prompt in session.prompts:
        rows = [row for row in session.rows if row["prompt"] == prompt]
        first, second = ([[row[side][key] for key in names.values()] for row in rows] for side in ("scores", "other"))
        means, bounds = paired_difference(first, second, [row["image"] for row in rows])
        cells = [f"{title} {mean:+.3f}" + ("" if bounds is None else f" [{bounds[i][0]:+.3f}, {bounds[i][1]:+.3f}]")
                 for i, (title, mean) in enumerate(zip(names, means))]
        parts.append(f"{prompt}: {', '.join(cells)}")
    return ("B − A, mean over images, 95 % interval by a bootstrap over source photos (an interval holding 0: the "
            "difference may be the photos' doing): " + "; ".join(parts))


def page_count(rows: int) -> int:
    return max(1, math.ceil(rows / PAGE_SIZE))


def table(session: ReviewSession, decisions: dict[str, dict], view: ViewForm) -> tuple[pd.DataFrame, str]:
    """The view's page of the table, and a line saying which page of how many rows, and how many are decided."""
    rows = rows_in_view(session, decisions, view)
    pages = page_count(len(rows))
    page = min(pages, max(1, int(_number(view.page, 1))))
    shown = rows[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    records = [[session.short[row["image"]], row["prompt"], *_cells(session, row),
                LABELS.get((decisions.get(row["image"]) or {}).get("decision"), ""),
                note(row, decisions.get(row["image"]))] for row in shown]
    decided = sum(name in decisions for name in session.index)
    line = (f"Page {page} of {pages} · {len(rows)} rows in view · {decided} of {len(session.index)} scored images "
            "decided")
    return pd.DataFrame(records, columns=columns(session)), line


def detail_table(session: ReviewSession, image: str) -> pd.DataFrame:
    """Every scored prompt's scores of one image (the synonyms the main table folds into one row)."""
    rows = session.rows_of(image)
    return pd.DataFrame([[row["prompt"], *_cells(session, row)] for row in rows], columns=columns(session)[1:-2])


def next_undecided(session: ReviewSession, decisions: dict[str, dict], view: ViewForm,
                   current: str | None) -> dict[str, Any] | None:
    """The first row after ``current``'s image (wrapping around) whose image has no decision, in the view's order
    and within its prompt and IoU filters (its decision filter aside); None when every such image is decided."""
    rows = rows_in_view(session, decisions, replace(view, decision=ANY))
    images = [row["image"] for row in rows]
    start = images.index(current) + 1 if current in images else 0
    return next((row for row in rows[start:] + rows[:start]
                 if row["image"] != current and row["image"] not in decisions), None)
