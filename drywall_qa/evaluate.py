"""Score a model on a COCO split: every prompt on every image, one forward pass of the image encoder per image.

Writes ``metrics.json`` (per-prompt scores, threshold sweep, timing, model size), ``per_image.csv`` and titled
panels ``panels/first_NNN_<stem>.png`` / ``panels/worst_NNN_<stem>.png`` (worst by IoU of the first prompt).
Every file is written to a temporary name and renamed, so an interrupted run never leaves half a file.

    python -m drywall_qa.evaluate --split ../shared/data/cracks/valid --dataset cracks --out runs/eval-cracks
"""

from __future__ import annotations

import argparse
import csv
import heapq
import io
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from drywall_qa.data import DATASETS, CocoSplit, Sample, get_dataset
from drywall_qa.errors import InputError, ModelLoadError
from drywall_qa.metrics import ImageScores, ThresholdSweep, aggregate, score_image
from drywall_qa.segmenter import Prediction, Segmenter
from drywall_qa.visualisation import panel

Progress = Callable[[int, int], None]
CSV_FIELDS = ("image", "prompt", "iou", "dice", "loss", "pred_area", "true_area")
PANEL_GLOB = ("first_*.png", "worst_*.png")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to a temp file next to ``path``, fsync, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_png(path: Path, rgb: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    write_atomic(path, buffer.getvalue())


def _safe_stem(file_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(file_name).stem)[:80] or "image"


class _PanelWriter:
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
        rendered, stem = panel(sample.image, sample.mask, titled), _safe_stem(sample.file_name)
        if first:
            _write_png(self.directory / f"first_{index:03d}_{stem}.png", rendered)
        if worst and len(self._worst) < self.n:
            heapq.heappush(self._worst, (*key, stem, rendered))
        elif worst:
            heapq.heapreplace(self._worst, (*key, stem, rendered))

    def finish(self) -> None:
        """Write the worst panels, worst first."""
        for rank, (_, _, stem, rendered) in enumerate(sorted(self._worst, key=lambda e: e[:2], reverse=True)):
            _write_png(self.directory / f"worst_{rank:03d}_{stem}.png", rendered)


class _Totals:
    """Per-prompt scores, threshold sweeps and CSV rows, filled one image at a time."""

    def __init__(self, prompts: list[str]) -> None:
        self.prompts = prompts
        self.scores: dict[str, list[ImageScores]] = {p: [] for p in prompts}
        self.sweeps = {p: ThresholdSweep() for p in prompts}
        self.thresholds: dict[str, float] = {}
        self.rows: list[dict[str, Any]] = []

    def add(self, sample: Sample, predictions: Sequence[Prediction]) -> list[ImageScores]:
        image_scores = [score_image(p.mask, sample.mask, p.logits) for p in predictions]
        for prompt, prediction, score in zip(self.prompts, predictions, image_scores):
            self.scores[prompt].append(score)
            self.sweeps[prompt].add(prediction.probabilities, sample.mask)
            self.thresholds[prompt] = prediction.threshold
            self.rows.append({"image": sample.file_name, "prompt": prompt, "iou": score.iou, "dice": score.dice,
                              "loss": score.loss, "pred_area": score.pred_area, "true_area": score.true_area})
        return image_scores

    def per_prompt(self) -> dict[str, dict[str, float]]:
        return {p: {**aggregate(self.scores[p]), "threshold": self.thresholds[p]} for p in self.prompts}

    def sweep(self) -> dict[str, dict]:
        return {p: self.sweeps[p].result() for p in self.prompts}


def _check_prompts(prompts: Sequence[str]) -> list[str]:
    prompts = [p.strip() for p in prompts]
    if not prompts or not all(prompts):
        raise InputError("prompts", "empty prompt list or blank prompt", "give at least one non-empty prompt")
    if len(set(prompts)) != len(prompts):
        raise InputError("prompts", f"duplicate prompts in {prompts}", "list each prompt once")
    return prompts


def evaluate_split(segmenter: Segmenter, split: CocoSplit, prompts: Sequence[str], threshold: float | None = None,
                   out_dir: Path | None = None, limit: int | None = None, panels: int = 8,
                   progress: Progress | None = None, dataset: str | None = None) -> dict[str, Any]:
    """Score ``prompts`` on the first ``limit`` images of ``split`` (all when None) and return the metrics dict.

    ``threshold`` None uses each prompt's stored threshold (else 0.5). With ``out_dir``, writes metrics.json,
    per_image.csv and up to ``panels`` first and ``panels`` worst panels. ``progress(done, total)`` is called after
    each image. Timing counts only ``segmenter.predict`` (one call per image, all prompts).
    """
    prompts = _check_prompts(prompts)
    total = len(split) if limit is None else min(limit, len(split))
    if total <= 0:
        raise InputError(str(split.annotation_file), "no images to evaluate", "check the split or --limit")
    writer = _PanelWriter(Path(out_dir) / "panels", panels) if out_dir is not None else None
    totals, model_seconds = _Totals(prompts), 0.0
    for index in tqdm(range(total), desc="evaluate", unit="image", disable=None):
        sample = split[index]
        start = time.perf_counter()
        predictions = segmenter.predict(sample.image, prompts, threshold)
        model_seconds += time.perf_counter() - start
        image_scores = totals.add(sample, predictions)
        if writer is not None:
            writer.offer(index, sample, predictions, image_scores)
        if progress is not None:
            progress(index + 1, total)
    metrics = {
        "dataset": dataset, "split": str(split.root), "model": segmenter.name, "threshold": threshold,
        "num_images": total, "prompts": totals.per_prompt(),
        "timing": {"total_s": model_seconds, "per_image_per_prompt_s": model_seconds / (total * len(prompts))},
        "model_size": segmenter.model_size(), "threshold_sweep": totals.sweep(),
    }
    if writer is not None:
        writer.finish()
        _write_csv(Path(out_dir) / "per_image.csv", totals.rows)
        write_atomic(Path(out_dir) / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue())


def _threshold(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1 (exclusive)")
    return value


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} is below {minimum}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m drywall_qa.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", required=True, type=Path,
                        help="split folder holding _annotations.coco.json and the images, or the .json file itself")
    parser.add_argument("--dataset", choices=sorted(DATASETS), help="use this dataset's registered prompts")
    parser.add_argument("--prompts", nargs="+", help="prompts to score (override --dataset's); the first one "
                        "ranks the worst-image panels")
    parser.add_argument("--model", help="checkpoint folder, alias (lite, clipseg) or hub id; default: bundled model")
    parser.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--threshold", type=_threshold,
                        help="probability threshold for every prompt (default: the model's per-prompt thresholds, "
                        "else 0.5)")
    parser.add_argument("--limit", type=_count(1), help="score only the first N images")
    parser.add_argument("--panels", type=_count(0), default=8, help="first N and worst N images drawn (default 8)")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    return parser


def _print_summary(metrics: dict[str, Any], out_dir: Path) -> None:
    print(f"{metrics['num_images']} images, model {metrics['model']}")
    print(f"{'prompt':<32} {'mIoU':>6} {'Dice':>6} {'pooled':>6} {'thr':>5}")
    for prompt, m in metrics["prompts"].items():
        print(f"{prompt[:32]:<32} {m['miou']:6.3f} {m['dice']:6.3f} {m['pooled_iou']:6.3f} {m['threshold']:5.2f}")
    print(f"{metrics['timing']['per_image_per_prompt_s'] * 1000:.1f} ms per image per prompt; results in {out_dir}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.dataset is None and args.prompts is None:
        parser.error("give --dataset (registered prompts) or --prompts")
    try:
        prompts = args.prompts or list(get_dataset(args.dataset).prompts)
        split = CocoSplit(args.split)
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(str(args.out), f"cannot create the output folder ({err.strerror})",
                             "pass a writable --out folder") from err
        segmenter = Segmenter.load(args.model, device=args.device)
        metrics = evaluate_split(segmenter, split, prompts, args.threshold, args.out, limit=args.limit,
                                 panels=args.panels, dataset=args.dataset)
    except (InputError, ModelLoadError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    _print_summary(metrics, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
