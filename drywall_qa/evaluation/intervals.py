"""How far a split's scores can be trusted: 95 % intervals by a bootstrap over source photos.

A Roboflow export holds several images of one source photo (crops, flips, re-exposures named
``<source>.rf.<hash>.jpg``). They share the wall, the light and the camera, so they are not independent samples,
and a bootstrap over images would give intervals far too narrow. Here whole source photos are resampled with
replacement: each resample draws as many sources as the split holds, and its score is the mean over every image of
the sources drawn (a source drawn twice counts its images twice), i.e. the split-level mean recomputed on another
plausible set of photos. The interval is the 2.5th and 97.5th percentiles of those means.

Everything is computed from the per-image scores already there, in one pass: per source the sums and image counts
are taken once, and each resample is then a weighted sum of them (weights: how often each source was drawn), so
thousands of resamples cost one matrix product. The draws are seeded, so a rerun gives the same interval; one seed
is used for every prompt and for paired differences, so two prompts or two models are judged on the same resamples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from drywall_qa.data.coco import source_group
from drywall_qa.evaluation.metrics import ImageScores

LEVEL, RESAMPLES, SEED = 0.95, 2000, 0


def interval_scores(tolerances: Sequence[int] | None) -> list[str]:
    """The scores given an interval: mIoU, Dice, and with crack scores clDice and the tolerance F1 at each distance."""
    crack = [] if tolerances is None else ["cldice", *(f"tol_f1_{d}px" for d in tolerances)]
    return ["miou", "dice", *crack]


def score_values(scores: Sequence[ImageScores], names: Sequence[str]) -> np.ndarray:
    """An ``images × names`` array of per-image scores (``miou`` is the image's IoU)."""
    fields = {"miou": "iou", "dice": "dice"}
    return np.array([[getattr(s, fields[n]) if n in fields else s.crack[n] for n in names] for s in scores],
                    dtype=np.float64).reshape(len(scores), len(names))


@dataclass(frozen=True)
class Sources:
    """The source photos of a list of images (:func:`~drywall_qa.data.coco.source_group`: the Roboflow file name before
    ``.rf.``, or the image's own name where there is none): ``names`` in order of first appearance, ``index`` per
    image the position of its source in ``names``."""

    names: list[str]
    index: np.ndarray

    @classmethod
    def of(cls, file_names: Sequence[str]) -> Sources:
        sources = [source_group(f) for f in file_names]
        names = list(dict.fromkeys(sources))
        position = {name: i for i, name in enumerate(names)}
        return cls(names=names, index=np.array([position[s] for s in sources], dtype=np.int64))

    def sums(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per source the sum of ``values`` (``images × k``) over its images, and its image count."""
        totals = np.zeros((len(self.names), values.shape[1]))
        np.add.at(totals, self.index, values)
        return totals, np.bincount(self.index, minlength=len(self.names)).astype(np.float64)


def resample_weights(sources: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """``resamples × sources``: how often each source is drawn in each resample of ``sources`` draws."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(sources, np.full(sources, 1 / sources), size=resamples).astype(np.float64)


def bootstrap_means(values: np.ndarray, sources: Sources, weights: np.ndarray) -> np.ndarray:
    """``resamples × k``: the mean of ``values`` (``images × k``) over the images of each resample's sources."""
    totals, counts = sources.sums(values)
    return (weights @ totals) / (weights @ counts)[:, None]


def percentile_interval(means: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """``k × 2``: the central ``level`` percentile interval of each column of ``means``."""
    tail = 100 * (1 - level) / 2
    return np.percentile(means, [tail, 100 - tail], axis=0).T


def intervals(per_prompt: Mapping[str, Sequence[ImageScores]], file_names: Sequence[str],
              tolerances: Sequence[int] | None, resamples: int = RESAMPLES, seed: int = SEED) -> dict:
    """The ``metrics["intervals"]`` block: method, level, resamples, seed, number of sources, and per prompt
    ``{score: [low, high]}`` for :func:`interval_scores` (None per prompt with fewer than two sources, where the
    spread between photos cannot be seen). ``file_names``: the images scored, in the order of each prompt's scores."""
    names, sources = interval_scores(tolerances), Sources.of(file_names)
    weights = resample_weights(len(sources.names), resamples, seed) if len(sources.names) > 1 else None
    prompts: dict[str, dict[str, list[float]] | None] = {}
    for prompt, scores in per_prompt.items():
        if weights is None:
            prompts[prompt] = None
            continue
        bounds = percentile_interval(bootstrap_means(score_values(scores, names), sources, weights))
        prompts[prompt] = {name: [float(low), float(high)] for name, (low, high) in zip(names, bounds)}
    return {"method": "percentile bootstrap over source photos", "level": LEVEL, "resamples": resamples,
            "seed": seed, "sources": len(sources.names), "prompts": prompts}


def per_source_rows(per_prompt: Mapping[str, Sequence[ImageScores]], file_names: Sequence[str],
                    tolerances: Sequence[int] | None) -> list[dict]:
    """``per_source.csv``'s rows: per source photo and prompt, its image count and mean :func:`interval_scores`."""
    names, sources = interval_scores(tolerances), Sources.of(file_names)
    rows = []
    for prompt, scores in per_prompt.items():
        totals, counts = sources.sums(score_values(scores, names))
        for source, total, count in zip(sources.names, totals, counts):
            rows.append({"source": source, "prompt": prompt, "images": int(count),
                         **{name: round(float(value / count), 4) for name, value in zip(names, total)}})
    return rows


def per_source_fields(tolerances: Sequence[int] | None) -> tuple[str, ...]:
    """The columns of ``per_source.csv``."""
    return ("source", "prompt", "images", *interval_scores(tolerances))


def paired_difference(first: np.ndarray, second: np.ndarray, file_names: Sequence[str],
                      resamples: int = RESAMPLES, seed: int = SEED) -> tuple[np.ndarray, np.ndarray | None]:
    """Two models scored on the same images (``images × k`` each): the mean of ``second - first`` per column and
    its 95 % interval (``k × 2``) by the bootstrap over source photos, None with fewer than two sources. Each
    resample takes the same photos for both models, so what the photos share (an easy wall, a hard one) cancels:
    an interval clear of 0 says the difference outlasts the choice of photos."""
    difference = np.asarray(second, np.float64) - np.asarray(first, np.float64)
    sources = Sources.of(file_names)
    if len(sources.names) < 2:
        return difference.mean(axis=0), None
    weights = resample_weights(len(sources.names), resamples, seed)
    return difference.mean(axis=0), percentile_interval(bootstrap_means(difference, sources, weights))
