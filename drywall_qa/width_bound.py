"""How high can any model score on thin structures (cracks) that annotators draw at different widths?

Every ground-truth mask of a split is redrawn from its own centre line (the ridge of its distance transform) at some
width and scored against itself, averaged over the images like ``evaluate``'s mIoU:

* at one fixed width for every image: the best a model could score that found every crack exactly but could not
  tell which width the annotator would draw;
* at each mask's best width: the width known, so the only loss is the redraw's;
* with ``--probe-train``: at a width read from the image, by a ridge regression of the log best width on a model's
  image features pooled along the true centre line, fit on a training split (a linear probe: a stronger reader of
  the image could do better).

    python -m drywall_qa.width_bound --split ../shared/data/cracks/valid
    python -m drywall_qa.width_bound --split ../shared/data/cracks/valid --probe-train ../shared/data/cracks/train
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from drywall_qa.backends.base import Backend
from drywall_qa.cli_args import count_arg, description, path_arg
from drywall_qa.data import CocoSplit
from drywall_qa.errors import InputError, ModelLoadError
from drywall_qa.metrics import score_masks
from drywall_qa.segmenter import Segmenter

FIXED_WIDTHS = (2, 3, 5, 7, 9, 12, 15, 18, 22, 26, 30, 40)
#: widths tried for each mask's best width
WIDTH_GRID = tuple(np.unique(np.round(np.geomspace(1, 128, 48))))
#: the probe's predicted width is also tried scaled by these factors (the regression is fit on log width)
PROBE_SCALES = (0.8, 1.0, 1.2, 1.5)
#: half-width in pixels of the band along the centre line that the probe pools features over
PROBE_BAND = 8
RIDGE_ALPHAS = tuple(np.logspace(-1, 4, 11))


def centre_line(mask: np.ndarray) -> np.ndarray:
    """Ridge of the distance transform: the pixels at least as far from the background as their 8 neighbours."""
    distance = ndimage.distance_transform_edt(mask)
    return (distance > 0) & (distance >= ndimage.maximum_filter(distance, size=3))


@dataclass
class Redraw:
    """One ground-truth mask and every pixel's distance to its centre line."""

    index: int
    truth: np.ndarray
    distance: np.ndarray

    @classmethod
    def of(cls, index: int, truth: np.ndarray) -> Redraw:
        return cls(index, truth, ndimage.distance_transform_edt(~centre_line(truth)))

    def at(self, width: float) -> np.ndarray:
        """The centre line drawn ``width`` pixels wide (a strip's centre line is 2 px thick when its width is even,
        hence the ``- 1``: a redrawn strip then keeps its width exactly)."""
        return self.distance <= (width - 1) / 2

    def iou(self, width: float) -> float:
        return score_masks(self.at(width), self.truth)[0]

    @cached_property
    def best_width(self) -> float:
        """The width on ``WIDTH_GRID`` whose redraw matches the mask best."""
        return max(WIDTH_GRID, key=self.iou)


def redraws(split: CocoSplit, limit: int | None = None) -> list[Redraw]:
    """The split's non-empty masks (an empty one has no width to guess)."""
    count = len(split) if limit is None else min(limit, len(split))
    masks = ((i, split.mask(i).astype(bool)) for i in range(count))
    return [Redraw.of(i, m) for i, m in masks if m.any()]


def mean_iou(items: Sequence[Redraw], widths: Sequence[float]) -> float:
    """mIoU when image ``k`` is redrawn at ``widths[k]``."""
    return float(np.mean([r.iou(w) for r, w in zip(items, widths)]))


def fixed_width_bounds(items: Sequence[Redraw], widths: Sequence[float] = FIXED_WIDTHS) -> dict[float, float]:
    """``{width: mIoU}`` with every image redrawn at that width."""
    return {w: mean_iou(items, [w] * len(items)) for w in widths}


def centre_features(backend: Backend, image: np.ndarray, item: Redraw) -> np.ndarray:
    """The backend's image features averaged over the band along the true centre line, and over the whole image."""
    features = backend.encode_image(backend.preprocess([image]))
    if any(f.dim() != 4 for f in features):
        raise InputError("--probe-model", "its image features are not feature maps",
                         "use a drywall-qa-lite checkpoint (e.g. the bundled model) for the probe")
    band = torch.from_numpy(item.at(2 * PROBE_BAND).astype(np.float32))[None, None]
    parts = []
    for feature in features:
        weight = F.adaptive_avg_pool2d(band, feature.shape[-2:]).to(feature.dtype)
        parts += [(feature * weight).sum((2, 3)) / weight.sum().clamp(min=1e-6), feature.mean((2, 3))]
    return torch.cat(parts, dim=1)[0].float().cpu().numpy()


