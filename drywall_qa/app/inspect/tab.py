"""Inspect tab: one photo, several prompts → coloured overlay with legend (coverage and presence per prompt), a
mask per prompt, downloads, and optionally a semantic map (one label per pixel). An example image with the object
marked can prompt too (the "Visual prompt" box, :mod:`drywall_qa.app.inspect.visual_box`).

Each run is kept compact (the photo at display size, each probability map as 8-bit at the input size) in a
:class:`~drywall_qa.serving.result_store.ResultStore` shared by all sessions, and the session's ``gr.State`` holds its
key; moving the threshold or opacity, or ticking the semantic map, re-renders from it without running the model again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import numpy as np

from drywall_qa.app.forms import handler, named_inputs
from drywall_qa.app.inspect.views import InspectResult, Rendered, render, semantic_picture
from drywall_qa.app.inspect.visual_box import VisualBox, VisualForm, is_on, with_example
from drywall_qa.app.messages import escape_md, guarded
from drywall_qa.app.models import ModelCache
from drywall_qa.app.prompts import parse_prompts
from drywall_qa.app.widgets import prompt_inputs, threshold_inputs, threshold_value
from drywall_qa.core.backends.feature_cache import FeatureCache
from drywall_qa.core.imaging import load_image
from drywall_qa.core.segmenter import Prediction
from drywall_qa.core.tiling import TILING_MODES
from drywall_qa.serving.clients import client_address
from drywall_qa.serving.result_store import ResultStore
from drywall_qa.serving.scheduler import Caller, Priority, acting_for

DEFAULT_PROMPTS = ("segment crack", "segment taping area")
#: how long a session keeps the key of its last run (the run itself may be dropped earlier to save memory)
STATE_TTL_S = 3600
#: Segment requests inside their callback at once: their model work takes turns unit by unit, so more of them cost
#: only their photos' memory, and small requests get in beside two large ones (one predicting, one waiting for it)
IN_CALLBACK = 4
#: shown instead of a re-render when the session's run is no longer kept
DROPPED = ("This run is not kept for re-rendering (released for newer runs, or too large for the server's memory "
           "budget): press <b>Segment</b> again.")


def raw_upload(component: gr.Image) -> gr.Image:
    """Make ``component`` hand the uploaded file's path to callbacks without decoding it, so a broken upload reaches
    :func:`drywall_qa.core.imaging.load_image` and gets its message instead of gradio's bare error. (An instance
    attribute, not a subclass: gradio writes a ``.pyi`` next to the module of every component subclass it sees.)"""
    component.preprocess = lambda payload: None if payload is None else payload.path
    return component


@dataclass
class InspectForm:
    """The controls a Segment press reads."""

    #: the model box's cache key
    model: str | None = None
    #: the photo: a file path (:func:`raw_upload`) or bytes
    image: str | bytes | None = None
    #: ticked prompts, and more typed comma-separated
    selected: Sequence[str] | None = DEFAULT_PROMPTS
    typed: str | None = None
    #: whether the model's tuned per-prompt thresholds are used instead of ``threshold``
    tuned: bool = True
    threshold: float = 0.5
    opacity: float = 0.5
    #: the visual prompt (off by default)
    example: VisualForm = field(default_factory=VisualForm)
    #: draw mask borders only
    outline: bool = False
    #: ``auto`` (each prompt's scale policy), ``off`` (whole photo) or ``on`` (windows): see
    #: :mod:`drywall_qa.core.tiling`
    tiling: str = "auto"
    #: the session's last run (its key in the result store), whose encoded photo a run on the same photo reuses
    result: str | None = None


@dataclass
class ViewForm:
    """The controls that re-draw a kept run."""

    #: the run's key in the result store
    result: str | None = None
    tuned: bool = True
    threshold: float = 0.5
    opacity: float = 0.5
    outline: bool = False
    #: whether the semantic map is shown
    semantic: bool = False


class Segmented(NamedTuple):
    """A Segment press's outputs: the status line, the drawn run and its key in the result store."""

    status: str
    overlay: Any
    legend: Any
    masks: Any
    downloads: Any
    result: str | None


