"""Controls the tabs share: prompt picker, threshold picker, split picker, and the display-size helper."""

from __future__ import annotations

import math
from collections.abc import Sequence

import gradio as gr
import numpy as np
from PIL import Image

from drywall_qa.errors import InputError
from drywall_qa.imaging import resize_mask
from drywall_qa.ui.prompts import KNOWN_PROMPTS, MAX_PROMPTS

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
