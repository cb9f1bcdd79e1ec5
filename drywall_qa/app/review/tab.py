"""Review tab callbacks: score a split's images against their ground truth (optionally a second model beside the
first), show one image, record a decision about it, fix its ground truth, and export the corrected split.

Decisions are per image (:mod:`drywall_qa.review`), kept in ``<out>/reviews/<dataset>__<split>-<digest>.json``, one
file per split folder; files of the first review format (accept / reject per prompt) are read as decisions. The
layout is :mod:`drywall_qa.app.review.layout`; the table's filters and order :mod:`drywall_qa.review.table`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from drywall_qa.app.messages import escape_md, guarded, skipped_note
from drywall_qa.app.models import ModelCache
from drywall_qa.app.prompts import parse_prompts
from drywall_qa.app.review.fix import CORRECTED, compare_errors, edited_mask, editor_value, export_corrected
from drywall_qa.app.review.forms import (
    EDITED,
    PREDICTION,
    TRUTH,
    CorrectionForm,
    DecisionForm,
    Edited,
    EditForm,
    Exported,
    MoveForm,
    RowForm,
    Saved,
    Scored,
    ScoreForm,
    Shown,
    Viewed,
    kept,
)
from drywall_qa.app.review.layout import build_review
from drywall_qa.app.widgets import for_display, threshold_value, whole_number
from drywall_qa.core.errors import InputError
from drywall_qa.core.visualisation import GT_COLOR, error_map, overlay, palette
from drywall_qa.data.coco import Sample
from drywall_qa.data.discovery import discover_splits, open_split, split_name
from drywall_qa.evaluation import predictions_over
from drywall_qa.review import DECISIONS, GROUND_TRUTH_WRONG, DecisionStore, decode_mask
from drywall_qa.review.session import ReviewSession, image_rows, review_slug
from drywall_qa.review.table import (
    ALL_PROMPTS,
    ANY,
    LABELS,
    NO_ANNOTATION,
    SCORE_COLUMNS,
    ViewForm,
    comparison_line,
    detail_table,
    next_undecided,
    table,
)
from drywall_qa.serving.lanes import HeavyLane, client_address
from drywall_qa.serving.limits import check_job_size

DEFAULT_LIMIT = 20


def _scores_line(scores: dict[str, float]) -> str:
    return " · ".join(f"{column} {scores[key]:.3f}" for column, key in SCORE_COLUMNS.items())


class ReviewTab:
    """Callbacks (tests call them directly); :meth:`build` lays the tab out."""

    def __init__(self, models: ModelCache, roots: Sequence[Path], out_dir: Path, max_images: int = 2000,
                 lane: HeavyLane | None = None, compare_choices: Sequence[tuple[str, str]] = ()) -> None:
        self.models, self.out_dir, self.max_images = models, Path(out_dir), max_images
        #: the data folders, and the corrected splits this tab exported
        self.roots = [*roots, self.out_dir / CORRECTED]
        self.lane = lane or HeavyLane()
        self.compare_choices = list(compare_choices)

    def store(self, session: ReviewSession) -> DecisionStore:
        return DecisionStore(self.out_dir / "reviews" / f"{session.slug}.json", session.name)

    def _compare_key(self, choice: str | None) -> str | None:
        """The second model's cache key: a model box choice, or None for none."""
        if not choice:
            return None
        if choice not in {value for _, value in self.compare_choices}:
            raise InputError("model to compare", f"{choice[:80]!r} is not offered by this server",
                             "pick one of the list")
        return choice

    @guarded(Scored)
    def score(self, form: ScoreForm, request: gr.Request | None = None,
              progress: gr.Progress = gr.Progress()) -> Scored:
        """The first ``form.limit`` images of the form's split scored by the model (and the one to compare)."""
        split = open_split(form.split, self.roots)
        prompts, notes = parse_prompts(form.selected, form.typed)
        if not len(split):
            raise InputError(f"split {split_name(split)}", "lists no images", "choose another split")
        total = min(len(split), whole_number(form.limit, "images to score", DEFAULT_LIMIT, 1, self.max_images))
        compare_key = self._compare_key(form.compare)
        check_job_size(total, 0, len(prompts) * (2 if compare_key else 1))
        value = threshold_value(form.tuned, form.threshold)
        with self.lane.admit(client_address(request),
                             waiting=lambda ahead: progress(0, desc=f"Waiting: {ahead} job(s) ahead")):
            models = [self.models.get(key) for key in (form.model, compare_key) if key]
            notes += models[0].prompt_notes(prompts)
            rows = []
            for i, sample, predictions, _ in predictions_over(models[0], split, prompts, value, total, desc="review"):
                progress((i, total), desc="Scoring images")
                others = models[1].predict(sample.image, prompts, value) if compare_key else None
                rows += image_rows(sample, predictions, others)
        other = models[1] if compare_key else None
        session = ReviewSession(form.split, split_name(split), review_slug(split), models[0].key, models[0].name,
                                prompts, value, rows, {split.file_name(i): i for i in range(total)},
                                compare_key, other.name if other else None)
        against = f" against {escape_md(other.name)} (B), by disagreement" if other else ", worst first"
        status = (f"Scored {total} of {len(split)} images of {escape_md(session.name)} × {len(prompts)} prompts "
                  f"with {escape_md(session.model)}{against}. Click a row, or press **n** for the next undecided.")
        notes += [note for note in [skipped_note(split)] if note]
        if other:
            status += " " + escape_md(comparison_line(session))
        if notes:
            status += " " + escape_md("; ".join(notes))
        shown, line = table(session, self.store(session).load(), ViewForm())
        return Scored(status, shown, line, session, self._file(session), ANY,
                      gr.update(choices=[*prompts, ALL_PROMPTS], value=prompts[0]), 0.0, 1.0, 1)

    @kept(Viewed)
    def view(self, form: MoveForm) -> Viewed:
        """The table redrawn for the form's filters and page."""
        session = form.row.session
        if session is None:
            raise InputError("review", "nothing scored in this session", "press Score first")
        return Viewed("", *table(session, self.store(session).load(), form.view))

    def select(self, session: ReviewSession | None, evt: gr.SelectData) -> Shown:
        """A table row was clicked: show its image and prompt (whatever column was clicked)."""
        row = evt.row_value or [None, None]
        return self.show(RowForm(session, *row[:2]))

    def _sample(self, session: ReviewSession, image: str) -> Sample:
        return open_split(session.split, self.roots)[session.index[image]]

    def _predictions(self, session: ReviewSession, image: np.ndarray, prompt: str) -> list[np.ndarray]:
        """The masks of the session's model(s) for ``prompt``."""
        return [self.models.get(key).predict(image, [prompt], session.threshold)[0].mask
                for key in (session.model_key, session.compare_key) if key]

    @staticmethod
    def _checked(form: RowForm) -> tuple[ReviewSession, dict[str, Any]]:
        if form.session is None:
            raise InputError("review", "nothing scored in this session", "press Score (or call /score_split) first")
        if not form.image:
            raise InputError("review", "no image selected", "click a row of the table, or press n")
        return form.session, form.session.row(form.image, form.prompt)

    @guarded(Shown)
    def show(self, form: RowForm) -> Shown:
        """The row's image: input, ground truth, prediction(s), error map(s), saved decision, every prompt's scores."""
        session, row = self._checked(form)
        sample = self._sample(session, row["image"])
        small, [truth, *preds] = for_display(sample.image, [sample.mask, *self._predictions(session, sample.image,
                                                                                           row["prompt"])])
        errors = error_map(preds[0], truth, small) if len(preds) == 1 else compare_errors(*preds, truth, small)
        entry = self.store(session).get(row["image"]) or {}
        return Shown(self._status(session, row, entry), small, overlay(small, [truth], [GT_COLOR]),
                     overlay(small, preds, palette(len(preds))), errors, session.short[row["image"]], row["prompt"],
                     entry.get("decision"), entry.get("comment", ""), detail_table(session, row["image"]), None)

    @staticmethod
    def _status(session: ReviewSession, row: dict[str, Any], entry: dict[str, Any]) -> str:
        """The shown image's line: name, prompt, scores, the second model's, flags and the decision so far."""
        parts = [f"**{escape_md(session.short[row['image']])}**", escape_md(row["prompt"]), _scores_line(row["scores"])]
        if row["other"] is not None:
            delta = row["other"]["iou"] - row["scores"]["iou"]
            parts.append(f"B: IoU {row['other']['iou']:.3f} (Δ {delta:+.3f})")
        if not row["annotated"]:
            parts.append(f"**{NO_ANNOTATION}**: the IoU only says whether anything was predicted")
        if entry:
            by = f" by {escape_md(entry['reviewer'])}" if entry.get("reviewer") else ""
            parts.append(f"decided: *{LABELS[entry['decision']]}*{by}")
        return " · ".join(parts)

    @guarded(Shown)
    def next_undecided(self, form: MoveForm) -> Shown:
        """Show the next image without a decision after the one shown, in the table's order and filters."""
        session = form.row.session
        if session is None:
            raise InputError("review", "nothing scored in this session", "press Score first")
        current = session.image(form.row.image) if form.row.image else None
        found = next_undecided(session, self.store(session).load(), form.view, current)
        if found is None:
            raise InputError("review", "every image in view is decided", "widen the filters or score more images")
        return self.show(RowForm(session, found["image"], found["prompt"]))

    @kept(Saved)
    def decide(self, form: DecisionForm) -> Saved:
        """Record the form's decision, comment and reviewer for the shown image (a corrected ground truth saved
        earlier stays while the decision stays *ground truth wrong*)."""
        session, row = self._checked(form.row)
        if form.decision not in DECISIONS:
            raise InputError("decision", "none picked", "press 1–4 or pick a decision")
        store = self.store(session)
        previous = store.get(row["image"]) or {}
        mask = source = None
        if form.decision == GROUND_TRUTH_WRONG and previous.get("mask") is not None:
            mask, source = decode_mask(previous["mask"]), previous.get("mask_source")
        return self._save(session, row, form, form.decision, mask, source)

    @kept(Saved)
    def correct(self, form: CorrectionForm) -> Saved:
        """Save a corrected ground truth for the shown image: the prediction, or the mask painted in the editor."""
        session, row = self._checked(form.row)
        sample = self._sample(session, row["image"])
        if form.source == PREDICTION:
            mask = self._predictions(session, sample.image, row["prompt"])[0]
        else:
            mask = edited_mask(form.editor, sample.image, self._start(session, sample, row, form.start))
        return self._save(session, row, form, GROUND_TRUTH_WRONG, mask, PREDICTION if form.source == PREDICTION
                          else EDITED)

    def _save(self, session: ReviewSession, row: dict[str, Any], form: DecisionForm, decision: str,
              mask: np.ndarray | None, source: str | None) -> Saved:
        context = {"prompt": row["prompt"], "model": session.model, "threshold": session.threshold,
                   **{key: row["scores"][key] for key in ("iou", "dice", "cldice")}}
        self.store(session).decide(row["image"], decision, form.comment or "", form.reviewer or "", mask, source,
                                   **context)
        fixed = f" with the corrected ground truth ({source})" if mask is not None else ""
        status = f"Saved *{LABELS[decision]}*{fixed} for {escape_md(session.short[row['image']])}."
        shown, line = table(session, self.store(session).load(), form.view)
        return Saved(status, shown, line, self._file(session), decision)

    @guarded(Edited)
    def edit(self, form: EditForm) -> Edited:
        """Open the shown image in the editor with its ground truth (or the prediction) painted on it."""
        session, row = self._checked(form.row)
        sample = self._sample(session, row["image"])
        mask = self._start(session, sample, row, form.source)
        start = "ground truth" if form.source == TRUTH else "prediction"
        return Edited(f"Editing the {start} of {escape_md(session.short[row['image']])}: the pink brush adds, the "
                      "blue one removes; then press *Save edited ground truth*.", editor_value(sample.image, mask),
                      form.source)

    def _start(self, session: ReviewSession, sample: Sample, row: dict[str, Any], source: str | None) -> np.ndarray:
        """The mask an edit starts from: the ground truth, or the prediction for :data:`PREDICTION`."""
        if source == PREDICTION:
            return self._predictions(session, sample.image, row["prompt"])[0]
        return sample.mask

    @guarded(Exported)
    def export(self, session: ReviewSession | None) -> Exported:
        """Write the session's split with its decisions applied as a new split, offered in the Split box."""
        if session is None:
            raise InputError("export", "nothing scored in this session", "press Score and decide on images first")
        summary = export_corrected(self.store(session).path, open_split(session.split, self.roots), self.out_dir)
        choices = discover_splits(self.roots)
        value = next(v for _, v in choices if Path(v).resolve() == summary.out.resolve())
        unfixed = (f" {summary.unfixed} marked *ground truth wrong* without a corrected mask keep their annotations."
                   if summary.unfixed else "")
        status = (f"Exported {summary.images} images to `{summary.out.relative_to(self.out_dir).as_posix()}` in the "
                  f"output folder: {summary.corrected} with corrected ground truth, {summary.excluded} excluded."
                  f"{unfixed} It is selected in the Split box: press **Score** to score it.")
        files = [str(summary.out / name) for name in ("_annotations.coco.json", "decisions.csv")]
        return Exported(status, files, gr.update(choices=choices, value=value))

    def _file(self, session: ReviewSession) -> str | None:
        path = self.store(session).path
        return str(path) if path.is_file() else None

    def build(self, model_key: gr.State) -> None:
        """Lay out the tab and wire its events (inside a ``gr.Blocks`` context)."""
        build_review(self, model_key)
