"""Set a job's scale (mm per pixel) by drawing along something of known length on one photo: a tape measure, a
board edge (1200 mm), a socket plate.

The stroke's length is the extent of its painted pixels along their principal axis, less the brush width that the
round caps add; the photo's own pixels count, whatever size the editor drew its canvas at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from drywall_qa.app.forms import handler, named_inputs
from drywall_qa.app.inspect.visual_box import raw_editor
from drywall_qa.app.messages import error_message
from drywall_qa.core.errors import InputError
from drywall_qa.core.imaging import load_image
from drywall_qa.core.visual_prompts import load_mask

#: shortest stroke (photo pixels) a scale is taken from: shorter ones make the scale too uncertain
MIN_STROKE_PX = 20
#: largest ratio of a stroke's spread across its axis to its spread along it that still counts as a straight line
STRAIGHTNESS = 0.2


@dataclass
class ScaleForm:
    """The drawing (the editor's files: background photo and painted layers) and the drawn length in mm."""

    drawing: dict[str, Any] | None = None
    length_mm: float | None = None


def _principal(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The painted pixels ``(x, y)`` of ``mask`` about their mean, their principal axes (rows) and the spread
    (singular value) along each."""
    ys, xs = np.nonzero(mask)
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    points -= points.mean(axis=0)
    _, spread, axes = np.linalg.svd(points, full_matrices=False)
    return points, axes, spread


def stroke_length(mask: np.ndarray) -> float:
    """Length in pixels of a straight brush stroke ``mask`` (bool ``H×W``): its extent along the principal axis of
    its pixels, less its width (area ÷ extent), which the round caps add to the drawn length."""
    if np.count_nonzero(mask) < 2:
        return 0.0
    points, axes, _ = _principal(mask)
    along = points @ axes[0]
    extent = float(along.max() - along.min()) + 1.0
    return max(0.0, extent - len(points) / extent)


def is_straight(mask: np.ndarray) -> bool:
    """Whether the painted pixels lie along one line: their spread across the principal axis is small against
    their spread along it (two strokes, an L or a scribble are not)."""
    spread = _principal(mask)[2]
    return bool(spread[1] <= STRAIGHTNESS * spread[0])


def scale_from_drawing(form: ScaleForm) -> float:
    """mm per photo pixel of the form's stroke; :class:`InputError` when there is no photo, no stroke, a stroke too
    short, or no positive length."""
    drawing = form.drawing or {}
    if not drawing.get("background"):
        raise InputError("scale photo", "no photo to draw on", "upload one of the job's photos into the scale box")
    if form.length_mm is None:
        raise InputError("drawn length", "no length given", "type the drawn length in mm, e.g. 1200")
    if not (math.isfinite(form.length_mm) and form.length_mm > 0):
        raise InputError("drawn length", f"{form.length_mm} is not a length", "type the drawn length in mm, e.g. 1200")
    photo_width = load_image(drawing["background"], name="scale photo").shape[1]
    layers = [load_mask(layer, name="drawn line") for layer in drawing.get("layers") or []]
    painted = [layer for layer in layers if layer.any()]
    if not painted:
        raise InputError("drawn line", "nothing is drawn", "draw along something of known length with the brush")
    stroke = np.logical_or.reduce(painted)
    pixels = stroke_length(stroke) * photo_width / stroke.shape[1]
    if pixels < MIN_STROKE_PX:
        raise InputError("drawn line", f"the line is {pixels:.0f} px long", f"draw one of {MIN_STROKE_PX} px or more")
    if not is_straight(stroke):
        raise InputError("drawn line", "the drawing is not one straight line", "clear it and draw one straight line")
    return form.length_mm / pixels


def set_scale(form: ScaleForm) -> tuple[Any, str]:
    """The mm-per-pixel box's new value and a line saying what was measured (or why not, leaving the box as is)."""
    try:
        scale = scale_from_drawing(form)
    except InputError as err:
        return gr.skip(), error_message(err)
    return round(scale, 5), f"{form.length_mm:g} mm over {form.length_mm / scale:.0f} px: **{scale:.4f} mm per pixel**"


def build_scale_box(scale: gr.Number) -> None:
    """The "scale from a line" box, which fills ``scale`` (inside a ``gr.Blocks`` context)."""
    with gr.Accordion("Scale from a line of known length", open=False):
        drawing = raw_editor(gr.ImageEditor(label="One photo: draw along something of known length", type="filepath",
                                            sources=["upload"], layers=False, elem_id="jobs-scale-drawing",
                                            brush=gr.Brush(colors=["#ff2d2d"], default_size=6), eraser=False))
        with gr.Row():
            length = gr.Number(label="Its length (mm)", minimum=0, elem_id="jobs-scale-length")
            button = gr.Button("Set mm per pixel", size="sm", elem_id="jobs-scale-set")
        note = gr.Markdown(elem_id="jobs-scale-note")
    button.click(handler(set_scale, ScaleForm), inputs_kwargs=named_inputs(drawing=drawing, length_mm=length),
                 outputs=[scale, note], api_visibility="private")
