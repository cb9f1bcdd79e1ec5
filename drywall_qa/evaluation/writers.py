"""What an evaluation writes: titled panels of the first and worst images, PNGs and CSV tables, each written
to a temporary name and renamed."""

from __future__ import annotations

import csv
import heapq
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from drywall_qa.core.atomic import write_atomic
from drywall_qa.core.file_names import safe_name
from drywall_qa.core.imaging import write_png
from drywall_qa.core.segmenter import Prediction
from drywall_qa.core.visualisation import panel
from drywall_qa.data.coco import Sample, source_group
from drywall_qa.evaluation.metrics import ImageScores, crack_score_names
from drywall_qa.evaluation.robustness import (
    REPORTED,
)

PANEL_GLOB = ("first_*.png", "worst_*.png")
CSV_FIELDS = ("image", "prompt", "iou", "dice", "loss", "pred_area", "true_area", "pred_width", "true_width",
              "presence")

ROBUSTNESS_FIELDS = ("perturbation", "level", "strength", "label", "prompt",
                     *(name for metric in REPORTED for name in (metric, f"{metric}_drop")))


def csv_fields(tolerances: Sequence[int] | None) -> tuple[str, ...]:
    """The columns of per_image.csv: :data:`CSV_FIELDS`, then the crack scores at ``tolerances`` (none when None)."""
    return CSV_FIELDS if tolerances is None else (*CSV_FIELDS, *crack_score_names(tolerances))


class PanelWriter:
    """Writes the first ``n`` panels at once and keeps the rendered panels of the ``n`` lowest-IoU images seen so
    far (by the first prompt; ties keep the earlier image), so memory stays bounded by ``n``."""

    def __init__(self, directory: Path, n: int) -> None:
        self.directory, self.n = directory, n
        directory.mkdir(parents=True, exist_ok=True)
        for pattern in PANEL_GLOB:          # panels of an earlier run in the same folder would be mistaken for ours
            for old in directory.glob(pattern):
                old.unlink()
        self._worst: list[tuple[float, int, str, np.ndarray]] = []   # (-iou, -index, stem, panel): heap top = best

    def offer(self, index: int, sample: Sample, predictions: Sequence[Prediction],
              scores: Sequence[ImageScores]) -> None:
        key = (-scores[0].iou, -index)
        first = index < self.n
        worst = self.n > 0 and (len(self._worst) < self.n or key > self._worst[0][:2])
        if not (first or worst):
            return
        titled = [(f"{p.prompt} · IoU {s.iou:.2f}", p.mask) for p, s in zip(predictions, scores)]
        name = f"#{index + 1} {source_group(Path(sample.file_name).name)}"     # the hash would push the number out
        rendered = panel(sample.image, sample.mask, titled, name=name)
        stem = safe_name(Path(sample.file_name).stem)
        if first:
            write_png(self.directory / f"first_{index:03d}_{stem}.png", rendered)
        if worst and len(self._worst) < self.n:
            heapq.heappush(self._worst, (*key, stem, rendered))
        elif worst:
            heapq.heapreplace(self._worst, (*key, stem, rendered))

    def finish(self) -> None:
        """Write the worst panels, worst first."""
        for rank, (_, _, stem, rendered) in enumerate(sorted(self._worst, key=lambda e: e[:2], reverse=True)):
            write_png(self.directory / f"worst_{rank:03d}_{stem}.png", rendered)


def write_csv(path: Path, rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue())