class InspectTab:
    """Callbacks (plain functions of plain values, so tests call them directly) and the tab's layout."""

    def __init__(self, models: ModelCache, examples: Sequence[str], roots: Sequence[Path] = (),
                 results: ResultStore | None = None) -> None:
        self.models, self.examples = models, list(examples)
        self.visual = VisualBox(models, roots)
        self.results = ResultStore() if results is None else results

    @guarded(Segmented)
    def run(self, form: InspectForm, request: gr.Request | None = None,
            progress: gr.Progress = gr.Progress()) -> Segmented:
        """Segment the form's photo with its prompts (and example), keep the run for re-rendering and draw it; the
        bar follows the windows of a tiled prediction. The model work is done for the request's client, at
        interactive priority."""
        if form.image is None:
            return Segmented("Upload a photo or click an example first.", None, None, None, None, None)
        name = Path(form.image).name if isinstance(form.image, str) else "image"
        array = load_image(form.image, name=name)
        texts, notes = parse_prompts(form.selected, form.typed, required=not is_on(form.example.source))
        visual = self.visual.prompt(form.example, fallback_text=texts[0] if texts else None)
        model = self.models.get(form.model)
        conditions, skipped = with_example(model, texts, visual)
        notes += skipped
        features = self.photo_features(form.result, (model.key, id(model.segmenter), _digest(array)))
        hits, start = features.hits, time.perf_counter()
        with acting_for(Caller(client_address(request), Priority.INTERACTIVE)):
            predictions = model.predict(array, conditions, tiling=form.tiling, features=features,
                                        progress=lambda done, total: progress((done, total), desc="Windows"))
        latency_ms = 1000 * (time.perf_counter() - start)
        notes += predictions.notes()
        if features.hits > hits:
            notes.append("photo already encoded: its features were reused")
        prompts, views = [p.prompt for p in predictions], _views(predictions)
        result = InspectResult(array, Path(name).stem, model.name, prompts,
                               [p.probabilities for p in predictions], [p.threshold for p in predictions],
                               latency_ms, [p.presence for p in predictions], [p.shape for p in predictions],
                               [p.presence_calibrated for p in predictions],
                               [p.unknown_concept for p in predictions])
        del predictions, array                 # the full-size masks and float maps: only the compact run is kept
        result = result.compact(release=True)
        result.features = self._keep(features, result.nbytes())
        height, width = result.size
        status = (f"{len(prompts)} prompt{'s' * (len(prompts) > 1)} on {escape_md(name)} "
                  f"({width}×{height}) in **{latency_ms:.0f} ms** · {escape_md(views)} · {escape_md(model.name)}")
        if notes:
            status += " · " + escape_md("; ".join(notes))
        drawn = render(result, threshold_value(form.tuned, form.threshold), form.opacity, form.outline)
        return Segmented(status, *drawn, self.results.put(result))

    def photo_features(self, last_run: str | None, identity: tuple) -> FeatureCache:
        """The encoded views of the session's last photo when ``identity`` (the loaded model, the photo's digest)
        matches, else a new cache holding at most half the result store's budget (the rest keeps the runs)."""
        last = self.results.get(last_run)
        kept = self.results.get(last.features) if last is not None and last.features else None
        if isinstance(kept, FeatureCache) and kept.belongs_to(identity):
            return kept
        return FeatureCache(identity, budget=self.results.budget // 2)

    def _keep(self, features: FeatureCache, run_bytes: int) -> str | None:
        """Put ``features`` in the result store (again, under its key, once it has grown) where they and the run of
        ``run_bytes`` fit its budget together (features without their run could not be found again); returns their
        key, None when not kept."""
        if not len(features) or features.nbytes() + run_bytes > self.results.budget:
            return None
        features.key = self.results.put(features, features.key)
        return features.key

    def example(self, index: int | None) -> str | None:
        """The clicked example's path (None for an index that is not one)."""
        return self.examples[index] if isinstance(index, int) and 0 <= index < len(self.examples) else None

    def set_threshold(self, view: ViewForm) -> tuple:
        """The slider was moved: ``(tuned, *rendered)``, unticking "tuned thresholds" to re-render with the
        slider's value."""
        return (False, *self.rerender(replace(view, tuned=False)))

    def rerender(self, view: ViewForm) -> Rendered:
        """The kept run drawn as ``view`` says; a note in the legend when the run was released."""
        if view.result is None:
            return Rendered(gr.skip(), gr.skip(), gr.skip(), gr.skip())
        result = self.results.get(view.result)
        if result is None:
            return Rendered(gr.skip(), DROPPED, gr.skip(), gr.skip())
        return render(result, threshold_value(view.tuned, view.threshold), view.opacity, view.outline)

    def semantic(self, view: ViewForm) -> dict:
        """The semantic-map image, shown while ``view.semantic`` is ticked (from the kept probabilities)."""
        result = self.results.get(view.result) if view.semantic else None
        if result is None:
            return gr.update(visible=bool(view.semantic), value=None)
        return gr.update(visible=True, value=semantic_picture(result, threshold_value(view.tuned, view.threshold),
                                                              view.opacity))

    def build(self, model_key: gr.State) -> None:
        """Lay out the tab and wire its events (inside a ``gr.Blocks`` context)."""
        with gr.Row():
            with gr.Column(scale=2):
                image = raw_upload(gr.Image(label="Photo", type="filepath", sources=["upload", "clipboard"],
                                            height=260, elem_id="inspect-image"))
                # right under the photo: above the fold at 1280×800 (the ticked prompts are the defaults)
                button = gr.Button("Segment", variant="primary", elem_id="inspect-run")
                selected, typed = prompt_inputs(DEFAULT_PROMPTS)
                tuned, threshold = threshold_inputs("inspect-threshold")
                with gr.Row():
                    opacity = gr.Slider(0, 1, 0.5, step=0.05, label="Overlay opacity", scale=2)
                    outline = gr.Checkbox(False, label="Outlines", elem_id="inspect-outline",
                                          info="borders only: overlaps stay visible", scale=1)
                    semantic = gr.Checkbox(False, label="Semantic map", elem_id="inspect-semantic-toggle",
                                           info="one prompt per pixel", scale=1)
                tiling = gr.Radio(list(TILING_MODES), value="auto", label="Tiling", elem_id="inspect-tiling",
                                  info="auto: each prompt's tuned view · off: whole photo · on: overlapping windows "
                                  "at the training scale (large photos, thin cracks)")
                visual = self.visual.build(model_key)
                examples = gr.Dataset(components=[image], samples=[[e] for e in self.examples], type="index",
                                      label="Examples", samples_per_page=8, visible=bool(self.examples),
                                      elem_id="inspect-examples")
            with gr.Column(scale=3):
                status = gr.Markdown(elem_id="inspect-status")
                legend = gr.HTML(elem_id="inspect-legend")
                # JPEG: a photo-like overlay costs ~70 ms and ~800 KB per request as PNG, ~2 ms and ~130 KB as JPEG
                shown = gr.Image(label="Overlay", format="jpeg", interactive=False, elem_id="inspect-overlay",
                                 height=420)
                semantic_shown = gr.Image(label="Semantic map", format="png", interactive=False, visible=False,
                                          elem_id="inspect-semantic", height=420)
                masks = gr.Gallery(label="Mask per prompt", format="png", columns=4,
                                   object_fit="contain", elem_id="inspect-masks")
                files = gr.File(label="Downloads: masks (PNG, 0/255) and JSON (coverage, COCO RLE)",
                                file_count="multiple", interactive=False, elem_id="inspect-files")
        result = gr.State(None, time_to_live=STATE_TTL_S)
        view = {"inputs_kwargs": named_inputs(result=result, tuned=tuned, threshold=threshold, opacity=opacity,
                                              outline=outline, semantic=semantic)}
        rendered = Rendered(shown, legend, masks, files)
        quiet = {"show_progress": "hidden", "trigger_mode": "always_last", "api_visibility": "private"}
        show_semantic = {"fn": handler(self.semantic, ViewForm), "outputs": semantic_shown, **view, **quiet}
        form = named_inputs(model=model_key, image=image, selected=selected, typed=typed, tuned=tuned,
                            threshold=threshold, opacity=opacity, example=visual, outline=outline, tiling=tiling,
                            result=result)
        gr.on([button.click, typed.submit], handler(self.run, InspectForm), inputs_kwargs=form,
              outputs=Segmented(status, *rendered, result), concurrency_id="model", show_progress_on=shown,
              concurrency_limit=IN_CALLBACK,
              api_name="segment").then(**show_semantic)
        # a plain value, not gr.Examples' prop update: that would replace the photo box with a fresh gr.Image for
        # the session, without the raw_upload hook, and later uploads would skip load_image
        examples.click(self.example, examples, image, **quiet)
        # input, not release: typing a value + Enter and arrow keys fire input only
        gr.on([tuned.input, opacity.input, outline.input], handler(self.rerender, ViewForm), outputs=rendered,
              **view, **quiet)
        gr.on([semantic.input, tuned.input, opacity.input], **show_semantic)
        threshold.input(handler(self.set_threshold, ViewForm), outputs=[tuned, *rendered], **view,
                        **quiet).then(**show_semantic)


def _views(predictions: Sequence[Prediction]) -> str:
    """Which views ran: one description when all prompts share it, else one per prompt."""
    views = list(dict.fromkeys(p.view for p in predictions))
    return views[0] if len(views) == 1 else "; ".join(f"{p.prompt}: {p.view}" for p in predictions)


def _digest(image: np.ndarray) -> str:
    """A fingerprint of the photo's pixels."""
    return f"{image.shape}:{hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).hexdigest()}"
