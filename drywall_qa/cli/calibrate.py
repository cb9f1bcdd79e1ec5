"""Tune a checkpoint's post-processing on validation splits and store it beside its weights (``postprocess.json``,
:mod:`drywall_qa.core.postprocess`).

    drywall-qa calibrate --model runs/lite/best --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from drywall_qa.calibration.calibrate import choose_outputs, choose_scales, collect, fit_calibration, store_calibration
from drywall_qa.cli.args import add_engine_arguments, count_arg, description, engine_from_args, path_arg
from drywall_qa.core.errors import InputError, ModelLoadError
from drywall_qa.core.postprocess import SETTINGS_FILE
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.core.shapes import SHAPES
from drywall_qa.core.tiling import ScalePolicy
from drywall_qa.data.coco import DATASETS, CocoSplit, data_root, split_dir


def _auroc_cell(value: float | None) -> str:
    """The AUROC column: ``'   n/a'`` below :data:`~drywall_qa.core.presence.MIN_AUROC_CLASS` images of a class."""
    return "   n/a" if value is None else f"{value:6.3f}"


def _print_scales(scores: Mapping[str, Mapping[ScalePolicy, float]], chosen: Mapping[str, ScalePolicy]) -> None:
    """The mean of photo and wide-shot mIoU of every candidate policy, per prompt, and the one chosen."""
    if not scores:
        return
    policies = list(next(iter(scores.values())))
    names = [(f"{p.view}@{p.window}" if p.tiled else p.view) + ("" if p.input is None else f"/{p.input}")
             + "".join(f"+{p.window * f}" for f in p.zoom_out) + (f" {p.fusion}" if p.zoom_out else "")
             for p in policies]
    width = max(10, *map(len, names))
    print(f"{'prompt':<32} " + " ".join(f"{n:>{width}}" for n in names) + "  chosen")
    for prompt, by_policy in scores.items():
        print(f"{prompt[:32]:<32} " + " ".join(f"{by_policy[p]:{width}.3f}" for p in policies)
              + f"  {names[policies.index(chosen[prompt])]}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drywall-qa calibrate", description=description(__doc__))
    parser.add_argument("--model", required=True, type=path_arg, help="checkpoint folder (the calibration is stored in "
                        f"its {SETTINGS_FILE})")
    parser.add_argument("--data-root", type=path_arg, help="folder holding the datasets (default: $DRYWALL_QA_DATA, "
                        "./data or ../shared/data)")
    parser.add_argument("--split", default="valid", help="split name in every dataset (default valid)")
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=sorted(DATASETS),
                        help="datasets to calibrate on (default: all)")
    parser.add_argument("--limit", type=count_arg(1), help="first N images of each dataset")
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES),
                        help="output shapes to choose from (default: all; 'pixels' alone keeps raw masks)")
    parser.add_argument("--keep-scales", action="store_true",
                        help="keep the checkpoint's scale policies instead of choosing them (faster)")
    parser.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    add_engine_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if not (args.model / "config.json").is_file():
            raise InputError(str(args.model), "not a checkpoint folder (no config.json)",
                             "pass a folder written by save_pretrained, e.g. runs/x/best")
        root = data_root(args.data_root)
        splits = {name: CocoSplit(split_dir(root, name, args.split)) for name in dict.fromkeys(args.datasets)}
        segmenter = Segmenter.load(args.model, device=args.device, engine=engine_from_args(args))
        scales = {}
        if not args.keep_scales:
            segmenter, scales = choose_scales(segmenter, splits, args.limit)
        records = collect(segmenter, splits, args.limit, shapes=args.shapes)
        fits, outputs = fit_calibration(records.presence), choose_outputs(records.sweeps, records.groups)
        stored = store_calibration(segmenter.backend.settings, args.model, fits, outputs)
    except (InputError, ModelLoadError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    _print_scales(scales, stored.scales)
    print(f"{'prompt':<32} {'shape':>6} {'thr':>5} {'mIoU':>6} {'Dice':>6} {'held-out':>8} | {'a':>7} {'b':>7} "
          f"{'AUROC':>6} {'with':>5} {'without':>7}")
    for prompt, fit in fits.items():
        out = outputs[prompt]
        print(f"{prompt[:32]:<32} {out['shape']:>6} {out['threshold']:5.2f} {out['miou']:6.3f} {out['dice']:6.3f} "
              f"{out['held_out_miou']:8.3f} | {fit['a']:7.3f} {fit['b']:7.3f} {_auroc_cell(fit['auroc'])} "
              f"{fit['positives']:5d} {fit['negatives']:7d}")
    print(f"scale policies, output shapes, thresholds and presence calibration written to "
          f"{args.model / SETTINGS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
