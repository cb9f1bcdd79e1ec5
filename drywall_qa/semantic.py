"""Semantic maps: several prompts → one label map, its picture with a legend, and per-class scores against a
multi-class ground truth built from the datasets (each dataset's annotations become its class).

Label 0 is background; label ``i + 1`` is prompt ``i``. A pixel gets the prompt with the highest probability among
those whose mask holds it (probability above that prompt's threshold), else background.

    python -m drywall_qa.semantic --data-root ../shared/data --split valid --out outputs/semantic
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from drywall_qa.atomic import write_atomic
from drywall_qa.cli_args import add_model_arguments, count_arg, description, engine_from_args, folder_arg, path_arg
from drywall_qa.data import DATASETS, CocoSplit, data_root, split_dir
from drywall_qa.errors import InputError, ModelLoadError
from drywall_qa.evaluation import Progress, Split, predictions_over, write_png
from drywall_qa.imaging import resize_mask
from drywall_qa.segmenter import Segmenter
from drywall_qa.visualisation import BAND_COLOR, GAP, RGB, TEXT_COLOR, overlay, palette, panel_image, side_by_side

BACKGROUND = "background"
#: legend entries longer than this many characters are cut and end with …
LEGEND_CHARS = 48


def semantic_map(probabilities: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> np.ndarray:
    """``H×W`` uint8 labels of one image (0 background, ``i + 1`` = prompt ``i``) from each prompt's probability
    map (float, or uint8 on a 0–255 scale) and its mask."""
    if not probabilities or len(probabilities) > 254 or len(masks) != len(probabilities):
        raise ValueError(f"need 1 to 254 probability maps and as many masks, got {len(probabilities)} and "
                         f"{len(masks)}")
    labels = np.zeros(masks[0].shape, np.uint8)
    best = np.full(labels.shape, -1.0, np.float32)
    for label, (probability, mask) in enumerate(zip(probabilities, masks), start=1):   # one at a time: flat memory
        score = np.where(mask, probability, np.float32(-1)).astype(np.float32, copy=False)
        better = score > best                                    # ties keep the earlier prompt
        labels[better], best[better] = label, score[better]
    return labels


def legend(names: Sequence[str], colors: Sequence[RGB] | None = None, font_size: int = 16) -> np.ndarray:
    """RGB picture of a colour swatch and a name per class, one class per row (names cut at :data:`LEGEND_CHARS`)."""
    colors = palette(len(names)) if colors is None else colors
    names = [n if len(n) <= LEGEND_CHARS else n[: LEGEND_CHARS - 1].rstrip() + "…" for n in names]
    font = ImageFont.load_default(size=font_size)
    row, pad = round(font_size * 1.6), font_size // 2
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = 3 * pad + row + max((measure.textlength(n, font=font) for n in names), default=0)
    canvas = Image.new("RGB", (int(width) + pad, row * len(names) + 2 * pad), BAND_COLOR)
    draw = ImageDraw.Draw(canvas)
    for index, (name, color) in enumerate(zip(names, colors)):
        top = pad + index * row
        draw.rectangle([pad, top + 3, pad + row - 6, top + row - 3], fill=tuple(color))
        draw.text((2 * pad + row, top + row / 2), name, fill=TEXT_COLOR, font=font, anchor="lm")
    return np.asarray(canvas)


def label_overlay(image: np.ndarray, labels: np.ndarray, num_classes: int, alpha: float = 0.5) -> np.ndarray:
    """``image`` with class ``k`` (labels == k, k ≥ 1) blended in colour ``palette(num_classes)[k - 1]``."""
    return overlay(image, [labels == k for k in range(1, num_classes + 1)], palette(num_classes), alpha)


def render_semantic(image: np.ndarray, labels: np.ndarray, names: Sequence[str], alpha: float = 0.5) -> np.ndarray:
    """The label overlay with the legend on its right (class ``k`` is ``names[k - 1]``)."""
    shown = label_overlay(image, labels, len(names), alpha)
    key = legend(names, font_size=max(12, round(image.shape[0] * 0.035)))
    height = max(shown.shape[0], key.shape[0])
    canvas = np.full((height, shown.shape[1] + GAP + key.shape[1], 3), BAND_COLOR, np.uint8)
    canvas[: shown.shape[0], : shown.shape[1]] = shown
    canvas[: key.shape[0], shown.shape[1] + GAP:] = key
    return canvas


def _shrink_labels(labels: np.ndarray, size: tuple[int, int], num_classes: int) -> np.ndarray:
    """Labels at ``size`` keeping thin classes (thin-safe per-class resize; higher labels win overlaps)."""
    out = np.zeros(size, np.uint8)
    for k in range(1, num_classes + 1):
        out[resize_mask(labels == k, size)] = k
    return out


def semantic_panel(image: np.ndarray, truth: np.ndarray, prediction: np.ndarray, names: Sequence[str],
                   height: int = 320) -> np.ndarray:
    """``[Input | Ground truth | Prediction | legend]``, tiles scaled to ``height`` with titles."""
    small = panel_image(image, height)
    tiles = [("Input", small)] + [
        (title, label_overlay(small, _shrink_labels(labels, small.shape[:2], len(names)), len(names)))
        for title, labels in (("Ground truth", truth), ("Prediction", prediction))]
    return side_by_side([*tiles, (None, legend(names, font_size=max(12, round(height * 0.05))))], height)


class Confusion:
    """Pixel confusion matrix over classes ``0 … n-1`` (rows: truth, columns: prediction), summed over images."""

    def __init__(self, num_classes: int) -> None:
        self.matrix = np.zeros((num_classes, num_classes), np.int64)

    def add(self, truth: np.ndarray, prediction: np.ndarray) -> None:
        n = len(self.matrix)
        counts = np.bincount(truth.astype(np.int64).ravel() * n + prediction.ravel(), minlength=n * n)
        self.matrix += counts.reshape(n, n)

    def scores(self, names: Sequence[str]) -> dict[str, dict[str, float | int]]:
        """Per class: pooled precision, recall, F1 and IoU, and its pixel count in the truth (``support``).

        Conventions as :mod:`drywall_qa.metrics`: precision 1 when the class is never predicted, recall 1 when it
        never occurs, IoU 1 when both.
        """
        out = {}
        for k, name in enumerate(names):
            tp = int(self.matrix[k, k])
            predicted, actual = int(self.matrix[:, k].sum()), int(self.matrix[k].sum())
            precision = tp / predicted if predicted else 1.0
            recall = tp / actual if actual else 1.0
            union = predicted + actual - tp
            out[name] = {"precision": precision, "recall": recall,
                         "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
                         "iou": tp / union if union else 1.0, "support": actual}
        return out


@dataclass(frozen=True)
class SemanticClass:
    """One class of a multi-class evaluation: its prompt, and a split whose annotations are that class."""

    name: str
    prompt: str
    split: Split


def evaluate_semantic(segmenter: Segmenter, classes: Sequence[SemanticClass], threshold: float | None = None,
                      limit: int | None = None, out_dir: Path | None = None, panels: int = 4,
                      progress: Progress | None = None, tiling: str = "auto") -> dict[str, Any]:
    """Score semantic maps of all classes' prompts on the union of the classes' splits (first ``limit`` images of
    each). Ground truth of an image of class ``k``'s split: its annotations are class ``k``, everything else
    background. Returns per-class scores (``background`` included), their mean over the prompt classes and the
    confusion matrix; with ``out_dir`` writes semantic.json and the first ``panels`` images of each split to
    ``semantic_panels/``.
    """
    names = [BACKGROUND, *(c.name for c in classes)]
    if len(set(names)) != len(names):
        raise InputError("classes", f"duplicate class names in {names[1:]}", "name each class once")
    prompts = [c.prompt for c in classes]
    confusion, done, counts = Confusion(len(names)), 0, []
    panel_dir = Path(out_dir) / "semantic_panels" if out_dir is not None else None
    if panel_dir is not None:
        panel_dir.mkdir(parents=True, exist_ok=True)
    total = sum(len(c.split) if limit is None else min(limit, len(c.split)) for c in classes)
    for label, semantic_class in enumerate(classes, start=1):
        count = 0
        for index, sample, predictions, _ in predictions_over(segmenter, semantic_class.split, prompts, threshold,
                                                               limit, desc=semantic_class.name, tiling=tiling):
            prediction = semantic_map([p.probabilities for p in predictions], [p.mask for p in predictions])
            truth = sample.mask.astype(np.uint8) * label
            confusion.add(truth, prediction)
            if panel_dir is not None and index < panels:
                picture = semantic_panel(sample.image, truth, prediction, names[1:])
                write_png(panel_dir / f"{semantic_class.name}_{index:03d}.png", picture)
            count, done = count + 1, done + 1
            if progress is not None:
                progress(done, total)
        counts.append(count)
    per_class = confusion.scores(names)
    report = {"model": segmenter.name, "threshold": threshold,
              "classes": {c.name: {"prompt": c.prompt, "split": str(c.split.root), "num_images": n}
                          for c, n in zip(classes, counts)},
              "scores": per_class,
              "mean": {m: float(np.mean([per_class[n][m] for n in names[1:]])) for m in ("precision", "recall",
                                                                                       "f1", "iou")},
              "confusion": {"labels": names, "matrix": confusion.matrix.tolist()}}
    if out_dir is not None:
        write_atomic(Path(out_dir) / "semantic.json", json.dumps(report, indent=2) + "\n")
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m drywall_qa.semantic", description=description(__doc__))
    parser.add_argument("--data-root", type=path_arg, help="folder holding the datasets (default: $DRYWALL_QA_DATA, "
                        "./data or ../shared/data)")
    parser.add_argument("--split", default="valid", help="split name in every dataset (default valid)")
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=sorted(DATASETS),
                        help="datasets = classes (default: all)")
    parser.add_argument("--prompts", nargs="+", help="one prompt per dataset, in --datasets order "
                        "(default: each dataset's canonical prompt)")
    add_model_arguments(parser)
    parser.add_argument("--limit", type=count_arg(1), help="first N images of each dataset")
    parser.add_argument("--panels", type=count_arg(0), default=4, help="panels drawn per dataset (default 4)")
    parser.add_argument("--out", required=True, type=folder_arg, help="output folder")
    return parser


def classes_from_datasets(root: Path, datasets: Sequence[str], split: str,
                          prompts: Sequence[str] | None = None) -> list[SemanticClass]:
    """One class per dataset: named after it, prompted by ``prompts`` (default: its canonical prompt)."""
    prompts = list(prompts) if prompts else [DATASETS[name].canonical for name in datasets]
    if len(prompts) != len(datasets):
        raise InputError("--prompts", f"{len(prompts)} prompts for {len(datasets)} datasets",
                         "give one prompt per dataset, in the order of --datasets")
    return [SemanticClass(name, prompt, CocoSplit(split_dir(root, name, split)))
            for name, prompt in zip(datasets, prompts)]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        classes = classes_from_datasets(data_root(args.data_root), args.datasets, args.split, args.prompts)
        args.out.mkdir(parents=True, exist_ok=True)
        segmenter = Segmenter.load(args.model, device=args.device, engine=engine_from_args(args))
        report = evaluate_semantic(segmenter, classes, args.threshold, args.limit, args.out, args.panels,
                                   tiling=args.tiling)
    except (InputError, ModelLoadError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    print(f"{'class':<16} {'precision':>9} {'recall':>7} {'F1':>6} {'IoU':>6}")
    for name, scores in {**report["scores"], "mean": report["mean"]}.items():
        print(f"{name:<16} {scores['precision']:9.3f} {scores['recall']:7.3f} {scores['f1']:6.3f} {scores['iou']:6.3f}")
    print(f"results in {args.out / 'semantic.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
