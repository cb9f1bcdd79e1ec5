"""The Review tab's layout and events: scoring controls, the filtered and paged table, the image panels, the
decision controls (keys 1–4 and n, :mod:`drywall_qa.app.review.keys`), the ground-truth editor and the export."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Protocol

import gradio as gr

from drywall_qa.app.forms import handler, named_inputs
from drywall_qa.app.inspect.visual_box import raw_editor
from drywall_qa.app.review.fix import ADD, BRUSH_OPACITY, FIX_HELP, REMOVE
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
    Saved,
    Scored,
    ScoreForm,
    Shown,
    Viewed,
)
from drywall_qa.app.review.keys import DECISION_ID, NEXT_ID
from drywall_qa.app.widgets import bound_image_limit, image_limit_input, prompt_inputs, split_input, threshold_inputs
from drywall_qa.core.visualisation import FN_COLOR, FP_COLOR, TP_COLOR
from drywall_qa.data.discovery import discover_splits, split_prompts
from drywall_qa.review.table import ANY, DECISION_FILTERS, LABELS, columns
from drywall_qa.serving.lanes import HeavyLane

KEYS_HELP = ("<small>Keys (outside text boxes): <b>1</b>–<b>4</b> decide · <b>n</b> next undecided · <b>Esc</b> "
             "leaves a text box</small>")


def error_legend() -> str:
    """The error map's colours, as drawn by :func:`drywall_qa.core.visualisation.error_map`."""
    items = [(TP_COLOR, "true positive"), (FP_COLOR, "false positive"), (FN_COLOR, "missed (false negative)")]
    swatches = " · ".join(f'<span style="color:rgb{color}">■</span> {name}' for color, name in items)
    return f"<small>Errors: {swatches}. Comparing two models: model A left, B right.</small>"


class ReviewCallbacks(Protocol):
    """What the layout wires its events to: :class:`~drywall_qa.app.review.tab.ReviewTab`."""

    roots: Sequence[Path]
    max_images: int
    compare_choices: Sequence[tuple[str, str]]
    lane: HeavyLane
    score: Callable
    view: Callable
    select: Callable
    next_undecided: Callable
    decide: Callable
    correct: Callable
    edit: Callable
    export: Callable


def build_review(tab: ReviewCallbacks, model_key: gr.State) -> None:
    """Lay out ``tab`` and wire its events (inside a ``gr.Blocks`` context)."""
    parts = SimpleNamespace(**vars(_score_controls(tab)), **vars(_table()), **vars(_image_view()), **vars(_fix_box()),
                            **vars(_export_row()), session=gr.State(None))
    _wire(tab, model_key, parts)


def _score_controls(tab: ReviewCallbacks) -> SimpleNamespace:
    """The split, the number of images, prompts, threshold, the model to compare with, Score and the status line."""
    choices = discover_splits(tab.roots)
    with gr.Row():
        split = split_input(choices, "review-split")
        limit = image_limit_input(choices, tab.roots, tab.max_images, 20, "Images to score",
                                  "review-limit")
    with gr.Accordion("Prompts, threshold and a second model to compare", open=False):
        selected, typed = prompt_inputs(split_prompts(choices[0][1], tab.roots) if choices else [])
        tuned, threshold = threshold_inputs()
        compare = gr.Dropdown([("none", ""), *tab.compare_choices], value="", label="Compare with (model B)",
                              elem_id="review-compare",
                              info="scores both models; the table then sorts by where they disagree most")
    button = gr.Button("Score", variant="primary", elem_id="review-run")
    status = gr.Markdown(elem_id="review-status")
    return SimpleNamespace(split=split, limit=limit, selected=selected, typed=typed, tuned=tuned, threshold=threshold,
                           compare=compare, button=button, status=status)


