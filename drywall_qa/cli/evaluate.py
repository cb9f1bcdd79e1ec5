"""Score a model on a COCO split: every prompt on every image, one forward pass of the image encoder per image.

Writes ``metrics.json`` (per-prompt scores with the crack-aware clDice and tolerance F1, their 95 % intervals by a
bootstrap over source photos, threshold sweep, presence AUROC, timing, model size), ``per_image.csv``,
``per_source.csv`` (per source photo: images, mean scores) and titled panels ``panels/first_NNN_<stem>.png`` /
``panels/worst_NNN_<stem>.png`` (worst by IoU of the first prompt). With ``--negatives-split`` the prompts also run
on images without their target (presence AUROC, false detections); with ``--perturb`` the split is re-scored under
each perturbation (``robustness.csv``, ``robustness.png``). Every file is written to a temporary name and renamed, so
an interrupted run never leaves half a file.

    drywall-qa evaluate --split ../shared/data/cracks/valid --dataset cracks --out runs/eval-cracks
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from drywall_qa.cli.args import (
    add_model_arguments,
    add_visual_prompt_arguments,
    count_arg,
    description,
    engine_from_args,
    folder_arg,
    path_arg,
    visual_prompt_from_arguments,
)
from drywall_qa.core.errors import InputError, ModelLoadError
from drywall_qa.core.presence import describe_auroc
from drywall_qa.core.segmenter import Condition, Segmenter, truncation_note, unknown_concept_note
from drywall_qa.data.coco import DATASETS, CocoSplit, get_dataset
from drywall_qa.evaluation import EvaluationSettings, PanelWriter, evaluate_robustness, evaluate_split, prompt_label
from drywall_qa.evaluation.metrics import TOLERANCES
from drywall_qa.evaluation.robustness import (
    PERTURBATIONS,
    parse_perturbations,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drywall-qa evaluate", description=description(__doc__))
    parser.add_argument("--split", required=True, type=path_arg,
                        help="split folder holding _annotations.coco.json and the images, or the .json file itself")
    parser.add_argument("--dataset", choices=sorted(DATASETS), help="use this dataset's registered prompts")
    parser.add_argument("--prompts", nargs="+", help="prompts to score (override --dataset's); the first one "
                        "ranks the worst-image panels")
    add_model_arguments(parser)
    parser.add_argument("--limit", type=count_arg(1), help="score only the first N images")
    parser.add_argument("--panels", type=count_arg(0), default=8, help="first N and worst N images drawn (default 8)")
    parser.add_argument("--tolerances", nargs="+", type=count_arg(0), default=list(TOLERANCES), metavar="PX",
                        help="distances in pixels within which predicted and true skeletons match: tolerance "
                        f"precision, recall and F1 at each (default {' '.join(map(str, TOLERANCES))})")
    parser.add_argument("--out", required=True, type=folder_arg, help="output folder")
    parser.add_argument("--negatives-split", type=path_arg,
                        help="split whose images lack the prompts' targets (e.g. the other dataset's valid split): "
                        "presence AUROC against them and false detections on them")
    parser.add_argument("--perturb", type=_perturbations, metavar="LIST",
                        help=f"re-score under each of these perturbations at two strengths ({','.join(PERTURBATIONS)} "
                        "or all): robustness.csv, robustness.png")
    add_visual_prompt_arguments(parser)
    return parser


def _perturbations(text: str) -> list[str]:
    try:
        return parse_perturbations(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(f"{err.problem}; {err.hint}") from None


def _print_summary(metrics: dict[str, Any], out_dir: Path) -> None:
    print(f"{metrics['num_images']} images, model {metrics['model']}")
    f1_names = [f"tol_f1_{d}px" for d in metrics["tolerances"]]
    f1_titles = "".join(f" {f'F1@{d}px':>7}" for d in metrics["tolerances"])
    print(f"{'prompt':<32} {'mIoU':>6} {'Dice':>6} {'pooled':>6} {'clDice':>6}{f1_titles} {'thr':>5} shape")
    for prompt, m in metrics["prompts"].items():
        f1_values = "".join(f" {m[name]:7.3f}" for name in f1_names)
        print(f"{prompt[:32]:<32} {m['miou']:6.3f} {m['dice']:6.3f} {m['pooled_iou']:6.3f} {m['cldice']:6.3f}"
              f"{f1_values} {m['threshold']:5.2f} {m['shape']}")
    _print_intervals(metrics["intervals"])
    for prompt, presence in metrics["presence"].items():
        counts = metrics["prompts"][prompt]
        print(f"presence AUROC {describe_auroc(presence)}: {prompt}")
        print(f"  verdict follows the mask ({counts['mask_verdict_disagreements']} contradictions); presence "
              f"disagrees (low confidence) on {counts['masks_with_low_presence']} images with a mask and "
              f"{counts['empty_with_high_presence']} without")
    for label, counts in (("split", metrics), ("negatives split", metrics.get("negatives", {}))):
        if counts.get("skipped_annotations") or counts.get("skipped_polygons"):
            print(f"{label}: {counts['skipped_annotations']} annotations with nothing to draw and "
                  f"{counts['skipped_polygons']} degenerate polygons skipped, not in the ground truth (see warnings)")
    for row in metrics.get("robustness", []):
        print(f"{row['label']:<24} {row['prompt'][:32]:<32} mIoU {row['miou']:.3f} (drop {row['miou_drop']:+.3f})")
    print(f"{metrics['timing']['per_image_per_prompt_s'] * 1000:.1f} ms per image per prompt; results in {out_dir}")


def _print_intervals(intervals: dict[str, Any]) -> None:
    """The 95 % intervals of the scores, one row per prompt (n/a with a single source photo)."""
    print(f"{intervals['level']:.0%} intervals, bootstrap over {intervals['sources']} source photos "
          f"({intervals['resamples']} resamples, seed {intervals['seed']}):")
    names = next((list(b) for b in intervals["prompts"].values() if b), [])
    print(f"{'prompt':<32}" + "".join(f" {_score_title(n):>14}" for n in names))
    for prompt, bounds in intervals["prompts"].items():
        cells = "".join(f" [{low:.3f}, {high:.3f}]" for low, high in bounds.values()) if bounds else " n/a"
        print(f"{prompt[:32]:<32}{cells}")


def _score_title(name: str) -> str:
    """A column title: ``miou`` → mIoU, ``tol_f1_5px`` → F1@5px."""
    titles = {"miou": "mIoU", "dice": "Dice", "cldice": "clDice"}
    return titles.get(name, name.replace("tol_f1_", "F1@"))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.dataset is None and args.prompts is None and args.support is None and args.support_split is None:
        parser.error("give --dataset (registered prompts), --prompts or a visual prompt (--support/--support-split)")
    try:
        prompts: list[Condition] = args.prompts or list(get_dataset(args.dataset).prompts if args.dataset else [])
        example = visual_prompt_from_arguments(args, prompts[0] if prompts else None)
        prompts += [example] if example is not None else []
        split = CocoSplit(args.split)
        negatives = CocoSplit(args.negatives_split) if args.negatives_split is not None else None
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(str(args.out), f"cannot create the output folder ({err.strerror})",
                             "pass a writable --out folder") from err
        segmenter = Segmenter.load(args.model, device=args.device, engine=engine_from_args(args))
        limit = segmenter.backend.max_prompt_tokens
        for prompt, cut in zip(prompts, segmenter.truncated(prompts)):
            if cut:
                print(f"{parser.prog}: note: {truncation_note(prompt_label(prompt), limit)}", file=sys.stderr)
        for concept in segmenter.concepts(prompts):
            if concept.unknown_concept:
                print(f"{parser.prog}: note: {unknown_concept_note(concept, segmenter.backend.family)}",
                      file=sys.stderr)
        settings = EvaluationSettings(threshold=args.threshold, limit=args.limit, dataset=args.dataset,
                                      tolerances=list(dict.fromkeys(args.tolerances)), tiling=args.tiling)
        result = evaluate_split(segmenter, split, prompts, settings=settings, negatives=negatives,
                                panels=PanelWriter(args.out / "panels", args.panels))
        if args.perturb:
            result.robustness = evaluate_robustness(segmenter, split, prompts, args.perturb, result, settings=settings)
        result.write(args.out)
    except (InputError, ModelLoadError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    _print_summary(result.to_dict(), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
