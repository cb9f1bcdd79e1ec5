"""Tune a checkpoint's post-processing on validation splits and store it beside its weights (``postprocess.json``,
:mod:`drywall_qa.postprocess`).

For every prompt of every registered dataset:

* the output shape (:mod:`drywall_qa.shapes`: ``pixels`` or ``boxes``) and threshold with the highest mIoU on the
  prompt's own dataset, written as ``shapes`` and ``thresholds``;
* the scale policy (:mod:`drywall_qa.tiling`: whole photo, tiles, or both) with the best mean mIoU on the photos
  and on the wide shots they make (:mod:`drywall_qa.scale_choice`), written as ``scales``; thresholds and shapes
  are then chosen with it;
* the image-level presence score: positives are that dataset's images with an annotated target, negatives the
  other datasets' images (and its own images without annotations); a Platt fit (:mod:`drywall_qa.presence`) is
  written as ``presence: {prompt: [a, b]}``.

Predictions of that checkpoint then use these shapes and thresholds and carry calibrated presence. Choosing them on
the split they are scored on flatters the score; the "held-out" column estimates by how much: the mIoU on one half of
the images when the shape and threshold are chosen on the other half (repeated random halves of the source photos,
so the crops of one photo stay on one side).

    python -m drywall_qa.calibrate --model runs/lite/best --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from drywall_qa import scale_choice
from drywall_qa.cli_args import add_engine_arguments, count_arg, description, engine_from_args, path_arg
from drywall_qa.data import DATASETS, CocoSplit, data_root, source_group, split_dir
from drywall_qa.errors import InputError, ModelLoadError
from drywall_qa.evaluation import Progress, Split, predictions_over
from drywall_qa.metrics import ThresholdSweep
from drywall_qa.postprocess import SETTINGS_FILE, PostprocessSettings
from drywall_qa.presence import PresenceRecords, fit_platt
from drywall_qa.segmenter import Segmenter
from drywall_qa.shapes import SHAPES
from drywall_qa.tiling import ScalePolicy


@dataclass
class ValidationRecords:
    """What calibration learns from: presence logits of every prompt on every image, and per prompt and output
    shape a threshold sweep over its own dataset's images."""

    presence: PresenceRecords = field(default_factory=PresenceRecords)
    sweeps: dict[str, dict[str, ThresholdSweep]] = field(default_factory=dict)
    #: per prompt, the source photo (:func:`~drywall_qa.data.source_group`) of each image its sweeps hold
    groups: dict[str, list[str]] = field(default_factory=dict)


def collect(segmenter: Segmenter, splits: Mapping[str, Split], limit: int | None = None,
            progress: Progress | None = None, shapes: Sequence[str] = SHAPES) -> ValidationRecords:
    """Run every registered prompt of ``splits``' datasets (name → split) over the first ``limit`` images of each
    split; presence is labelled positive on the prompt's own dataset's images that hold a target."""
    prompts = [p for name in splits for p in DATASETS[name].prompts]
    records, done = ValidationRecords(), 0
    total = sum(len(split) if limit is None else min(limit, len(split)) for split in splits.values())
    for name, split in splits.items():
        own = set(DATASETS[name].prompts)
        for _, sample, predictions, _ in predictions_over(segmenter, split, prompts, None, limit, desc=name):
            for prediction in predictions:
                mine = prediction.prompt in own
                records.presence.add(prediction.prompt, prediction.presence_logit,
                                     mine and bool(sample.mask.any()))
                if mine:
                    if prediction.prompt not in records.sweeps:
                        records.sweeps[prediction.prompt] = {s: ThresholdSweep(shape=s) for s in shapes}
                    for sweep in records.sweeps[prediction.prompt].values():
                        sweep.add(prediction.probabilities, sample.mask)
                    records.groups.setdefault(prediction.prompt, []).append(source_group(sample.file_name))
            done += 1
            if progress is not None:
                progress(done, total)
    return records


def choose_outputs(sweeps: Mapping[str, Mapping[str, ThresholdSweep]],
                   groups: Mapping[str, Sequence[str]] | None = None) -> dict[str, dict[str, Any]]:
    """Per prompt: the shape and threshold with the highest mIoU (``pixels`` on ties), with the mIoU and Dice
    there, the best mIoU of every shape, and the held-out mIoU (:func:`held_out_miou`, halves by ``groups`` when
    given)."""
    chosen = {}
    for prompt, by_shape in sweeps.items():
        results = {shape: sweep.result() for shape, sweep in by_shape.items()}
        best_miou = {shape: max(result["miou"]) for shape, result in results.items()}
        shape = max(results, key=lambda s: (best_miou[s], -SHAPES.index(s)))
        result = results[shape]
        index = result["thresholds"].index(result["best_threshold"])
        chosen[prompt] = {"shape": shape, "threshold": result["best_threshold"], "miou": result["miou"][index],
                          "dice": result["dice"][index], "miou_by_shape": best_miou,
                          "held_out_miou": held_out_miou(by_shape, (groups or {}).get(prompt))}
    return chosen


