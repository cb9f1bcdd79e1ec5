"""Inspect tab: one photo, several prompts → coloured overlay with legend (coverage and presence per prompt), a
mask per prompt, downloads, and optionally a semantic map (one label per pixel). An example image with the object
marked can prompt too (the "Visual prompt" box, :mod:`drywall_qa.ui.visual_box`).

Each run is kept compact (the photo at display size, each probability map as 8-bit at the input size) in a
:class:`~drywall_qa.ui.result_store.ResultStore` shared by all sessions, and the session's ``gr.State`` holds its key;
moving the threshold or opacity, or ticking the semantic map, re-renders from it without running the model again.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import gradio as gr
import numpy as np
import torch
from PIL import Image

from drywall_qa.imaging import load_image
from drywall_qa.presence import describe_presence
from drywall_qa.segmenter import Prediction, borrowed_settings_note, unknown_concept_note
from drywall_qa.semantic import render_semantic, semantic_map
from drywall_qa.shapes import PIXELS, threshold_mask
from drywall_qa.ui.exports import scratch_dir, write_downloads
from drywall_qa.ui.messages import escape_md, guarded
from drywall_qa.ui.models import ModelCache
from drywall_qa.ui.prompts import parse_prompts
from drywall_qa.ui.result_store import ResultStore
from drywall_qa.ui.visual_box import OFF, VisualBox, is_on, with_example
from drywall_qa.ui.widgets import for_display, prompt_inputs, threshold_inputs, threshold_value
from drywall_qa.visual_prompts import STEPS
from drywall_qa.visualisation import RGB, outlines, overlay, palette

DEFAULT_PROMPTS = ("segment crack", "segment taping area")
#: background of the per-prompt mask tiles
MASK_BACKGROUND: RGB = (24, 24, 24)
#: how long a session keeps the key of its last run (the run itself may be dropped earlier to save memory)
STATE_TTL_S = 3600
#: the legend's presence words for a prompt of a concept the model was not trained on (its mask is still drawn:
#: the concept check is a text similarity, wrong about one prompt in 25 near its bar, so hiding masks would hide
#: correct ones too; the status line says why it is unreliable)
UNRELIABLE = "unknown concept: unreliable"
#: shown instead of a re-render when the session's run is no longer kept
DROPPED = ("This run is not kept for re-rendering (released for newer runs, or too large for the server's memory "
           "budget): press <b>Segment</b> again.")


def raw_upload(component: gr.Image) -> gr.Image:
    """Make ``component`` hand the uploaded file's path to callbacks without decoding it, so a broken upload reaches
    :func:`drywall_qa.imaging.load_image` and gets its message instead of gradio's bare error. (An instance attribute,
    not a subclass: gradio writes a ``.pyi`` next to the module of every component subclass it sees.)"""
    component.preprocess = lambda payload: None if payload is None else payload.path
    return component


@dataclass
class InspectResult:
    """What one run keeps for re-rendering: the image (any size up to the input's), its prompts and their
    probability maps at the input size (float in [0, 1], or uint8 in [0, 255] once :meth:`compact`)."""

    image: np.ndarray
    name: str
    model: str
    prompts: list[str]
    probabilities: list[np.ndarray]
    tuned_thresholds: list[float]
    latency_ms: float
    #: presence probability per prompt (threshold-independent)
    presence: list[float]
    #: output shape per prompt (:mod:`drywall_qa.shapes`); empty: pixels
    shapes: list[str] = field(default_factory=list)
    #: whether each prompt's presence went through a calibration the checkpoint holds; empty: none did
    calibrated: list[bool] = field(default_factory=list)
    #: whether each prompt is far from every concept the model was trained on; empty: none is
    unknown: list[bool] = field(default_factory=list)

    def thresholds(self, threshold: float | None) -> list[float]:
        return list(self.tuned_thresholds) if threshold is None else [threshold] * len(self.prompts)

    def masks(self, threshold: float | None) -> list[np.ndarray]:
        """Each prompt's mask at its tuned threshold (``threshold`` None) or at ``threshold``, in its shape."""
        shapes = self.shapes or [PIXELS] * len(self.prompts)
        return [threshold_mask(p, t * 255 if p.dtype == np.uint8 else t, shape)
                for p, t, shape in zip(self.probabilities, self.thresholds(threshold), shapes)]

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the input image."""
        return self.probabilities[0].shape

    def compact(self) -> InspectResult:
        """The same run in a quarter of the memory or less: the image at display size, 8-bit probabilities (masks
        then match the float ones within 1/255 of the threshold)."""
        small, _ = for_display(self.image, [])
        return replace(self, image=small, probabilities=[
            p if p.dtype == np.uint8 else np.rint(np.clip(p, 0, 1) * 255).astype(np.uint8)
            for p in self.probabilities])

    def verdicts(self, coverages: Sequence[float]) -> list[str]:
        """Each prompt's presence in words, agreeing with its mask's ``coverages`` (see
        :func:`~drywall_qa.presence.describe_presence`); "unreliable" for a prompt of an unknown concept."""
        calibrated = self.calibrated or [False] * len(self.prompts)
        unknown = self.unknown or [False] * len(self.prompts)
        return [UNRELIABLE if strange else describe_presence(p, c, found=coverage > 0)
                for p, c, strange, coverage in zip(self.presence, calibrated, unknown, coverages)]

    def nbytes(self) -> int:
        return self.image.nbytes + sum(p.nbytes for p in self.probabilities)


def coverage_text(coverage: float) -> str:
    """``'2.31 %'``, ``'<0.01 %'`` for a few pixels, ``'not found'`` for an empty mask."""
    if coverage <= 0:
        return "not found"
    return "<0.01 %" if coverage < 1e-4 else f"{100 * coverage:.2f} %"


def legend_html(prompts: Sequence[str], colors: Sequence[RGB], coverages: Sequence[float],
                thresholds: Sequence[float], presence: Sequence[str]) -> str:
    """Colour swatch, prompt, coverage, threshold and presence verdict per prompt (prompt text escaped)."""
    items = []
    for prompt, color, coverage, threshold, verdict in zip(prompts, colors, coverages, thresholds, presence):
        found = "dq-found" if coverage > 0 else "dq-missing"
        items.append(
            f'<li class="dq-item {found}"><span class="dq-swatch" style="background:rgb{tuple(color)}"></span>'
            f'<b>{html.escape(prompt)}</b> <span class="dq-coverage">{coverage_text(coverage)}</span> '
            f'<small>threshold {threshold:.2f}</small> <small class="dq-presence">{html.escape(verdict)}</small>'
            '</li>')
    return f'<ul class="dq-legend">{"".join(items)}</ul>'


def mask_tile(mask: np.ndarray, color: RGB) -> Image.Image:
    """The mask alone: its colour on a dark background, as a two-colour palette image (its PNG encodes ~8× faster
    than an RGB array's, which was a sixth of the server's CPU per request under load)."""
    tile = Image.fromarray(np.asarray(mask, np.uint8))
    tile.putpalette([*MASK_BACKGROUND, *color])
    return tile


def semantic_picture(result: InspectResult, threshold: float | None, opacity: float) -> np.ndarray:
    """The run's semantic map (each pixel: the most probable prompt whose mask holds it) at display size, with a
    legend; ``threshold`` None uses the tuned thresholds."""
    predictions = [Prediction(prompt, p, mask, torch.empty(0), t) for prompt, p, mask, t in
                   zip(result.prompts, result.probabilities, result.masks(threshold), result.thresholds(threshold))]
    labels = semantic_map(predictions)
    small, masks = for_display(result.image, [labels == k for k in range(1, len(predictions) + 1)])
    small_labels = np.zeros(small.shape[:2], np.uint8)
    for k, mask in enumerate(masks, start=1):
        small_labels[mask] = k
    return render_semantic(small, small_labels, result.prompts, alpha=float(opacity))


class InspectTab:
    """Callbacks (plain functions of plain values, so tests call them directly) and the tab's layout."""

    def __init__(self, models: ModelCache, examples: Sequence[str], roots: Sequence[Path] = (),
                 results: ResultStore | None = None) -> None:
        self.models, self.examples = models, list(examples)
        self.visual = VisualBox(models, roots)
        self.results = ResultStore() if results is None else results

    @guarded(outputs=5)
    def run(self, key: str | None, image: str | bytes | None, selected: Sequence[str] | None, typed: str | None,
            tuned: bool, threshold: float, opacity: float, example: str = OFF, example_image: dict | None = None,
            example_split: str | None = None, example_index: float = 0, engineering: Sequence[str] = STEPS,
            alpha: float = 1.0, mix_text: str | None = None, outline: bool = False) -> tuple:
        """``(status, overlay, legend, masks, downloads, result key)``; ``example`` … ``mix_text``: the visual prompt
        (see :meth:`VisualBox.prompt`; ``example`` "off" by default); ``outline`` draws mask boundaries only."""
        if image is None:
            return "Upload a photo or click an example first.", None, None, None, None, None
        name = Path(image).name if isinstance(image, str) else "image"
        array = load_image(image, name=name)
        texts, notes = parse_prompts(selected, typed, required=not is_on(example))
        visual = self.visual.prompt(example, example_image, example_split, example_index, engineering, alpha,
                                    mix_text, fallback_text=texts[0] if texts else None)
        model = self.models.get(key)
        conditions, skipped = with_example(model, texts, visual)
        notes += skipped + model.prompt_notes(texts)
        start = time.perf_counter()
        predictions = model.predict(array, conditions)
        latency_ms = 1000 * (time.perf_counter() - start)
        notes += [borrowed_settings_note(p) for p in predictions if p.borrowed_settings]
        notes += [unknown_concept_note(p, model.family) for p in predictions if p.unknown_concept]
        prompts = [p.prompt for p in predictions]
        result = InspectResult(array, Path(name).stem, model.name, prompts,
                               [p.probabilities for p in predictions], [p.threshold for p in predictions],
                               latency_ms, [p.presence for p in predictions], [p.shape for p in predictions],
                               [model.presence_calibrated(p) for p in predictions],
                               [p.unknown_concept for p in predictions]).compact()
        height, width = result.size
        del predictions, array                  # the full-size float maps: only the compact run is kept
        status = (f"{len(prompts)} prompt{'s' * (len(prompts) > 1)} on {escape_md(name)} "
                  f"({width}×{height}) in **{latency_ms:.0f} ms** · {escape_md(model.name)}")
        if notes:
            status += " · " + escape_md("; ".join(notes))
        return (status, *self._render(result, threshold_value(tuned, threshold), opacity, outline),
                self.results.put(result))

    def example(self, index: int | None) -> str | None:
        """The clicked example's path (None for an index that is not one)."""
        return self.examples[index] if isinstance(index, int) and 0 <= index < len(self.examples) else None

    def set_threshold(self, key: str | None, threshold: float, opacity: float, outline: bool = False) -> tuple:
        """The slider was moved: untick "tuned thresholds" and re-render with the slider's value."""
        return (False, *self.rerender(key, False, threshold, opacity, outline))

    def rerender(self, key: str | None, tuned: bool, threshold: float, opacity: float,
                 outline: bool = False) -> tuple:
        """``(overlay, legend, masks, downloads)`` for new threshold/opacity, from the kept probabilities; a note in
        the legend when the run was released."""
        if key is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        result = self.results.get(key)
        if result is None:
            return gr.skip(), DROPPED, gr.skip(), gr.skip()
        return self._render(result, threshold_value(tuned, threshold), opacity, outline)

    def semantic(self, key: str | None, show: bool, tuned: bool, threshold: float, opacity: float) -> dict:
        """The semantic-map image, shown while ``show`` is ticked (from the kept probabilities)."""
        result = self.results.get(key) if show else None
        if result is None:
            return gr.update(visible=bool(show), value=None)
        return gr.update(visible=True, value=semantic_picture(result, threshold_value(tuned, threshold), opacity))

    @staticmethod
    def _render(result: InspectResult, threshold: float | None, opacity: float, outline: bool = False) -> tuple:
        thresholds, masks = result.thresholds(threshold), result.masks(threshold)
        colors = palette(len(masks))
        coverages = [float(m.mean()) for m in masks]
        small, small_masks = for_display(result.image, masks)
        tiles = [(mask_tile(m, c), f"{p} · {coverage_text(v)}")
                 for m, c, p, v in zip(small_masks, colors, result.prompts, coverages)]
        files = write_downloads(scratch_dir(), result.name, result.model, result.prompts, thresholds, masks)
        drawn = outlines(small_masks) if outline else small_masks
        return (overlay(small, drawn, colors, alpha=max(float(opacity), 0.8) if outline else float(opacity)),
                legend_html(result.prompts, colors, coverages, thresholds, result.verdicts(coverages)), tiles,
                [str(f) for f in files])

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
        inputs = [model_key, image, selected, typed, tuned, threshold, opacity, *visual, outline]
        outputs = [status, shown, legend, masks, files, result]
        quiet = {"show_progress": "hidden", "trigger_mode": "always_last", "api_visibility": "private"}
        show_semantic = (self.semantic, [result, semantic, tuned, threshold, opacity], semantic_shown)
        gr.on([button.click, typed.submit], self.run, inputs, outputs, concurrency_id="model",
              api_name="segment").then(*show_semantic, **quiet)
        view = [result, tuned, threshold, opacity, outline]
        # a plain value, not gr.Examples' prop update: that would replace the photo box with a fresh gr.Image for
        # the session, without the raw_upload hook, and later uploads would skip load_image
        examples.click(self.example, examples, image, **quiet)
        # input, not release: typing a value + Enter and arrow keys fire input only
        gr.on([tuned.input, opacity.input, outline.input], self.rerender, view, [shown, legend, masks, files], **quiet)
        gr.on([semantic.input, tuned.input, opacity.input], *show_semantic, **quiet)
        threshold.input(self.set_threshold, [result, threshold, opacity, outline], [tuned, shown, legend, masks, files],
                        **quiet).then(*show_semantic, **quiet)