def fit_ridge(x: np.ndarray, y: np.ndarray, folds: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Ridge regression on standardised features, its strength chosen by ``folds``-fold cross-validation.

    Returns ``(mean, scale, coefficients, intercept)``: predict with
    ``((x - mean) / scale) @ coefficients + intercept``.
    """
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / scale
    fold = np.arange(len(y)) % folds

    def solve(rows: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
        zc, yc = z[rows] - z[rows].mean(0), y[rows] - y[rows].mean()
        coef = np.linalg.solve(zc.T @ zc + alpha * np.eye(z.shape[1]), zc.T @ yc)
        return coef, float(y[rows].mean() - z[rows].mean(0) @ coef)

    def cv_error(alpha: float) -> float:
        errors = []
        for k in range(folds):
            coef, intercept = solve(fold != k, alpha)
            errors.append(np.mean((z[fold == k] @ coef + intercept - y[fold == k]) ** 2))
        return float(np.mean(errors))

    alpha = min(RIDGE_ALPHAS, key=cv_error)
    coef, intercept = solve(np.ones(len(y), bool), alpha)
    return mean, scale, coef, intercept


@torch.no_grad()
def probe_widths(backend: Backend, train: CocoSplit, target: CocoSplit, train_items: Sequence[Redraw],
                 items: Sequence[Redraw]) -> tuple[np.ndarray, float]:
    """Widths predicted for ``items`` from the image, and the R² of log width on them."""
    def table(split: CocoSplit, chosen: Sequence[Redraw]) -> tuple[np.ndarray, np.ndarray]:
        x = np.stack([centre_features(backend, split.load_image(r.index), r) for r in chosen])
        return x, np.log([r.best_width for r in chosen])

    (x_train, y_train), (x, y) = table(train, train_items), table(target, items)
    if len(y_train) < 10:
        raise InputError(str(train.annotation_file), f"only {len(y_train)} non-empty masks",
                         "the probe needs at least 10")
    mean, scale, coef, intercept = fit_ridge(x_train, y_train)
    predicted = ((x - mean) / scale) @ coef + intercept
    r2 = 1 - np.sum((y - predicted) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-12)
    return np.exp(predicted), float(r2)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m drywall_qa.width_bound", description=description(__doc__))
    parser.add_argument("--split", type=path_arg, required=True, help="COCO split folder whose masks to redraw")
    parser.add_argument("--limit", type=count_arg(1), help="use only the first N images of --split")
    parser.add_argument("--probe-train", type=path_arg, help="COCO split to fit the width probe on")
    parser.add_argument("--probe-limit", type=count_arg(10), default=600,
                        help="random training images for the probe (default 600)")
    parser.add_argument("--probe-model", help="checkpoint whose image features the probe reads (default: bundled)")
    return parser


def _probe_lines(args: argparse.Namespace, split: CocoSplit, items: Sequence[Redraw]) -> list[str]:
    train = CocoSplit(args.probe_train)
    rows = np.random.default_rng(0).permutation(len(train))[:args.probe_limit]
    train_items = [Redraw.of(int(i), m) for i, m in ((i, train.mask(int(i)).astype(bool)) for i in rows) if m.any()]
    backend = Segmenter.load(args.probe_model).backend
    widths, r2 = probe_widths(backend, train, split, train_items, items)
    lines = [f"width read from the image (probe fit on {len(train_items)} masks of {args.probe_train}): "
             f"R² of log width {r2:.2f}"]
    lines += [f"  predicted width × {s:.1f}: mIoU {mean_iou(items, widths * s):.3f}" for s in PROBE_SCALES]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        split = CocoSplit(args.split)
        items = redraws(split, args.limit)
        if not items:
            raise InputError(str(args.split), "no image has an annotated mask", "pass a split with annotations")
        bounds = fixed_width_bounds(items)
        lines = [f"{len(items)} masks of {args.split}, each redrawn from its own centre line"]
        lines += [f"  fixed width {w:>4g} px: mIoU {m:.3f}" for w, m in bounds.items()]
        best = max(bounds, key=bounds.get)
        lines.append(f"best fixed width: {best:g} px, mIoU {bounds[best]:.3f}")
        lines.append(f"each mask at its best width: mIoU {mean_iou(items, [r.best_width for r in items]):.3f}")
        if args.probe_train is not None:
            lines += _probe_lines(args, split, items)
    except (InputError, ModelLoadError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
