"""Tune a checkpoint's post-processing on validation splits and store it beside its weights (``postprocess.json``,
:mod:`drywall_qa.core.postprocess`).

For every prompt of every registered dataset:

* the output shape (:mod:`drywall_qa.core.shapes`: ``pixels`` or ``boxes``) and threshold with the highest mIoU on the
  prompt's own dataset, written as ``shapes`` and ``thresholds``;
* the scale policy (:mod:`drywall_qa.core.tiling`: whole photo, tiles, or both) with the best mean mIoU on the photos
  and on the wide shots they make (:mod:`drywall_qa.calibration.scale_choice`), written as ``scales``; thresholds and
  shapes are then chosen with it;
* the image-level presence score: positives are that dataset's images with an annotated target, negatives the
  other datasets' images (and its own images without annotations); a Platt fit (:mod:`drywall_qa.core.presence`) is
  written as ``presence: {prompt: [a, b]}``.

Predictions of that checkpoint then use these shapes and thresholds and carry calibrated presence. Choosing them on
the split they are scored on flatters the score; the "held-out" column estimates by how much: the mIoU on one half of
the images when the shape and threshold are chosen on the other half (repeated random halves of the source photos,
so the crops of one photo stay on one side).

    drywall-qa calibrate --model runs/lite/best --data-root ../shared/data
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from drywall_qa.calibration import scale_choice
from drywall_qa.core.errors import InputError
from drywall_qa.core.postprocess import PostprocessSettings
from drywall_qa.core.presence import PresenceRecords, fit_platt
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.core.shapes import SHAPES
from drywall_qa.core.tiling import ScalePolicy
from drywall_qa.data.coco import DATASETS, source_group
from drywall_qa.evaluation import Progress, Split, predictions_over
from drywall_qa.evaluation.metrics import ThresholdSweep


@dataclass
class ValidationRecords:
    """What calibration learns from: presence logits of every prompt on every image, and per prompt and output
    shape a threshold sweep over its own dataset's images."""

    presence: PresenceRecords = field(default_factory=PresenceRecords)
    sweeps: dict[str, dict[str, ThresholdSweep]] = field(default_factory=dict)
    #: per prompt, the source photo (:func:`~drywall_qa.data.coco.source_group`) of each image its sweeps hold
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
    """Per prompt: Platt ``a``, ``b``, and the AUROC (None below :data:`~drywall_qa.core.presence.MIN_AUROC_CLASS`
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
                  limit: int | None = None) -> tuple[Segmenter, dict[str, dict[ScalePolicy, float]]]:
    """Per prompt of every dataset in ``splits``: each candidate scale policy's score (:mod:`.scale_choice`); and
    a segmenter of the same model whose settings take the best policies (so that the thresholds are then chosen
    with them)."""
    backend = segmenter.backend
    policies = scale_choice.candidates(backend.tile_window, scale_choice.input_sides(backend))
    scores = {prompt: by_policy for name, split in splits.items()
              for prompt, by_policy in scale_choice.score_candidates(segmenter, name, split, policies,
                                                                     limit).items()}
    settings = backend.settings
    chosen = replace(settings, scales={**settings.scales, **scale_choice.choose(scores)})
    return segmenter.with_settings(chosen), scores


def store_calibration(settings: PostprocessSettings, model_dir: Path, fits: Mapping[str, Mapping[str, Any]],
                      outputs: Mapping[str, Mapping[str, Any]]) -> PostprocessSettings:
    """``settings`` with the presence calibration replaced by ``fits`` and output shapes and thresholds updated
    with ``outputs`` (scale policies as ``settings`` holds them), written to ``model_dir/postprocess.json``
    (atomically); returns them."""
    updated = PostprocessSettings(thresholds={**settings.thresholds, **{p: o["threshold"] for p, o in outputs.items()}},
                                  shapes={**settings.shapes, **{p: o["shape"] for p, o in outputs.items()}},
                                  presence={p: (fit["a"], fit["b"]) for p, fit in fits.items()},
                                  scales=dict(settings.scales))
    updated.save_pretrained(model_dir)
    return updated
