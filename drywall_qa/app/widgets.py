"""Controls the tabs share: prompt picker, threshold picker, split picker, and the display-size helper."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import gradio as gr
import numpy as np
from gradio.context import Context
from PIL import Image

from drywall_qa.app.prompts import KNOWN_PROMPTS, MAX_PROMPTS
from drywall_qa.core.errors import InputError
from drywall_qa.core.imaging import resize_mask
from drywall_qa.data.discovery import split_size

#: longest side of images sent to the browser (downloads keep the input size)
DISPLAY_SIDE = 1024


def prompt_inputs(default: Sequence[str]) -> tuple[gr.CheckboxGroup, gr.Textbox]:
    """Tick registered prompts and/or type more."""
    selected = gr.CheckboxGroup(KNOWN_PROMPTS, value=list(default), label="Prompts")
    typed = gr.Textbox(label="More prompts", lines=1, max_lines=3,
                       placeholder=f"free text, comma-separated (at most {MAX_PROMPTS} prompts in all)")
    return selected, typed


def threshold_inputs(elem_id: str | None = None) -> tuple[gr.Checkbox, gr.Slider]:
    """A checkbox for the model's tuned per-prompt thresholds, and one threshold for every prompt otherwise
    (``elem_id``: the slider's, for browser tests)."""
    with gr.Row():
        tuned = gr.Checkbox(True, label="Model's tuned thresholds", info="else the slider's, for every prompt")
        value = gr.Slider(0.05, 0.95, 0.5, step=0.01, label="Threshold", elem_id=elem_id)
    return tuned, value


def threshold_value(tuned: bool, value: float | None) -> float | None:
    """``None`` (the model's per-prompt thresholds) when ``tuned``, else the slider value; :class:`InputError` for a
    value that is not a probability (NaN, text, 7.5 from an API client)."""
    if tuned or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InputError("threshold", f"{value!r:.40} is not a probability from 0 to 1",
                         "use a value such as 0.5, or tick the model's tuned thresholds")
    return float(value)


def split_input(choices: list[tuple[str, str]], elem_id: str) -> gr.Dropdown:
    """A dropdown of the splits found in the data roots (empty with a hint when there are none)."""
    info = None if choices else "no data folder found: start with --data-root DIR or set DRYWALL_QA_DATA"
    return gr.Dropdown(choices, value=choices[0][1] if choices else None, label="Split", info=info,
                       elem_id=elem_id)


def image_limit_input(choices: list[tuple[str, str]], roots: Sequence[Path], cap: int, default: int, label: str,
                      elem_id: str) -> gr.Slider:
    """How many of the split's first images to score. The server accepts 1 to ``cap`` (an API client may name any
    split; the run clamps to its size); each page shows 1 to the first split's size from its load on
    (:func:`bound_image_limit` follows the splits chosen after)."""
    slider = gr.Slider(1, cap, min(default, cap), step=1, label=label, elem_id=elem_id,
                       info="the first N images of the split")
    first = choices[0][1] if choices else None

    def first_bounds(current: float | None) -> dict:
        bounds = image_limits(first, current, roots, cap)
        return gr.update(**bounds) if bounds else gr.skip()

    Context.root_block.load(first_bounds, slider, slider, api_visibility="private")
    return slider


def image_limits(split: str | None, current: float | None, roots: Sequence[Path], cap: int) -> dict:
    """The image slider's maximum, value and info for the split chosen: up to its size (at most ``cap``), the value
    kept within; empty when the split cannot be opened (the run button then says why)."""
    size = split_size(split, roots)
    if size is None:
        return {}
    top = max(1, min(cap, size))
    capped = "" if size <= cap else f"; at most {cap} here"
    return {"maximum": top, "value": min(top, max(1, int(current or top))),
            "info": f"the first N of the split's {size} images{capped}"}


def bound_image_limit(split: gr.Dropdown, limit: gr.Slider, roots: Sequence[Path], cap: int) -> None:
    """Re-bound ``limit`` to each split chosen in ``split``."""
    def bounded(value: str | None, current: float | None) -> dict:
        bounds = image_limits(value, current, roots, cap)
        return gr.update(**bounds) if bounds else gr.skip()

    split.change(bounded, [split, limit], limit, api_visibility="private")


def for_display(image: np.ndarray, masks: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Image scaled so the longest side is at most ``DISPLAY_SIDE``, and masks scaled to it (thin masks
    survive); an image already that small is kept, and larger masks are scaled to it."""
    height, width = image.shape[:2]
    scale = DISPLAY_SIDE / max(height, width)
    if scale < 1:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        image = np.asarray(Image.fromarray(image).resize(size[::-1], Image.Resampling.BILINEAR))
    size = image.shape[:2]
    return image, [m if m.shape == size else resize_mask(m, size) for m in masks]


def whole_number(value: float | None, field: str, default: int, low: int, high: int) -> int:
    """A count from a slider or an API value: ``default`` when empty, clamped to ``[low, high]``; :class:`InputError`
    for a value that is not a finite number (an API client can send NaN or text)."""
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(field, f"{value!r:.40} is not a number", f"give a whole number from {low} to {high}") from None
    if not math.isfinite(number):
        raise InputError(field, f"{number} is not a finite number", f"give a whole number from {low} to {high}")
    return min(high, max(low, int(number)))