def _table() -> SimpleNamespace:
    """The filters, the page and the table of scored images."""
    with gr.Row():
        decision_filter = gr.Dropdown(DECISION_FILTERS, value=ANY, label="Decision", elem_id="review-filter")
        prompt_filter = gr.Dropdown([], label="Prompt", info="synonyms: in the image's detail below",
                                    elem_id="review-prompt-filter")
        iou_min = gr.Number(0.0, minimum=0, maximum=1, step=0.05, label="IoU from")
        iou_max = gr.Number(1.0, minimum=0, maximum=1, step=0.05, label="IoU to")
        page = gr.Number(1, precision=0, minimum=1, label="Page", elem_id="review-page")
    page_line = gr.Markdown(elem_id="review-page-line")
    table = gr.Dataframe(headers=columns(None), interactive=False, max_height=320, elem_id="review-table")
    return SimpleNamespace(decision_filter=decision_filter, prompt_filter=prompt_filter, iou_min=iou_min,
                           iou_max=iou_max, page=page, page_line=page_line, table=table)


def _image_view() -> SimpleNamespace:
    """The chosen image's four pictures, its decision, comment and every prompt's scores."""
    shown_line = gr.Markdown(elem_id="review-shown")
    with gr.Row(equal_height=True):
        shown = [gr.Image(label=label, interactive=False, format="png", height=260, elem_id=f"review-{key}")
                 for label, key in [("Input", "input"), ("Ground truth", "truth"), ("Prediction", "prediction"),
                                    ("Errors", "errors")]]
    gr.HTML(error_legend())
    with gr.Row():
        image = gr.Textbox(label="Image", interactive=False, scale=1, elem_id="review-image")
        prompt = gr.Textbox(label="Prompt", interactive=False, scale=1, elem_id="review-prompt")
        decision = gr.Radio([(f"{n} · {label}", key) for n, (key, label) in enumerate(LABELS.items(), 1)],
                            label="Decision (saved when picked)", scale=3, elem_id=DECISION_ID)
        after = gr.Button("Next undecided (n)", scale=1, elem_id=NEXT_ID)
    with gr.Row():
        comment = gr.Textbox("", label="Comment", scale=3, max_lines=3, elem_id="review-comment")
        reviewer = gr.Textbox("", label="Reviewer", scale=1, elem_id="review-reviewer")
        save = gr.Button("Save comment", scale=1, elem_id="review-save")
    gr.HTML(KEYS_HELP)
    with gr.Accordion("Every prompt of this image", open=False):
        detail = gr.Dataframe(interactive=False, elem_id="review-detail")
    return SimpleNamespace(shown_line=shown_line, shown=shown, image=image, prompt=prompt, decision=decision,
                           after=after, comment=comment, reviewer=reviewer, save=save, detail=detail)


def _fix_box() -> SimpleNamespace:
    """The ground-truth editor: take the prediction, or brush from the truth or from the prediction."""
    with gr.Accordion("Fix the ground truth", open=False, elem_id="review-fix"):
        gr.Markdown(FIX_HELP)
        with gr.Row():
            use_prediction = gr.Button("Use the prediction as ground truth", elem_id="review-use-prediction")
            from_truth = gr.Button("Edit, starting from the ground truth", elem_id="review-edit-truth")
            from_prediction = gr.Button("Edit, starting from the prediction", elem_id="review-edit-prediction")
        brush = gr.Brush(colors=[(ADD, BRUSH_OPACITY), (REMOVE, BRUSH_OPACITY)], default_color=(ADD, BRUSH_OPACITY))
        editor = raw_editor(gr.ImageEditor(label="Ground truth: pink brush adds, blue brush removes, eraser takes "
                                           "strokes back", type="filepath", sources=[], transforms=(), layers=False,
                                           height=420, brush=brush, interactive=True, elem_id="review-editor"))
        start = gr.State(TRUTH)
        save_edit = gr.Button("Save edited ground truth", elem_id="review-save-edit")
    return SimpleNamespace(use_prediction=use_prediction, from_truth=from_truth, from_prediction=from_prediction,
                           editor=editor, start=start, save_edit=save_edit)


