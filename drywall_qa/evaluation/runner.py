"""The evaluation runner: every prompt on every image of a split (one image-encoder pass per image), per-prompt
scores, threshold sweeps, presence and concept records, and the robustness re-scoring."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from drywall_qa.core.errors import InputError
from drywall_qa.core.presence import PresenceRecords, verdict_counts
from drywall_qa.core.segmenter import Condition, Prediction, Segmenter, clean_prompt
from drywall_qa.data.coco import Sample
from drywall_qa.evaluation.intervals import intervals, per_source_rows
from drywall_qa.evaluation.metrics import (
    TOLERANCES,
    ImageScores,
    ThresholdSweep,
    aggregate,
    mean_width,
    score_image,
    skeleton,
)
from drywall_qa.evaluation.result import EvaluationResult
from drywall_qa.evaluation.robustness import (
    LEVELS,
    PERTURBATIONS,
    PerturbedSplit,
    drop_rows,
)
from drywall_qa.evaluation.writers import PanelWriter

Progress = Callable[[int, int], None]
Stop = Callable[[], bool]


class Split(Protocol):
    """What evaluation reads from a split: indexed samples and where they came from (``CocoSplit`` and views)."""

    root: Path
    annotation_file: Path

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> Sample: ...


@dataclass(frozen=True, kw_only=True)
class EvaluationSettings:
    """How to score a split."""

    #: None: each prompt's tuned threshold (else 0.5)
    threshold: float | None = None
    #: score only the first N images (all when None)
    limit: int | None = None
    #: distances (pixels) of the crack scores (clDice, tolerance precision, recall and F1 of
    #: :func:`~drywall_qa.evaluation.metrics.crack_scores`, a skeleton per mask); None skips them
    tolerances: Sequence[int] | None = TOLERANCES
    #: ``auto`` (each prompt's scale policy), ``off`` or ``on`` (see ``Segmenter.predict``)
    tiling: str = "auto"
    #: the registered dataset the prompts belong to, recorded in the result
    dataset: str | None = None


class _Totals:
    """Per-prompt scores, threshold sweeps and CSV rows, filled one image at a time; crack scores at ``tolerances``
    (none when None)."""

    def __init__(self, prompts: list[str], tolerances: Sequence[int] | None) -> None:
        self.prompts, self.tolerances = prompts, tolerances
        self.scores: dict[str, list[ImageScores]] = {p: [] for p in prompts}
        self.images: list[str] = []   # file names, in the order of each prompt's scores
        self.sweeps: dict[str, ThresholdSweep] = {}  # in the output shape of the prompt's predictions
        self.thresholds: dict[str, float] = {}
        self.shapes: dict[str, str] = {}
        self.concepts: dict[str, dict[str, Any]] = {}   # unknown_concept, closest_concept, concept_similarity
        self.rows: list[dict[str, Any]] = []
        self.presence = PresenceRecords()
        self.detections: dict[str, list[float]] = {p: [] for p in prompts}   # coverage on negative images
        self.verdicts: dict[str, list[tuple[float, bool]]] = {p: [] for p in prompts}   # (presence, mask found)

    def add(self, sample: Sample, predictions: Sequence[Prediction]) -> list[ImageScores]:
        truth_skeleton = skeleton(sample.mask) if self.tolerances is not None else None
        image_scores = [score_image(p.mask, sample.mask, p.logits, self.tolerances, truth_skeleton)
                        for p in predictions]
        true_width = mean_width(sample.mask)
        self.images.append(sample.file_name)
        for prompt, prediction, score in zip(self.prompts, predictions, image_scores):
            self.scores[prompt].append(score)
            if prompt not in self.sweeps:
                self.sweeps[prompt] = ThresholdSweep(shape=prediction.shape)
            self.sweeps[prompt].add(prediction.probabilities, sample.mask)
            self.thresholds[prompt], self.shapes[prompt] = prediction.threshold, prediction.shape
            self.concepts[prompt] = {"unknown_concept": prediction.unknown_concept,
                                     "closest_concept": prediction.closest_concept,
                                     "concept_similarity": prediction.concept_similarity}
            if prediction.presence is not None:
                self.presence.add(prompt, prediction.presence, bool(sample.mask.any()))
                self.verdicts[prompt].append((prediction.presence, bool(prediction.mask.any())))
            self.rows.append({"image": sample.file_name, "prompt": prompt, "iou": score.iou, "dice": score.dice,
                              "loss": score.loss, "pred_area": score.pred_area, "true_area": score.true_area,
                              "pred_width": mean_width(prediction.mask), "true_width": true_width,
                              "presence": prediction.presence, **score.crack})
        return image_scores

    def add_negative(self, predictions: Sequence[Prediction]) -> None:
        """An image known not to contain any prompt's target: presence labelled negative, detections counted."""
        for prompt, prediction in zip(self.prompts, predictions):
            if prediction.presence is not None:
                self.presence.add(prompt, prediction.presence, False)
            self.detections[prompt].append(prediction.coverage)

    def negatives(self) -> dict[str, dict[str, float | None]]:
        """Per prompt: fraction of negative images with any predicted pixel, and their mean predicted coverage
        (None before any negative image was scored)."""
        return {p: {"images_with_detections": float(np.mean(np.asarray(c) > 0)) if c else None,
                    "mean_coverage": float(np.mean(c)) if c else None} for p, c in self.detections.items()}

    def per_prompt(self) -> dict[str, dict[str, float]]:
        return {p: {**aggregate(self.scores[p]), "threshold": self.thresholds[p], "shape": self.shapes[p],
                    **verdict_counts(self.verdicts[p])} for p in self.prompts}

    def sweep(self) -> dict[str, dict]:
        return {p: self.sweeps[p].result() for p in self.prompts}

    def result(self, segmenter: Segmenter, split: Split, settings: EvaluationSettings, scored: int,
               model_seconds: float) -> EvaluationResult:
        """The scores of the ``scored`` images added, as a result."""
        tolerances = settings.tolerances
        return EvaluationResult(
            dataset=settings.dataset, split=str(split.root), model=segmenter.name, threshold=settings.threshold,
            tiling=settings.tiling, tolerances=None if tolerances is None else list(tolerances), num_images=scored,
            prompts=self.per_prompt(), presence=self.presence.summary(),
            timing={"total_s": model_seconds, "per_image_per_prompt_s": model_seconds / (scored * len(self.prompts))},
            model_size=segmenter.model_size(), threshold_sweep=self.sweep(), concepts=self.concepts,
            intervals=intervals(self.scores, self.images, tolerances), **_skipped(split), rows=self.rows,
            source_rows=per_source_rows(self.scores, self.images, tolerances))


