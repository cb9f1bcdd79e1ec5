"""What an Inspect run keeps and how it is drawn: the overlay, the legend, a tile per mask, the downloads and the
semantic map, all rendered from the kept probabilities so a new threshold or opacity needs no model call."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from drywall_qa.app.inspect.downloads import scratch_dir, write_downloads
from drywall_qa.app.widgets import for_display
from drywall_qa.core.presence import describe_presence
from drywall_qa.core.shapes import PIXELS, threshold_mask
from drywall_qa.core.visualisation import RGB, outlines, overlay, palette
from drywall_qa.evaluation.semantic import render_semantic, semantic_map

#: background of the per-prompt mask tiles
MASK_BACKGROUND: RGB = (24, 24, 24)
#: the legend's presence words for a prompt of a concept the model was not trained on (its mask is still drawn:
#: the concept check is a text similarity, wrong about one prompt in 25 near its bar, so hiding masks would hide
#: correct ones too; the status line says why it is unreliable)
UNRELIABLE = "unknown concept: unreliable"


class Rendered(NamedTuple):
    """A run drawn for the tab (each may also be ``gr.skip()`` or a note when there is nothing to draw)."""

    overlay: Any
    legend: Any
    masks: Any
    downloads: Any


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
    #: output shape per prompt (:mod:`drywall_qa.core.shapes`); empty: pixels
    shapes: list[str] = field(default_factory=list)
    #: whether each prompt's presence went through a calibration the checkpoint holds; empty: none did
    calibrated: list[bool] = field(default_factory=list)
    #: whether each prompt is far from every concept the model was trained on; empty: none is
    unknown: list[bool] = field(default_factory=list)
    #: the key of the photo's encoded views in the result store (:meth:`InspectTab.photo_features`); None: not kept
    features: str | None = None

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

    def compact(self, release: bool = False) -> InspectResult:
        """The same run in a quarter of the memory or less: the image at display size, 8-bit probabilities (masks
        then match the float ones within 1/255 of the threshold). With ``release`` this run's list of maps is
        emptied as they are converted, so each full-size float map can be freed before the next is converted."""
        small, _ = for_display(self.image, [])
        maps = self.probabilities if release else list(self.probabilities)
        eight_bit = []
        while maps:
            eight_bit.append(_eight_bit(maps.pop(0)))
        return replace(self, image=small, probabilities=eight_bit)

    def verdicts(self, coverages: Sequence[float]) -> list[str]:
        """Each prompt's presence in words, agreeing with its mask's ``coverages`` (see
        :func:`~drywall_qa.core.presence.describe_presence`); "unreliable" for a prompt of an unknown concept."""
        calibrated = self.calibrated or [False] * len(self.prompts)
        unknown = self.unknown or [False] * len(self.prompts)
        return [UNRELIABLE if strange else describe_presence(p, c, found=coverage > 0)
                for p, c, strange, coverage in zip(self.presence, calibrated, unknown, coverages)]

    def nbytes(self) -> int:
        return self.image.nbytes + sum(p.nbytes for p in self.probabilities)


def _eight_bit(probabilities: np.ndarray, rows: int = 512) -> np.ndarray:
    """``probabilities`` in [0, 1] as uint8 0…255, converted ``rows`` at a time (small temporaries on 50 MP maps)."""
    if probabilities.dtype == np.uint8:
        return probabilities
    out = np.empty(probabilities.shape, np.uint8)
    for start in range(0, len(probabilities), rows):
        out[start:start + rows] = np.rint(np.clip(probabilities[start:start + rows], 0, 1) * 255)
    return out


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
    labels = semantic_map(result.probabilities, result.masks(threshold))
    small, masks = for_display(result.image, [labels == k for k in range(1, len(result.prompts) + 1)])
    small_labels = np.zeros(small.shape[:2], np.uint8)
    for k, mask in enumerate(masks, start=1):
        small_labels[mask] = k
    return render_semantic(small, small_labels, result.prompts, alpha=float(opacity))


def render(result: InspectResult, threshold: float | None, opacity: float, outline: bool = False) -> Rendered:
    """The run at ``threshold`` (None: the tuned ones) and ``opacity``; ``outline`` draws mask borders only."""
    thresholds, masks = result.thresholds(threshold), result.masks(threshold)
    colors = palette(len(masks))
    coverages = [float(m.mean()) for m in masks]
    small, small_masks = for_display(result.image, masks)
    tiles = [(mask_tile(m, c), f"{p} · {coverage_text(v)}")
             for m, c, p, v in zip(small_masks, colors, result.prompts, coverages)]
    files = write_downloads(scratch_dir(), result.name, result.model, result.prompts, thresholds, masks)
    drawn = outlines(small_masks) if outline else small_masks
    return Rendered(overlay(small, drawn, colors, alpha=max(float(opacity), 0.8) if outline else float(opacity)),
                    legend_html(result.prompts, colors, coverages, thresholds, result.verdicts(coverages)), tiles,
                    [str(f) for f in files])
