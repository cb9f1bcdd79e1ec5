"""Pictures of masks: coloured overlays, error maps and titled side-by-side panels (numpy/PIL, no model code)."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from drywall_qa.core.imaging import resize_mask

RGB = tuple[int, int, int]

#: error-map colours: true positive, false positive, false negative
TP_COLOR: RGB = (0, 200, 0)
FP_COLOR: RGB = (230, 30, 30)
FN_COLOR: RGB = (30, 90, 255)
#: ground-truth overlay colour in panels
GT_COLOR: RGB = (255, 200, 0)
#: title band background and text
BAND_COLOR: RGB = (24, 24, 24)
TEXT_COLOR: RGB = (255, 255, 255)
#: factor applied to true-negative pixels when an error map is drawn over the image
TN_DIM = 0.45
GAP = 4


def palette(n: int) -> list[RGB]:
    """``n`` distinct colours: matplotlib's ``tab10`` up to 10, evenly spaced hues beyond."""
    if n <= 10:
        return [tuple(int(round(255 * c)) for c in rgb) for rgb in colormaps["tab10"].colors[:n]]
    return [tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(i / n, 0.85, 0.95)) for i in range(n)]


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be RGB uint8 H×W×3, got {image.dtype} {image.shape}")
    return image


def _check_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match image {shape[:2]}")
    return mask


def overlay(image: np.ndarray, masks: Sequence[np.ndarray], colors: Sequence[RGB] | None = None,
            alpha: float = 0.5) -> np.ndarray:
    """Blend each mask's colour into ``image`` (later masks drawn on top). Default colours: :func:`palette`."""
    image = _as_rgb(image)
    colors = palette(len(masks)) if colors is None else colors
    if len(colors) < len(masks):
        raise ValueError(f"{len(masks)} masks but only {len(colors)} colours")
    out = image.astype(np.float32)
    for mask, color in zip(masks, colors):
        mask = _check_mask(mask, image.shape)
        out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(color, np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def outlines(masks: Sequence[np.ndarray], width: int = 2) -> list[np.ndarray]:
    """Each mask's boundary, ``width`` pixels thick inside it, so overlapping masks stay visible when drawn
    together (a mask thinner than ``2 × width`` is all boundary)."""
    return [mask & ~ndimage.binary_erosion(mask, iterations=width, border_value=0) if mask.any() else mask
            for mask in (np.asarray(m, bool) for m in masks)]


def error_map(pred: np.ndarray, truth: np.ndarray, image: np.ndarray | None = None, alpha: float = 0.7) -> np.ndarray:
    """TP green, FP red, FN blue. True negatives are black, or the dimmed ``image`` when one is given
    (errors then blended over it with ``alpha``)."""
    truth = np.asarray(truth, dtype=bool)
    pred = _check_mask(pred, truth.shape)
    if image is None:
        base, alpha = np.zeros((*truth.shape, 3), np.uint8), 1.0
    else:
        base = (_as_rgb(image).astype(np.float32) * TN_DIM).astype(np.uint8)
        _check_mask(truth, base.shape)
    return overlay(base, [pred & truth, pred & ~truth, ~pred & truth], [TP_COLOR, FP_COLOR, FN_COLOR], alpha)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _fit(text: str, draw: ImageDraw.ImageDraw, font, width: float) -> str:
    """``text``, cut and ended with … when wider than ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def titled(tile: np.ndarray, title: str, band: int) -> np.ndarray:
    """``tile`` under a ``band``-pixel dark strip carrying ``title`` (truncated with … to fit)."""
    h, w = tile.shape[:2]
    canvas = Image.new("RGB", (w, h + band), BAND_COLOR)
    canvas.paste(Image.fromarray(tile), (0, band))
    draw = ImageDraw.Draw(canvas)
    font = _font(max(8, round(band * 0.6)))
    pad = max(2, band // 4)
    draw.text((pad, band / 2), _fit(title, draw, font, w - 2 * pad), fill=TEXT_COLOR, font=font, anchor="lm")
    return np.asarray(canvas)


def panel(image: np.ndarray, truth: np.ndarray | None, predictions: Sequence[tuple[str, np.ndarray]],
          height: int = 320, name: str = "Input") -> np.ndarray:
    """Tiles ``[name | Ground truth | title 1 | title 2 | …]`` side by side, each scaled to ``height`` with its
    title on a top band; ``name`` titles the image itself. With ``truth``, predictions are drawn as
    :func:`error_map` s over the image; without it the ground-truth tile is left out and predictions are plain
    overlays."""
    image = _as_rgb(image)
    small = panel_image(image, height)
    size = small.shape[:2]

    def shrink(mask: np.ndarray) -> np.ndarray:
        return resize_mask(_check_mask(mask, image.shape), size)

    tiles = [(name, small)]
    if truth is not None:
        truth = shrink(truth)
        tiles.append(("Ground truth", overlay(small, [truth], [GT_COLOR])))
    colors = palette(len(predictions))
    for (title, mask), color in zip(predictions, colors):
        mask = shrink(mask)
        tiles.append((title, error_map(mask, truth, small) if truth is not None else overlay(small, [mask], [color])))
    return side_by_side(tiles, height)


def panel_image(image: np.ndarray, height: int) -> np.ndarray:
    """``image`` scaled to ``height`` rows, keeping its aspect ratio: a panel's first tile."""
    size = (height, max(1, round(image.shape[1] * height / image.shape[0])))
    return np.asarray(Image.fromarray(image).resize(size[::-1], Image.Resampling.BILINEAR))


def side_by_side(tiles: Sequence[tuple[str | None, np.ndarray]], height: int) -> np.ndarray:
    """``(title, tile)`` pairs of ``height`` rows side by side with gaps, each title on a band above its tile; a tile
    titled None (a legend) fills the band's height too, padded or cut."""
    band = max(14, round(height * 0.08))
    parts = []
    for title, tile in tiles:
        if title is None:
            tile = np.pad(tile, ((0, max(0, height + band - tile.shape[0])), (0, 0), (0, 0)),
                          constant_values=BAND_COLOR[0])[: height + band]
        parts.append(tile if title is None else titled(tile, title, band))
    gap = np.full((height + band, GAP, 3), BAND_COLOR, np.uint8)
    return np.concatenate([p for part in parts for p in (part, gap)][:-1], axis=1)