def held_out_miou(by_shape: Mapping[str, ThresholdSweep], groups: Sequence[str] | None = None) -> float:
    """The held-out mIoU (:func:`held_out_score`) of choosing a shape and threshold from ``by_shape``'s sweeps."""
    ious = np.stack([sweep.per_image_iou() for sweep in by_shape.values()], axis=1)  # images × shapes × thresholds
    return held_out_score(ious.reshape(len(ious), -1), groups)


def held_out_score(scores: np.ndarray, groups: Sequence[str] | None = None, repeats: int = 20,
                   seed: int = 0) -> float:
    """Mean score on the held-out half of ``repeats`` random halvings, with the option (column of ``scores``,
    images × options) chosen by its mean on the other half (NaN below two groups): the chosen option's score on
    images it was not chosen on. ``groups`` (one per image, e.g. its source photo) keeps each group's images in one
    half, so crops of one photo never sit on both sides; None: every image is its own group."""
    labels = np.unique(np.asarray(groups if groups is not None else np.arange(len(scores))), return_inverse=True)[1]
    count = labels.max() + 1 if len(labels) else 0
    if count < 2:
        return float("nan")
    rng, held_out = np.random.default_rng(seed), []
    for _ in range(repeats):
        first = np.isin(labels, rng.permutation(count)[: count // 2])
        halves = np.flatnonzero(first), np.flatnonzero(~first)
        for fit, held in (halves, halves[::-1]):
            held_out.append(scores[held, np.argmax(scores[fit].mean(axis=0))].mean())
    return float(np.mean(held_out))


def fit_calibration(records: PresenceRecords) -> dict[str, dict[str, Any]]:
    """Per prompt: Platt ``a``, ``b``, and the AUROC (None below :data:`~drywall_qa.presence.MIN_AUROC_CLASS`
    images of a class) and class counts of the presence logits it was fitted on."""
    summary = records.summary()
    fits = {}
    for prompt, scores in records.scores.items():
        if not (summary[prompt]["positives"] and summary[prompt]["negatives"]):
            raise InputError(f"prompt {prompt!r}", "calibration needs images with and without its target",
                             "use splits with annotated images and at least two datasets (or a larger --limit)")
        a, b = fit_platt(scores, records.labels[prompt])
        fits[prompt] = {"a": a, "b": b, **{k: summary[prompt][k] for k in ("auroc", "positives", "negatives")}}
    return fits


def choose_scales(segmenter: Segmenter, splits: Mapping[str, Split],
                  limit: int | None = None) -> dict[str, dict[ScalePolicy, float]]:
    """Per prompt of every dataset in ``splits``: each candidate scale policy's score (:mod:`.scale_choice`), and
    the loaded model's settings take the best policies (so the thresholds are then chosen with them)."""
    backend = segmenter.backend
    policies = scale_choice.candidates(backend.tile_window, scale_choice.input_sides(backend))
    scores = {prompt: by_policy for name, split in splits.items()
              for prompt, by_policy in scale_choice.score_candidates(segmenter, name, split, policies,
                                                                     limit).items()}
    settings = segmenter.backend.settings
    segmenter.backend.settings = replace(settings, scales={**settings.scales, **scale_choice.choose(scores)})
    return scores


def store_calibration(segmenter: Segmenter, model_dir: Path, fits: Mapping[str, Mapping[str, Any]],
                      outputs: Mapping[str, Mapping[str, Any]]) -> None:
    """Replace the presence calibration with ``fits`` and update output shapes and thresholds with ``outputs``, in
    the loaded model's settings and in ``model_dir/postprocess.json`` (atomically); scale policies are kept as the
    loaded settings hold them."""
    old = segmenter.backend.settings
    settings = PostprocessSettings(thresholds={**old.thresholds, **{p: o["threshold"] for p, o in outputs.items()}},
                                   shapes={**old.shapes, **{p: o["shape"] for p, o in outputs.items()}},
                                   presence={p: (fit["a"], fit["b"]) for p, fit in fits.items()},
                                   scales=dict(old.scales))
    settings.save_pretrained(model_dir)
    segmenter.backend.settings = settings


def _auroc_cell(value: float | None) -> str:
    """The AUROC column: ``'   n/a'`` below :data:`~drywall_qa.presence.MIN_AUROC_CLASS` images of a class."""
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
    parser = argparse.ArgumentParser(prog="python -m drywall_qa.calibrate", description=description(__doc__))
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
        scales = {} if args.keep_scales else choose_scales(segmenter, splits, args.limit)
        records = collect(segmenter, splits, args.limit, shapes=args.shapes)
        fits, outputs = fit_calibration(records.presence), choose_outputs(records.sweeps, records.groups)
        store_calibration(segmenter, args.model, fits, outputs)
    except (InputError, ModelLoadError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    _print_scales(scales, segmenter.backend.settings.scales)
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
