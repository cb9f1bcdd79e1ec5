"""Inspect's "Visual prompt" box: segment things like an example. The example is an image with the object marked —
painted in an image editor or taken from a dataset annotation — turned into a
:class:`~drywall_qa.core.visual_prompts.VisualPrompt` with the paper's prompt engineering (crop / blur / darken) and
an optional mix with a text prompt (α). Only the CLIPSeg backend reads example images; with another model the box
and the run's status say so instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import numpy as np

from drywall_qa.app.forms import handler, named_inputs
from drywall_qa.app.messages import error_message, escape_md, guarded
from drywall_qa.app.models import ModelCache, SharedModel
from drywall_qa.app.widgets import split_input
from drywall_qa.core.errors import InputError
from drywall_qa.core.imaging import load_image
from drywall_qa.core.visual_prompts import STEPS, VisualPrompt, load_mask
from drywall_qa.data.discovery import discover_splits, open_split, split_name

OFF, DRAWN, DATASET = "off", "drawn", "dataset"
SOURCES = [("Off", OFF), ("Paint over an example image", DRAWN), ("Annotated image of a split", DATASET)]
BRUSH = "#ff0066"
#: painted layers an example may have, and canvases uploaded but not yet used that the server keeps (all sessions)
MAX_LAYERS, MAX_PENDING_CANVASES = 4, 8
NEEDS_CLIPSEG = "need the CLIPSeg backend"
READY = ("Mark one example of what to look for: paint over it on an image, or take an annotated image of a split. "
         "It runs next to the ticked prompts and shows in the legend under its own name.")


@dataclass
class VisualForm:
    """The box's controls: where the example comes from, how it is engineered and what text is mixed in."""

    #: :data:`OFF`, :data:`DRAWN` or :data:`DATASET`
    source: str | None = OFF
    #: the image editor's value (:func:`raw_editor`): background and painted layers
    editor: dict[str, Any] | None = None
    #: the split of an annotated example, and the image's number in it
    split: str | None = None
    index: float | None = 0
    #: ticked engineering steps (of :data:`~drywall_qa.core.visual_prompts.STEPS`)
    steps: Sequence[str] | None = STEPS
    #: weight of the example against ``text``
    alpha: float = 1.0
    text: str | None = None


class Preview(NamedTuple):
    """What the box shows for its controls."""

    status: str
    image: np.ndarray | None


def is_on(source: str | None) -> bool:
    """Whether the box's source control asks for an example."""
    return source not in (None, OFF)


def engineering(steps: Sequence[str] | None) -> str:
    """Ticked engineering steps → ``"crop+blur+darken"`` form; :class:`InputError` when none is ticked."""
    chosen = [step for step in STEPS if step in (steps or [])]
    if not chosen:
        raise InputError("prompt engineering", "no step ticked", "tick crop, blur and/or darken (all three work best)")
    return "+".join(chosen)


def raw_editor(component: gr.ImageEditor) -> gr.ImageEditor:
    """Make ``component`` hand its files (paths, or bytes for canvas blobs) to callbacks undecoded, so every image
    goes through :func:`~drywall_qa.core.imaging.load_image`'s checks (pixel limit, formats) instead of gradio's
    decoder — and nothing is decoded while the visual prompt is off."""
    def undecoded(payload: Any) -> dict[str, Any] | None:
        if payload is None:
            return None
        blobs = component.blob_storage.pop(payload.id, None) if payload.id is not None else None
        source = blobs or payload
        return {"background": _file(source.background),
                "layers": [_file(layer) for layer in source.layers or [] if layer is not None],
                "composite": _file(source.composite)}
    component.preprocess = undecoded
    component.accept_blobs = bounded_blobs(component)
    return component


def _file(item: Any) -> str | bytes | None:
    """A path for an uploaded file, bytes for a canvas blob."""
    return item if item is None or isinstance(item, bytes) else item.path


def bounded_blobs(component: gr.ImageEditor) -> Callable[[Any], Any]:
    """The editor's canvas-upload endpoint with bounds: a layer index below :data:`MAX_LAYERS` (gradio grows a
    list up to any index a client sends) and at most :data:`MAX_PENDING_CANVASES` canvases waiting to be used
    (gradio keeps every one a client sends, under any id, until an event consumes it)."""
    accept = component.accept_blobs

    def bounded(data: Any) -> Any:
        index = str(data.data.get("index") or "null")
        if index != "null" and not (index.isdigit() and int(index) < MAX_LAYERS):
            raise gr.Error(f"layer index {index[:20]!r}: the editor has at most {MAX_LAYERS} layers")
        while len(component.blob_storage) >= MAX_PENDING_CANVASES:
            component.blob_storage.pop(next(iter(component.blob_storage)))
        return accept(data)

    bounded._is_server_fn = True  # type: ignore[attr-defined] — gradio serves only methods marked so
    return bounded