def _export_row() -> SimpleNamespace:
    """Export the corrected split; the decisions file and the exported files."""
    with gr.Row():
        export = gr.Button("Export corrected split", elem_id="review-export", scale=1)
        review_file = gr.File(label="Decisions (JSON)", interactive=False, scale=2)
        exported = gr.File(label="Exported split: annotations and decisions.csv", file_count="multiple",
                           interactive=False, scale=2, elem_id="review-exported")
    return SimpleNamespace(export=export, review_file=review_file, exported=exported)


def _wire(tab: ReviewCallbacks, model_key: gr.State, c: SimpleNamespace) -> None:
    """Connect the components ``c`` to the tab's callbacks."""
    row = {"session": c.session, "image": c.image, "prompt": c.prompt}
    view = {"decision": c.decision_filter, "prompt": c.prompt_filter, "iou_min": c.iou_min, "iou_max": c.iou_max,
            "page": c.page}
    shown_outputs = Shown(c.shown_line, *c.shown, c.image, c.prompt, c.decision, c.comment, c.detail, c.editor)
    saved_outputs = Saved(c.status, c.table, c.page_line, c.review_file, c.decision)
    decided = named_inputs(row=row, decision=c.decision, comment=c.comment, reviewer=c.reviewer, view=view)

    c.split.change(lambda value: split_prompts(value, tab.roots) or gr.skip(), c.split, c.selected,
                   api_visibility="private")
    bound_image_limit(c.split, c.limit, tab.roots, tab.max_images)
    score = named_inputs(model=model_key, split=c.split, selected=c.selected, typed=c.typed, tuned=c.tuned,
                         threshold=c.threshold, limit=c.limit, compare=c.compare)
    c.button.click(handler(tab.score, ScoreForm), inputs_kwargs=score,
                   outputs=Scored(c.status, c.table, c.page_line, c.session, c.review_file, c.decision_filter,
                                  c.prompt_filter, c.iou_min, c.iou_max, c.page),
                   concurrency_id="batch", concurrency_limit=tab.lane.capacity + 1, show_progress_on=c.table,
                   api_name="score_split")
    gr.on([c.decision_filter.input, c.prompt_filter.input, c.iou_min.input, c.iou_max.input, c.page.input],
          handler(tab.view, MoveForm), inputs_kwargs=named_inputs(row=row, view=view),
          outputs=Viewed(c.status, c.table, c.page_line), trigger_mode="always_last", api_visibility="private")
    c.table.select(tab.select, c.session, shown_outputs, concurrency_id="model", api_visibility="private")
    c.after.click(handler(tab.next_undecided, MoveForm), inputs_kwargs=named_inputs(row=row, view=view),
                  outputs=shown_outputs, concurrency_id="model", api_name="next_undecided")
    c.decision.input(handler(tab.decide, DecisionForm), inputs_kwargs=decided, outputs=saved_outputs,
                     api_name="save_review")
    c.save.click(handler(tab.decide, DecisionForm), inputs_kwargs=decided, outputs=saved_outputs,
                 api_visibility="private")
    for trigger, source, editor_input in [(c.use_prediction, PREDICTION, None), (c.save_edit, EDITED, c.editor)]:
        trigger.click(handler(tab.correct, CorrectionForm),
                      inputs_kwargs={**decided, **named_inputs(source=gr.State(source), start=c.start,
                                                               editor=editor_input or gr.State(None))},
                      outputs=saved_outputs, concurrency_id="model", api_visibility="private")
    for trigger, source in [(c.from_truth, TRUTH), (c.from_prediction, PREDICTION)]:
        trigger.click(handler(tab.edit, EditForm),
                      inputs_kwargs=named_inputs(row=row, view=view, source=gr.State(source)),
                      outputs=Edited(c.status, c.editor, c.start), concurrency_id="model", api_visibility="private")
    c.export.click(tab.export, c.session, Exported(c.status, c.exported, c.split), concurrency_id="batch",
                   api_name="export_corrected")
