"""Fixing the data in Review: the ground-truth editor's starting value (the photo with the ground truth or the
prediction painted on a layer), the mask a reviewer painted, the error maps of two models side by side, and the
corrected split exported into the output folder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from drywall_qa.app.evaluate.tab import unique_path
from drywall_qa.app.inspect.visual_box import editor_example
from drywall_qa.app.widgets import for_display
from drywall_qa.core.errors import InputError
from drywall_qa.core.imaging import load_image, resize_mask
from drywall_qa.core.visual_prompts import load_mask
from drywall_qa.core.visualisation import error_map, overlay
from drywall_qa.data.coco import CocoSplit
from drywall_qa.review import ExportSummary, export_split

#: folder of the output folder that exported splits go to (the Review tab offers the splits found there)
CORRECTED = "corrected"
#: the brush colours: one adds to the mask, the other removes from it (the eraser takes strokes back)
ADD, REMOVE = "#ff0066", "#00c8ff"
BRUSH_OPACITY = 0.6
GAP = 8
FIX_HELP = f"""**Fix the ground truth.** *Use the prediction as ground truth* saves the model's mask as this image's
corrected ground truth. Or press an *Edit* button: the photo opens with the ground truth (or the prediction) shaded in
pink; paint what is missing with the pink brush, paint over what is wrong with the blue brush, take a stroke back with
the eraser, and press *Save edited ground truth*. Either saves the decision *ground truth wrong* with the corrected
mask. *Export corrected split* then writes a new split to `{CORRECTED}/` in the output folder (the original is never
changed): corrected images get their mask as an RLE annotation, excluded images are dropped, every other annotation
is copied as written — taping boxes stay boxes unless corrected, since a brush edit is no rectangle and a box around
it would put back what was removed. The new split appears in the Split box, ready to score."""


def _rgb(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def editor_value(image: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """The editor's value: the photo at display size with ``mask`` shaded in the adding brush's colour."""
    small, [shown] = for_display(image, [mask])
    return {"background": overlay(small, [shown], [_rgb(ADD)], alpha=0.45), "layers": [], "composite": None}


def edited_mask(editor: dict[str, Any] | None, image: np.ndarray, start: np.ndarray) -> np.ndarray:
    """The mask an edit of ``start`` ends with, at ``image``'s size: ``start`` plus the strokes of the adding brush,
    minus those of the removing one (told apart by their colour); :class:`InputError` when nothing was opened for
    editing or the editor holds another image."""
    if not editor or editor.get("background") is None:
        raise InputError("ground truth editor", "holds no image", "press an Edit button, paint, then save")
    _, painted = editor_example(editor)
    small, [mask] = for_display(image, [start])
    if painted.shape != small.shape[:2]:
        raise InputError("ground truth editor", f"holds a {painted.shape[1]}×{painted.shape[0]} image, not the image "
                         "shown", "press an Edit button again for the image shown")
    for layer in editor.get("layers") or []:
        rgb = load_image(layer, name="painted layer").astype(int)   # strokes over white keep their hue
        strokes = load_mask(layer, name="painted layer")
        adds = rgb[..., 0] > rgb[..., 2]
        mask = (mask | (strokes & adds)) & ~(strokes & ~adds)
    return resize_mask(mask, image.shape[:2])


def compare_errors(first: np.ndarray, second: np.ndarray, truth: np.ndarray, image: np.ndarray) -> np.ndarray:
    """The error maps of two predictions side by side (first model left), a white gap between them."""
    gap = np.full((image.shape[0], GAP, 3), 255, np.uint8)
    return np.concatenate([error_map(first, truth, image), gap, error_map(second, truth, image)], axis=1)


def export_corrected(decisions_file: Path, split: CocoSplit, out_dir: Path) -> ExportSummary:
    """The split with its decisions applied, written to ``<out>/corrected/<dataset folder>/<split>-<time>``."""
    if not decisions_file.is_file():
        raise InputError("export", "no decision saved for this split yet", "decide on at least one image first")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = unique_path(out_dir / CORRECTED / split.root.parent.name / f"{split.root.name}-{stamp}")
    return export_split(decisions_file, split.root, folder)