def prompt_label(prompt: Condition) -> str:
    """The name a prompt's scores are filed under: the text, or a visual prompt's label."""
    return clean_prompt(prompt) if isinstance(prompt, str) else prompt.label


def _check_prompts(prompts: Sequence[Condition]) -> list[Condition]:
    prompts = [clean_prompt(p) if isinstance(p, str) else p for p in prompts]
    labels = [prompt_label(p) for p in prompts]
    if not prompts or not all(labels):
        raise InputError("prompts", "empty prompt list or blank prompt", "give at least one non-empty prompt")
    if len(set(labels)) != len(labels):
        raise InputError("prompts", f"duplicate prompts in {labels}", "list each prompt once")
    return prompts


def _image_count(split: Split, limit: int | None) -> int:
    total = len(split) if limit is None else min(limit, len(split))
    if total <= 0:
        raise InputError(str(split.annotation_file), "no images to evaluate", "check the split or --limit")
    return total


def predictions_over(segmenter: Segmenter, split: Split, prompts: Sequence[Condition], threshold: float | None = None,
                     limit: int | None = None, desc: str = "evaluate", tiling: str = "auto",
                     ) -> Iterator[tuple[int, Sample, list[Prediction], float]]:
    """``(index, sample, predictions, seconds)`` for the first ``limit`` images of ``split`` (all when None): one
    ``segmenter.predict`` call per image with every prompt (``tiling`` as there); ``seconds`` is the time that call
    took."""
    for index in tqdm(range(_image_count(split, limit)), desc=desc, unit="image", disable=None):
        sample = split[index]
        start = time.perf_counter()
        predictions = segmenter.predict(sample.image, prompts, threshold, tiling=tiling)
        yield index, sample, predictions, time.perf_counter() - start


