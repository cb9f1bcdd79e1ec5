"""What an evaluation finds (:class:`EvaluationResult`) and how it is written: ``metrics.json``, ``per_image.csv``,
``per_source.csv`` and, after a robustness pass, ``robustness.csv`` and ``robustness.png``. Scoring
(:mod:`.runner`) writes nothing but the panels it keeps while it runs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drywall_qa.core.atomic import write_atomic
from drywall_qa.evaluation.intervals import per_source_fields
from drywall_qa.evaluation.robustness import plot_drops
from drywall_qa.evaluation.writers import ROBUSTNESS_FIELDS, csv_fields, write_csv


@dataclass(kw_only=True)
class EvaluationResult:
    """A model's scores on a split, as ``metrics.json`` holds them (:meth:`to_dict`); per-prompt entries are keyed by
    the prompt's label (:func:`~drywall_qa.evaluation.runner.prompt_label`)."""

    dataset: str | None
    #: the split's folder
    split: str
    model: str
    #: the threshold asked for (None: each prompt's tuned one)
    threshold: float | None
    tiling: str
    #: distances (pixels) of the crack scores; None when they were not computed
    tolerances: list[int] | None
    #: images scored (fewer than asked when stopped)
    num_images: int
    #: per prompt: mIoU, Dice, loss, crack scores, the threshold and shape used, presence verdict counts
    prompts: dict[str, dict[str, Any]]
    #: per prompt: the presence AUROC and its class counts
    presence: dict[str, Any]
    timing: dict[str, float]
    model_size: dict[str, float]
    #: per prompt: scores at every threshold and the best one
    threshold_sweep: dict[str, dict[str, Any]]
    #: per prompt: whether it is an unknown concept, its closest calibrated prompt and their similarity
    concepts: dict[str, dict[str, Any]]
    #: 95 % intervals by a bootstrap over source photos (:mod:`.intervals`)
    intervals: dict[str, Any]
    #: annotations the split reader dropped from the whole file (None for a split that does not count them)
    skipped_annotations: int | None = None
    skipped_polygons: int | None = None
    #: the negatives split's detections, when one was given
    negatives: dict[str, Any] | None = None
    #: the run was stopped: ``{"done": 31, "of": 175, "unit": "images"}``
    stopped_after: dict[str, Any] | None = None
    #: rows of the robustness pass (:func:`~drywall_qa.evaluation.runner.evaluate_robustness`), when one ran
    robustness: list[dict[str, Any]] | None = None
    #: per image and prompt, the rows of ``per_image.csv``
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    #: per source photo, the rows of ``per_source.csv``
    source_rows: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def partial(self) -> bool:
        """Whether the run stopped before scoring everything it was asked to."""
        return self.stopped_after is not None

    def mark_stopped(self, done: int, of: int, unit: str) -> None:
        """Record that the run stopped after ``done`` of ``of`` ``unit`` (images, or robustness passes)."""
        self.stopped_after = {"done": done, "of": of, "unit": unit}

    def to_dict(self) -> dict[str, Any]:
        """The ``metrics.json`` document (everything but the per-image and per-source rows)."""
        document = {key: value for key, value in asdict(self).items() if key not in ("rows", "source_rows")}
        document["partial"] = self.partial
        return {key: value for key, value in document.items()
                if value is not None or key not in ("negatives", "stopped_after", "robustness")}

    def write(self, out_dir: str | Path) -> None:
        """Write ``metrics.json``, ``per_image.csv``, ``per_source.csv`` and, when a robustness pass ran,
        ``robustness.csv`` and ``robustness.png`` into ``out_dir``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_csv(out_dir / "per_image.csv", self.rows, csv_fields(self.tolerances))
        write_csv(out_dir / "per_source.csv", self.source_rows, per_source_fields(self.tolerances))
        if self.robustness is not None:
            write_csv(out_dir / "robustness.csv", self.robustness, ROBUSTNESS_FIELDS)
            write_atomic(out_dir / "robustness.png", plot_drops(self.robustness))
        write_atomic(out_dir / "metrics.json", json.dumps(self.to_dict(), indent=2) + "\n")
