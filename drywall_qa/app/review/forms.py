"""The Review tab's forms (one per callback, see :mod:`drywall_qa.app.forms`) and the outputs each callback fills."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import gradio as gr

from drywall_qa.app.forms import SplitForm
from drywall_qa.app.messages import error_message
from drywall_qa.review.session import ReviewSession
from drywall_qa.review.table import ViewForm

#: where a corrected ground truth comes from (:data:`drywall_qa.review.MASK_SOURCES`) or an edit starts from
PREDICTION, EDITED, TRUTH = "prediction", "edited", "truth"


@dataclass
class ScoreForm(SplitForm):
    """A split job's controls, plus a second model to compare with."""

    #: a model box choice (empty: none)
    compare: str | None = None


@dataclass
class RowForm:
    """Which scored image (file or short name) and prompt (None: the first scored)."""

    session: ReviewSession | None = None
    image: str | None = None
    prompt: str | None = None


@dataclass
class MoveForm:
    """The image shown and the table's view: what the table shows, where *Next undecided* looks."""

    row: RowForm = field(default_factory=RowForm)
    view: ViewForm = field(default_factory=ViewForm)


@dataclass
class EditForm(MoveForm):
    """The image shown and what its edit starts from: :data:`TRUTH` or :data:`PREDICTION`."""

    source: str | None = TRUTH


@dataclass
class DecisionForm:
    """A decision about the image shown (API clients pass image, prompt, decision, comment, reviewer in that
    order); the table is redrawn with ``view``."""

    row: RowForm = field(default_factory=RowForm)
    #: one of :data:`drywall_qa.review.DECISIONS`
    decision: str | None = None
    comment: str | None = ""
    reviewer: str | None = ""
    view: ViewForm = field(default_factory=ViewForm)


@dataclass
class CorrectionForm(DecisionForm):
    """A corrected ground truth for the image shown: the prediction, or the mask painted in the editor."""

    #: :data:`PREDICTION` or :data:`EDITED`
    source: str | None = PREDICTION
    #: the image editor's value (files of its background and layers)
    editor: dict[str, Any] | None = None
    #: what the edit started from: :data:`TRUTH` or :data:`PREDICTION`
    start: str | None = TRUTH


class Scored(NamedTuple):
    status: str
    table: Any
    page_line: str | None
    session: ReviewSession | None
    review_file: str | None
    decision_filter: str | None
    prompt_filter: Any
    iou_min: float | None
    iou_max: float | None
    page: float | None


class Viewed(NamedTuple):
    status: str
    table: Any
    page_line: Any


class Shown(NamedTuple):
    """A scored image: its pictures, the decision saved so far, every prompt's scores, and an emptied editor."""

    status: str
    input: Any
    truth: Any
    prediction: Any
    errors: Any
    image: str | None
    prompt: str | None
    decision: str | None
    comment: str | None
    detail: Any
    editor: Any


class Saved(NamedTuple):
    status: str
    table: Any
    page_line: Any
    review_file: Any
    decision: Any


class Edited(NamedTuple):
    status: str
    editor: Any
    start: str | None


class Exported(NamedTuple):
    status: str
    files: Any
    split: Any


def kept(outputs: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Like :func:`~drywall_qa.app.messages.guarded`, but a failure leaves every output except the status as it was
    (a key pressed before anything was scored must not empty the table)."""

    def decorate(callback: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(callback)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return callback(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 — the UI must keep serving whatever happened
                return outputs(error_message(err), *[gr.skip()] * (len(outputs._fields) - 1))

        return run

    return decorate
