"""Semantic maps: several prompts → one label map, its picture with a legend, and per-class scores against a
multi-class ground truth built from the datasets (each dataset's annotations become its class).

    drywall-qa semantic --data-root ../shared/data --split valid --out outputs/semantic
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from drywall_qa.cli.args import add_model_arguments, count_arg, description, engine_from_args, folder_arg, path_arg
from drywall_qa.core.errors import InputError, ModelLoadError
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.data.coco import DATASETS, CocoSplit, data_root, split_dir
from drywall_qa.evaluation.semantic import SemanticClass, evaluate_semantic


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drywall-qa semantic", description=description(__doc__))
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
