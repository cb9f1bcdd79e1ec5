"""Image perturbations for the robustness report, a split view that applies one, and the report's table and plot.

Each perturbation has two strengths (``low``, ``high``). Geometry changes the ground truth too: a rotated image
gets its mask rotated the same way (the canvas grows to keep every pixel; new corners are black background).
Noise and drawn cracks are seeded per image, so a report is reproducible. A drawn crack (``crack``: dark random-walk
lines, :mod:`drywall_qa.data.drawing`) is not added to the ground truth: it asks whether a crack elsewhere in the photo
changes the answer to the other prompts (a taping area with a crack on it); on a crack split it is an unannotated
crack, so the score drops by construction. :func:`drywall_qa.evaluation.evaluate_robustness` runs the
split under each one with the ordinary evaluation code.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageEnhance, ImageFilter

from drywall_qa.core.errors import InputError
from drywall_qa.data.coco import CocoSplit, DerivedSplit, Sample
from drywall_qa.data.drawing import draw_crack

Apply = Callable[[np.ndarray, np.ndarray, float, np.random.Generator], tuple[np.ndarray, np.ndarray]]
LEVELS = ("low", "high")
#: metrics whose drop (clean − perturbed) the report gives
REPORTED = ("miou", "dice", "pooled_iou")


def _blur(image: np.ndarray, mask: np.ndarray, percent: float, rng: np.random.Generator) -> tuple:
    sigma = percent / 100 * min(image.shape[:2])
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(sigma))), mask


def _noise(image: np.ndarray, mask: np.ndarray, sigma: float, rng: np.random.Generator) -> tuple:
    noisy = image.astype(np.float32) + rng.normal(0.0, sigma, image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8), mask


def _jpeg(image: np.ndarray, mask: np.ndarray, quality: float, rng: np.random.Generator) -> tuple:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(buffer).convert("RGB")), mask


def _brightness(image: np.ndarray, mask: np.ndarray, factor: float, rng: np.random.Generator) -> tuple:
    return np.asarray(ImageEnhance.Brightness(Image.fromarray(image)).enhance(factor)), mask


def _rotate(image: np.ndarray, mask: np.ndarray, degrees: float, rng: np.random.Generator) -> tuple:
    rotated = Image.fromarray(image).rotate(degrees, Image.Resampling.BILINEAR, expand=True)
    rotated_mask = Image.fromarray(mask.astype(np.uint8) * 255).rotate(degrees, Image.Resampling.NEAREST, expand=True)
    return np.asarray(rotated), np.asarray(rotated_mask) > 127


def _crack(image: np.ndarray, mask: np.ndarray, count: float, rng: np.random.Generator) -> tuple:
    canvas = Image.fromarray(image)
    for _ in range(int(count)):
        draw_crack(canvas, rng, steps=40)
    return np.asarray(canvas), mask


@dataclass(frozen=True)
class Perturbation:
    """A named image change with a low and a high strength; ``label`` formats a strength for tables."""

    name: str
    strengths: tuple[float, float]
    label_format: str
    apply: Apply

    def label(self, strength: float) -> str:
        return f"{self.name} {self.label_format.format(strength)}"


PERTURBATIONS: dict[str, Perturbation] = {p.name: p for p in (
    Perturbation("blur", (0.25, 0.75), "σ={:g}% of side", _blur),
    Perturbation("noise", (8, 24), "σ={:g}/255", _noise),
    Perturbation("jpeg", (30, 10), "quality {:g}", _jpeg),
    Perturbation("brightness", (0.6, 0.3), "×{:g}", _brightness),
    Perturbation("rotate", (10, 30), "{:g}°", _rotate),
    Perturbation("crack", (1, 3), "×{:g}", _crack),
)}


def parse_perturbations(text: str) -> list[str]:
    """``"blur,rotate"`` → ``["blur", "rotate"]``; ``"all"`` → every one. :class:`InputError` for unknown names."""
    names = list(PERTURBATIONS) if text.strip() == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PERTURBATIONS]
    if unknown or not names:
        raise InputError("--perturb", f"unknown perturbation {', '.join(unknown) or repr(text)}",
                         f"use a comma-separated list of {', '.join(PERTURBATIONS)}, or all")
    return list(dict.fromkeys(names))


class PerturbedSplit(DerivedSplit):
    """A split whose samples come out perturbed (image and, for geometry, mask); otherwise it reads as ``split``."""

    def __init__(self, split: CocoSplit, perturbation: Perturbation, strength: float, seed: int = 0) -> None:
        self.split, self.perturbation, self.strength, self.seed = split, perturbation, strength, seed

    def __getitem__(self, i: int) -> Sample:
        sample = self.split[i]
        rng = np.random.default_rng([self.seed, i])
        image, mask = self.perturbation.apply(sample.image, sample.mask, self.strength, rng)
        return Sample(sample.image_id, sample.file_name, image, mask)


def drop_rows(clean: dict[str, dict[str, float]], perturbation: Perturbation, level: str, strength: float,
              perturbed: dict[str, dict[str, float]]) -> list[dict[str, object]]:
    """One table row per prompt: the perturbed scores and their drop from ``clean`` (positive = worse)."""
    rows = []
    for prompt, scores in perturbed.items():
        row: dict[str, object] = {"perturbation": perturbation.name, "level": level, "strength": strength,
                                  "label": perturbation.label(strength), "prompt": prompt}
        for metric in REPORTED:
            row[metric] = scores[metric]
            row[f"{metric}_drop"] = clean[prompt][metric] - scores[metric]
        rows.append(row)
    return rows


def drops_figure(rows: Sequence[dict[str, object]], metric: str = "miou") -> Figure:
    """Grouped bar chart of the ``metric`` drop: one group per perturbation and strength, one bar per prompt
    (a pyplot-free figure, safe in a server thread)."""
    labels = list(dict.fromkeys(str(r["label"]) for r in rows))
    prompts = list(dict.fromkeys(str(r["prompt"]) for r in rows))
    drops = {(r["label"], r["prompt"]): float(r[f"{metric}_drop"]) for r in rows}
    figure = Figure(figsize=(max(6.0, 0.9 * len(labels) + 2), 4.5), layout="constrained")
    axes = figure.subplots()
    width = 0.8 / max(1, len(prompts))
    for index, prompt in enumerate(prompts):
        positions = np.arange(len(labels)) + (index - (len(prompts) - 1) / 2) * width
        axes.bar(positions, [drops.get((label, prompt), np.nan) for label in labels], width, label=prompt)
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.set_xticks(np.arange(len(labels)), labels, rotation=35, ha="right", fontsize=8)
    axes.set_ylabel(f"{metric} drop (clean − perturbed)")
    axes.set_title("Robustness: score lost under each perturbation")
    axes.legend(fontsize=8)
    return figure


def plot_drops(rows: Sequence[dict[str, object]], metric: str = "miou") -> bytes:
    """:func:`drops_figure` as PNG bytes."""
    buffer = io.BytesIO()
    drops_figure(rows, metric).savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()
