"""How high can any model score on thin structures (cracks) that annotators draw at different widths?

    drywall-qa width-bound --split ../shared/data/cracks/valid
    drywall-qa width-bound --split ../shared/data/cracks/valid --probe-train ../shared/data/cracks/train
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from drywall_qa.calibration.width_bound import PROBE_SCALES, Redraw, fixed_width_bounds, mean_iou, probe_widths, redraws
from drywall_qa.cli.args import count_arg, description, path_arg
from drywall_qa.core.errors import InputError, ModelLoadError
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.data.coco import CocoSplit


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drywall-qa width-bound", description=description(__doc__))
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
