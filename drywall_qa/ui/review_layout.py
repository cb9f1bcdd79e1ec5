"""The Review tab's layout and events: scoring controls, the filtered and paged table, the image panels, the
decision controls (keys 1–4 and n, :mod:`drywall_qa.ui.review_keys`), the ground-truth editor and the export."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from drywall_qa.core.visualisation import FN_COLOR, FP_COLOR, TP_COLOR
from drywall_qa.ui.forms import handler, named_inputs
from drywall_qa.ui.review_fix import ADD, BRUSH_OPACITY, FIX_HELP, REMOVE
from drywall_qa.ui.review_forms import (
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
from drywall_qa.ui.review_keys import DECISION_ID, NEXT_ID
from drywall_qa.ui.review_table import ANY, DECISION_FILTERS, LABELS, columns
from drywall_qa.ui.splits import discover_splits, split_prompts
from drywall_qa.ui.visual_box import raw_editor
from drywall_qa.ui.widgets import bound_image_limit, image_limit_input, prompt_inputs, split_input, threshold_inputs

if TYPE_CHECKING:
    from drywall_qa.ui.review_tab import ReviewTab

KEYS_HELP = ("<small>Keys (outside text boxes): <b>1</b>–<b>4</b> decide · <b>n</b> next undecided · <b>Esc</b> "
             "leaves a text box</small>")


def error_legend() -> str:
    """The error map's colours, as drawn by :func:`drywall_qa.core.visualisation.error_map`."""
    items = [(TP_COLOR, "true positive"), (FP_COLOR, "false positive"), (FN_COLOR, "missed (false negative)")]
    swatches = " · ".join(f'<span style="color:rgb{color}">■</span> {name}' for color, name in items)
    return f"<small>Errors: {swatches}. Comparing two models: model A left, B right.</small>"


def build_review(tab: ReviewTab, model_key: gr.State) -> None:
    """Lay out ``tab`` and wire its events (inside a ``gr.Blocks`` context)."""
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
    with gr.Row():
        decision_filter = gr.Dropdown(DECISION_FILTERS, value=ANY, label="Decision", elem_id="review-filter")
        prompt_filter = gr.Dropdown([], label="Prompt", info="synonyms: in the image's detail below",
                                    elem_id="review-prompt-filter")
        iou_min = gr.Number(0.0, minimum=0, maximum=1, step=0.05, label="IoU from")
        iou_max = gr.Number(1.0, minimum=0, maximum=1, step=0.05, label="IoU to")
        page = gr.Number(1, precision=0, minimum=1, label="Page", elem_id="review-page")
    page_line = gr.Markdown(elem_id="review-page-line")
    table = gr.Dataframe(headers=columns(None), interactive=False, max_height=320, elem_id="review-table")
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
    with gr.Row():
        export = gr.Button("Export corrected split", elem_id="review-export", scale=1)
        review_file = gr.File(label="Decisions (JSON)", interactive=False, scale=2)
        exported = gr.File(label="Exported split: annotations and decisions.csv", file_count="multiple",
                           interactive=False, scale=2, elem_id="review-exported")
    session = gr.State(None)
    row = {"session": session, "image": image, "prompt": prompt}
    view = {"decision": decision_filter, "prompt": prompt_filter, "iou_min": iou_min, "iou_max": iou_max,
            "page": page}
    shown_outputs = Shown(shown_line, *shown, image, prompt, decision, comment, detail, editor)
    saved_outputs = Saved(status, table, page_line, review_file, decision)
    decided = named_inputs(row=row, decision=decision, comment=comment, reviewer=reviewer, view=view)

    split.change(lambda value: split_prompts(value, tab.roots) or gr.skip(), split, selected,
                 api_visibility="private")
    bound_image_limit(split, limit, tab.roots, tab.max_images)
    button.click(handler(tab.score, ScoreForm),
                 inputs_kwargs=named_inputs(model=model_key, split=split, selected=selected, typed=typed, tuned=tuned,
                                            threshold=threshold, limit=limit, compare=compare),
                 outputs=Scored(status, table, page_line, session, review_file, decision_filter, prompt_filter,
                                iou_min, iou_max, page),
                 concurrency_id="batch", concurrency_limit=tab.lane.capacity + 1, show_progress_on=table,
                 api_name="score_split")
    gr.on([decision_filter.input, prompt_filter.input, iou_min.input, iou_max.input, page.input],
          handler(tab.view, MoveForm), inputs_kwargs=named_inputs(row=row, view=view),
          outputs=Viewed(status, table, page_line), trigger_mode="always_last", api_visibility="private")
    table.select(tab.select, session, shown_outputs, concurrency_id="model",
                 api_visibility="private")
    after.click(handler(tab.next_undecided, MoveForm), inputs_kwargs=named_inputs(row=row, view=view),
                outputs=shown_outputs, concurrency_id="model", api_name="next_undecided")
    decision.input(handler(tab.decide, DecisionForm), inputs_kwargs=decided, outputs=saved_outputs,
                   api_name="save_review")
    save.click(handler(tab.decide, DecisionForm), inputs_kwargs=decided, outputs=saved_outputs,
               api_visibility="private")
    for trigger, source, editor_input in [(use_prediction, PREDICTION, None), (save_edit, EDITED, editor)]:
        trigger.click(handler(tab.correct, CorrectionForm),
                      inputs_kwargs={**decided, **named_inputs(source=gr.State(source), start=start,
                                                               editor=editor_input or gr.State(None))},
                      outputs=saved_outputs, concurrency_id="model", api_visibility="private")
    for trigger, source in [(from_truth, TRUTH), (from_prediction, PREDICTION)]:
        trigger.click(handler(tab.edit, EditForm),
                      inputs_kwargs=named_inputs(row=row, view=view, source=gr.State(source)),
                      outputs=Edited(status, editor, start), concurrency_id="model", api_visibility="private")
    export.click(tab.export, session, Exported(status, exported, split), concurrency_id="batch",
                 api_name="export_corrected")