def editor_example(editor: dict[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """``(image, mask)`` from an image editor's value (files, bytes or arrays): its background and the union of its
    painted layers."""
    background = (editor or {}).get("background")
    if background is None:
        raise InputError("visual prompt", "no example image", "upload an example image and paint over the object")
    layers = editor.get("layers") or []
    if len(layers) > MAX_LAYERS:
        raise InputError("painted layers", f"{len(layers)} given, at most {MAX_LAYERS}", "paint on fewer layers")
    image = load_image(background, name="example image")
    mask = np.zeros(image.shape[:2], bool)
    for layer in layers:                              # one at a time: at most one decoded layer besides the mask
        painted = load_mask(layer, name="painted layer")
        if painted.shape != mask.shape:
            raise InputError("painted layer", f"is {painted.shape[1]}×{painted.shape[0]}, the example image "
                             f"{image.shape[1]}×{image.shape[0]}", "paint over the example image again")
        mask |= painted
    return image, mask


def with_example(model: SharedModel, prompts: list[str],
                 example: VisualPrompt | None) -> tuple[list[str | VisualPrompt], list[str]]:
    """``(conditions, notes)``: the text prompts plus the example when ``model`` can read it. A model without an
    image-prompt encoder skips it with a note; with no text prompt left that is an :class:`InputError`."""
    if example is None or example.label in prompts:
        return list(prompts), []
    if example.text_only or model.supports_visual_prompts:
        return [*prompts, example], []
    problem = f"visual prompts {NEEDS_CLIPSEG}; the {model.family} model cannot read example images"
    if not prompts:
        raise InputError("example image", problem, "choose CLIPSeg in the model box, or tick a text prompt")
    return list(prompts), [f"{problem}: the example was skipped"]


class VisualBox:
    """Callbacks (tests call them directly) and the accordion's layout."""

    def __init__(self, models: ModelCache, roots: Sequence[Path]) -> None:
        self.models, self.roots = models, list(roots)

    def prompt(self, form: VisualForm, fallback_text: str | None = None) -> VisualPrompt | None:
        """The example ``form`` describes (None when its source is off); its text mixed in by its alpha,
        ``fallback_text`` when the text is blank."""
        if not is_on(form.source):
            return None
        options = {"engineering": engineering(form.steps), "alpha": float(form.alpha),
                   "text": (form.text or "").strip() or fallback_text}
        if form.source == DRAWN:
            return VisualPrompt(*editor_example(form.editor), **options)
        split = open_split(form.split, self.roots)
        number = int(form.index or 0)
        if not 0 <= number < len(split):
            raise InputError(f"example image number {number}", f"is outside 0…{len(split) - 1} of "
                             f"{split_name(split)}", "pick an image number of the split")
        return VisualPrompt.from_split(split, number, **options)

    @guarded(Preview)
    def preview(self, form: VisualForm) -> Preview:
        """The engineered example the model will see, and how much of it is marked."""
        if form.source == DRAWN and (form.editor or {}).get("background") is None:
            return Preview("Upload an example image, then paint over the object with the brush.", None)
        example = self.prompt(form)
        if example is None:
            return Preview("", None)
        marked = example.mask.mean()
        return Preview(f"{escape_md(example.name or 'Example image')}: {100 * marked:.1f} % marked · "
                       f"{example.engineering}", example.support())

    def note(self, key: str | None) -> str:
        """What the loaded model makes of visual prompts."""
        try:
            model = self.models.get(key)
        except Exception as err:  # noqa: BLE001 — shown in the box
            return error_message(err)
        if model.supports_visual_prompts:
            return READY
        return (f"**Visual prompts {NEEDS_CLIPSEG}.** The loaded {escape_md(model.family)} model has no "
                "image-prompt encoder: choose *CLIPSeg* in the model box (or a CLIPSeg checkpoint folder). With "
                "α = 0 the text alone runs.")

    def build(self, model_key: gr.State) -> dict[str, gr.components.Component]:
        """Lay out the accordion; returns its controls, named as the fields of :class:`VisualForm`."""
        with gr.Accordion("Visual prompt: segment things like an example", open=False,
                          elem_id="visual-prompt") as box:
            note = gr.Markdown(READY, elem_id="visual-note")
            source = gr.Radio(SOURCES, value=OFF, label="Example", elem_id="visual-source")
            editor = raw_editor(gr.ImageEditor(label="Example image: paint over the object", type="filepath",
                                    sources=["upload", "clipboard"], transforms=(), layers=False, height=300,
                                    brush=gr.Brush(colors=[BRUSH], color_mode="fixed"), visible=False,
                                    elem_id="visual-editor"))
            with gr.Row(visible=False) as from_split:
                choices = discover_splits(self.roots)
                split = split_input(choices, "visual-split")
                index = gr.Number(0, precision=0, minimum=0, label="Image number", info="0 = the split's first")
            steps = gr.CheckboxGroup(list(STEPS), value=list(STEPS), label="Prompt engineering",
                                     info="crop to the object, blur and darken the rest (all three: the paper's best)")
            alpha = gr.Slider(0, 1, 1, step=0.05, label="α (weight of the example)",
                              info="conditioning c = α·example + (1−α)·text; 1 = the example alone")
            text = gr.Textbox(label="Text mixed in when α < 1", placeholder="default: the first prompt above")
            status = gr.Markdown(elem_id="visual-status")
            shown = gr.Image(label="Prompt image the model sees", interactive=False, format="png", height=180,
                             elem_id="visual-preview")
        source.change(lambda value: (gr.update(visible=value == DRAWN), gr.update(visible=value == DATASET)),
                      source, [editor, from_split], api_visibility="private")
        gr.on([box.expand, model_key.change], self.note, model_key, note, api_visibility="private")
        controls = {"source": source, "editor": editor, "split": split, "index": index, "steps": steps,
                    "alpha": alpha, "text": text}
        gr.on([source.change, editor.change, split.change, index.change, steps.change],
              handler(self.preview, VisualForm), inputs_kwargs=named_inputs(**controls),
              outputs=Preview(status, shown), trigger_mode="always_last", show_progress="hidden",
              api_visibility="private")
        return controls
