"""Review tab: score a split's images against ground truth, worst first; inspect one and accept / reject it.

Decisions go to ``<out>/reviews/<dataset>__<split>-<digest>.json``, one file per split folder (see
:mod:`drywall_qa.ui.reviews`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import pandas as pd

from drywall_qa.errors import InputError
from drywall_qa.metrics import score_masks
from drywall_qa.ui.forms import SplitForm, handler, named_inputs
from drywall_qa.ui.job_limits import check_job_size
from drywall_qa.ui.lanes import HeavyLane, client_address
from drywall_qa.ui.messages import escape_md, guarded, skipped_note
from drywall_qa.ui.models import ModelCache, SharedModel
from drywall_qa.ui.prompts import parse_prompts
from drywall_qa.ui.reviews import ReviewStore, review_slug
from drywall_qa.ui.splits import ConfinedSplit, discover_splits, open_split, split_name, split_prompts
from drywall_qa.ui.widgets import (
    for_display,
    prompt_inputs,
    split_input,
    threshold_inputs,
    threshold_value,
    whole_number,
)
from drywall_qa.visualisation import FN_COLOR, FP_COLOR, GT_COLOR, TP_COLOR, error_map, overlay, palette

HEADERS = ["Image", "Prompt", "IoU", "Dice", "Precision", "Recall", "Decision", "Comment"]
DEFAULT_LIMIT = 20


@dataclass
class ReviewSession:
    """One scoring run: where, with what, and its per-image, per-prompt scores."""

    split: str
    name: str
    slug: str
    model_key: str
    model: str
    prompts: list[str]
    threshold: float | None
    rows: list[dict]
    index: dict[str, int]

    def row(self, image: str, prompt: str) -> dict:
        for row in self.rows:
            if row["image"] == image and row["prompt"] == prompt:
                return row
        raise InputError("table row", f"{image} / {prompt} is not in the scored table", "score the split again")


@dataclass
class DecisionForm:
    """A decision about one row of the session's scored table."""

    session: ReviewSession | None = None
    image: str | None = None
    prompt: str | None = None
    #: "accept", "reject" or none (a comment alone)
    decision: str | None = None
    comment: str | None = ""


class Scored(NamedTuple):
    status: str
    table: pd.DataFrame | None
    session: ReviewSession | None
    review_file: str | None


class Shown(NamedTuple):
    """A scored row: its pictures, and the decision saved for it so far."""

    status: str
    input: Any
    truth: Any
    prediction: Any
    errors: Any
    image: str | None
    prompt: str | None
    decision: str | None
    comment: str | None


class Saved(NamedTuple):
    status: str
    table: pd.DataFrame | None
    review_file: str | None


def error_legend() -> str:
    """The error map's colours, as drawn by :func:`drywall_qa.visualisation.error_map`."""
    items = [(TP_COLOR, "true positive"), (FP_COLOR, "false positive"), (FN_COLOR, "missed (false negative)")]
    swatches = " · ".join(f'<span style="color:rgb{color}">■</span> {name}' for color, name in items)
    return f"<small>Errors: {swatches}</small>"