def evaluate_split(segmenter: Segmenter, split: Split, prompts: Sequence[Condition], *,
                   settings: EvaluationSettings = EvaluationSettings(), negatives: Split | None = None,
                   panels: PanelWriter | None = None, progress: Progress | None = None,
                   stop: Stop | None = None) -> EvaluationResult:
    """Score ``prompts`` (text or visual) on the first ``settings.limit`` images of ``split`` (all when None).

    ``negatives``: a split whose images do not contain the prompts' targets (e.g. the other dataset's); its first
    ``limit`` images add negative examples to the presence AUROC (images of ``split`` count as positive when their
    mask is not empty) and report false detections (``result.negatives``). ``panels`` is offered every scored image
    (it keeps the first and the worst). ``progress(done, total)`` is called after each image; ``stop()`` is asked
    after each image, and once true the images scored so far make the result, marked partial. Timing counts only
    ``segmenter.predict`` on ``split`` (one call per image, all prompts). Nothing is written: see
    :meth:`EvaluationResult.write`.
    """
    prompts = _check_prompts(prompts)
    limit = settings.limit
    total = _image_count(split, limit)
    overall = total + (_image_count(negatives, limit) if negatives is not None else 0)
    totals = _Totals([prompt_label(p) for p in prompts], settings.tolerances)
    model_seconds, done, stopped = 0.0, 0, False
    for index, sample, predictions, seconds in predictions_over(segmenter, split, prompts, settings.threshold, limit,
                                                                tiling=settings.tiling):
        model_seconds, done = model_seconds + seconds, index + 1
        image_scores = totals.add(sample, predictions)
        if panels is not None:
            panels.offer(index, sample, predictions, image_scores)
        stopped = _report(progress, stop, done, overall)
        if stopped:
            break
    scored = done
    if negatives is not None and not stopped:
        for _, _, predictions, _ in predictions_over(segmenter, negatives, prompts, settings.threshold, limit,
                                                     desc="negatives", tiling=settings.tiling):
            totals.add_negative(predictions)
            done += 1
            if _report(progress, stop, done, overall):
                break
    if panels is not None:
        panels.finish()
    result = totals.result(segmenter, split, settings, scored, model_seconds)
    if negatives is not None:
        result.negatives = {"split": str(negatives.root), "num_images": done - scored,
                            "prompts": totals.negatives(), **_skipped(negatives)}
    if done < overall:
        result.mark_stopped(done, overall, "images")
    return result


def _report(progress: Progress | None, stop: Stop | None, done: int, total: int) -> bool:
    """Tell ``progress`` that ``done`` of ``total`` steps are done; whether to stop now (never after the last)."""
    if progress is not None:
        progress(done, total)
    return done < total and stop is not None and stop()


def _skipped(split: Split) -> dict[str, int | None]:
    """``skipped_annotations`` (left with nothing to draw) and ``skipped_polygons`` (degenerate) of a
    :class:`~drywall_qa.data.coco.CocoSplit`, over its whole annotation file; None for a view that does not count
    them."""
    return {name: getattr(split, name, None) for name in ("skipped_annotations", "skipped_polygons")}


def evaluate_robustness(segmenter: Segmenter, split: Split, prompts: Sequence[Condition],
                        perturbations: Sequence[str], clean: EvaluationResult, *,
                        settings: EvaluationSettings = EvaluationSettings(), progress: Progress | None = None,
                        stop: Stop | None = None) -> list[dict[str, Any]]:
    """Re-score ``split`` under each perturbation (names of
    :data:`~drywall_qa.evaluation.robustness.PERTURBATIONS`) at both strengths; one row per perturbation, strength
    and prompt with the scores and their drop from ``clean`` (the unperturbed result of the same split, prompts and
    settings). ``progress(done, total)`` is called after each of the :func:`robustness_passes` perturbed passes;
    once ``stop()`` is true, the rows of the passes done so far are returned.
    """
    runs = [(PERTURBATIONS[name], level, strength) for name in perturbations
            for level, strength in zip(LEVELS, PERTURBATIONS[name].strengths)]
    plain = replace(settings, tolerances=None)
    rows: list[dict[str, Any]] = []
    for done, (perturbation, level, strength) in enumerate(runs, start=1):
        perturbed = evaluate_split(segmenter, PerturbedSplit(split, perturbation, strength), prompts, settings=plain)
        rows += drop_rows(clean.prompts, perturbation, level, strength, perturbed.prompts)
        if _report(progress, stop, done, len(runs)):
            break
    return rows


def robustness_passes(perturbations: Sequence[str]) -> int:
    """How many perturbed passes :func:`evaluate_robustness` makes over the split: one per perturbation and
    strength."""
    return sum(len(PERTURBATIONS[name].strengths) for name in perturbations)