class ReviewTab:
    """Callbacks (tests call them directly) and the tab's layout."""

    def __init__(self, models: ModelCache, roots: Sequence[Path], out_dir: Path, max_images: int = 200,
                 lane: HeavyLane | None = None) -> None:
        self.models, self.roots, self.out_dir, self.max_images = models, list(roots), Path(out_dir), max_images
        self.lane = lane or HeavyLane()

    def store(self, session: ReviewSession) -> ReviewStore:
        return ReviewStore(self.out_dir / "reviews" / f"{session.slug}.json", session.name)

    @guarded(Scored)
    def score(self, form: SplitForm, request: gr.Request | None = None,
              progress: gr.Progress = gr.Progress()) -> Scored:
        """The first ``form.limit`` images of the form's split scored, worst first."""
        split = open_split(form.split, self.roots)
        prompts, notes = parse_prompts(form.selected, form.typed)
        if not len(split):
            raise InputError(f"split {split_name(split)}", "lists no images", "choose another split")
        total = min(len(split), whole_number(form.limit, "images to score", DEFAULT_LIMIT, 1, self.max_images))
        check_job_size(total, 0, len(prompts))
        value = threshold_value(form.tuned, form.threshold)
        with self.lane.admit(client_address(request),
                             waiting=lambda ahead: progress(0, desc=f"Waiting: {ahead} job(s) ahead")):
            model = self.models.get(form.model)
            notes += model.prompt_notes(prompts)
            rows = self._scores(model, split, prompts, value, total, progress)
        session = ReviewSession(form.split, split_name(split), review_slug(split), model.key, model.name, prompts,
                                value, rows, {split.file_name(i): i for i in range(total)})
        status = (f"Scored {total} of {len(split)} images of {escape_md(session.name)} × {len(prompts)} prompts "
                  f"with {escape_md(model.name)}, worst first. Click a row to see it.")
        notes += [note for note in [skipped_note(split)] if note]
        if notes:
            status += " " + escape_md("; ".join(notes))
        return Scored(status, self.table(session), session, self._file(session))

    @staticmethod
    def _scores(model: SharedModel, split: ConfinedSplit, prompts: list[str], threshold: float | None, total: int,
                progress: gr.Progress) -> list[dict]:
        """IoU, Dice, precision and recall per image and prompt of the first ``total`` images."""
        rows = []
        for i in range(total):
            progress((i, total), desc="Scoring images")
            sample = split[i]
            for prediction in model.predict(sample.image, prompts, threshold):
                iou, dice, precision, recall = score_masks(prediction.mask, sample.mask)
                rows.append({"image": sample.file_name, "prompt": prediction.prompt, "iou": iou, "dice": dice,
                             "precision": precision, "recall": recall})
        return rows

    def table(self, session: ReviewSession) -> pd.DataFrame:
        """Scores with saved decisions, lowest IoU first."""
        reviews = self.store(session).load()
        records = []
        for row in sorted(session.rows, key=lambda r: (r["iou"], r["dice"], r["image"], r["prompt"])):
            entry = reviews.get(row["image"], {}).get(row["prompt"]) or {}
            records.append([row["image"], row["prompt"], *(round(row[k], 3) for k in ("iou", "dice", "precision",
                                                                                       "recall")),
                            entry.get("decision") or "", entry.get("comment", "")])
        return pd.DataFrame(records, columns=HEADERS)

    def select(self, session: ReviewSession | None, evt: gr.SelectData) -> Shown:
        """A table row was clicked: show its image and prompt (whatever column was clicked)."""
        row = evt.row_value or []
        return self.show(session, *(row[:2] if len(row) >= 2 else (None, None)))

    @guarded(Shown)
    def show(self, session: ReviewSession | None, image: str | None, prompt: str | None) -> Shown:
        """The row of ``image`` and ``prompt``: input, ground truth, prediction, error map and saved decision."""
        if session is None or image not in session.index:
            raise InputError("review", "no scored row selected", "press Score, then click a row of the table")
        row = session.row(image, prompt)
        sample = open_split(session.split, self.roots)[session.index[image]]
        [prediction] = self.models.get(session.model_key).predict(sample.image, [prompt], session.threshold)
        small, (truth, pred) = for_display(sample.image, [sample.mask, prediction.mask])
        entry = self.store(session).get(image, prompt) or {}
        status = (f"**{escape_md(image)}** · {escape_md(prompt)} · IoU {row['iou']:.3f} · Dice {row['dice']:.3f} · "
                  f"precision {row['precision']:.3f} · recall {row['recall']:.3f}")
        return Shown(status, small, overlay(small, [truth], [GT_COLOR]), overlay(small, [pred], palette(1)),
                     error_map(pred, truth, small), image, prompt, entry.get("decision"), entry.get("comment", ""))

    @guarded(Saved)
    def save(self, form: DecisionForm) -> Saved:
        """Record the form's decision for its row of the session's scored table (clicking a row fills the row in;
        API clients pass it after ``/score_split``)."""
        session = form.session
        if session is None:
            raise InputError("review", "nothing scored in this session", "press Score (or call /score_split) first")
        if not form.image or not form.prompt:
            raise InputError("review", "no row selected", "click a row of the table first")
        if not form.decision and not (form.comment or "").strip():
            raise InputError("review", "nothing to save", "pick accept or reject, or write a comment")
        row = session.row(form.image, form.prompt)
        self.store(session).save(row["image"], row["prompt"], form.decision or None, form.comment or "",
                                 model=session.model, threshold=session.threshold, iou=row["iou"],
                                 dice=row["dice"])
        return Saved(f"Saved {form.decision or 'comment'} for {escape_md(row['image'])} · "
                     f"{escape_md(row['prompt'])}.", self.table(session), self._file(session))

    def _file(self, session: ReviewSession) -> str | None:
        path = self.store(session).path
        return str(path) if path.is_file() else None

    def build(self, model_key: gr.State) -> None:
        """Lay out the tab and wire its events (inside a ``gr.Blocks`` context)."""
        choices = discover_splits(self.roots)
        with gr.Row():
            split = split_input(choices, "review-split")
            limit = gr.Slider(1, self.max_images, min(DEFAULT_LIMIT, self.max_images), step=1,
                              label="Images to score", info="the first N images of the split", elem_id="review-limit")
        with gr.Accordion("Prompts and threshold", open=False):
            selected, typed = prompt_inputs(split_prompts(choices[0][1], self.roots) if choices else [])
            tuned, threshold = threshold_inputs()
        button = gr.Button("Score", variant="primary", elem_id="review-run")
        status = gr.Markdown(elem_id="review-status")
        table = gr.Dataframe(headers=HEADERS, interactive=False, max_height=320, elem_id="review-table",
                             datatype=["str", "str", "number", "number", "number", "number", "str", "str"])
        with gr.Row(equal_height=True):
            shown = [gr.Image(label=label, interactive=False, format="png", height=260, elem_id=f"review-{key}")
                     for label, key in [("Input", "input"), ("Ground truth", "truth"), ("Prediction", "prediction"),
                                        ("Errors", "errors")]]
        gr.HTML(error_legend())
        with gr.Row(equal_height=True):
            image = gr.Textbox(label="Image", interactive=False, scale=2, elem_id="review-image")
            prompt = gr.Textbox(label="Prompt", interactive=False, scale=1, elem_id="review-prompt")
            decision = gr.Radio([("Accept", "accept"), ("Reject", "reject")], label="Decision", scale=1)
            comment = gr.Textbox(label="Comment", scale=3, max_lines=3)
            save = gr.Button("Save review", scale=1)
        review_file = gr.File(label="Review file (JSON)", interactive=False)
        session = gr.State(None)
        split.change(lambda value: split_prompts(value, self.roots) or gr.skip(), split, selected,
                     api_visibility="private")
        button.click(handler(self.score, SplitForm),
                     inputs_kwargs=named_inputs(model=model_key, split=split, selected=selected, typed=typed,
                                                tuned=tuned, threshold=threshold, limit=limit),
                     outputs=Scored(status, table, session, review_file), concurrency_id="batch",
                     concurrency_limit=self.lane.capacity + 1, api_name="score_split")
        table.select(self.select, session, Shown(status, *shown, image, prompt, decision, comment),
                     concurrency_id="model", api_visibility="private")
        save.click(handler(self.save, DecisionForm),
                   inputs_kwargs=named_inputs(session=session, image=image, prompt=prompt, decision=decision,
                                              comment=comment),
                   outputs=Saved(status, table, review_file), api_name="save_review")
