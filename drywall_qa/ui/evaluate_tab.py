"""Evaluate tab: the CLI's ``evaluate_split`` on a split with a progress bar and a Stop button; per-prompt metrics,
threshold sweep plot, panels, and downloads of ``metrics.json`` / ``per_image.csv``.

A run writes into a hidden ``.partial-…`` folder that is renamed to ``<out>/evaluations/<split>-<time>`` only when
it completes; a stopped or failed run removes it, so an output folder is always a complete one.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from matplotlib.figure import Figure

from drywall_qa.errors import DrywallQAError
from drywall_qa.evaluate import evaluate_split
from drywall_qa.ui.messages import escape_md, guarded
from drywall_qa.ui.models import ModelCache
from drywall_qa.ui.prompts import parse_prompts
from drywall_qa.ui.splits import dataset_name, discover_splits, open_split, split_prompts, split_slug
from drywall_qa.ui.widgets import prompt_inputs, split_input, threshold_inputs, threshold_value
from drywall_qa.visualisation import palette

HEADERS = ["Prompt", "mIoU", "Dice", "Pooled IoU", "Precision", "Recall", "Loss", "Threshold", "Best threshold"]
DEFAULT_LIMIT = 20
DEFAULT_PANELS = 4


class EvaluationStopped(DrywallQAError):
    """The user pressed Stop; nothing was written."""


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per prompt: the aggregate scores, the threshold used and the sweep's best threshold."""
    rows = []
    for prompt, m in metrics["prompts"].items():
        best = metrics["threshold_sweep"][prompt]["best_threshold"]
        rows.append([prompt, *(round(m[k], 4) for k in ("miou", "dice", "pooled_iou", "precision", "recall",
                                                          "loss")), m["threshold"], best])
    return pd.DataFrame(rows, columns=HEADERS)


def sweep_figure(metrics: dict[str, Any]) -> Figure:
    """mIoU and Dice against the threshold, one line per prompt, the threshold used marked (no pyplot state)."""
    figure = Figure(figsize=(9, 3.4), layout="constrained")
    axes = figure.subplots(1, 2, sharex=True)
    prompts = list(metrics["threshold_sweep"])
    for prompt, color in zip(prompts, palette(len(prompts))):
        sweep, rgb = metrics["threshold_sweep"][prompt], tuple(c / 255 for c in color)
        for ax, key in zip(axes, ("miou", "dice")):
            ax.plot(sweep["thresholds"], sweep[key], color=rgb, label=prompt)
            ax.axvline(metrics["prompts"][prompt]["threshold"], color=rgb, linestyle=":", linewidth=1)
    for ax, title in zip(axes, ("mIoU", "Dice")):
        ax.set(title=f"{title} vs threshold ({metrics['num_images']} images)", xlabel="threshold", ylim=(0, 1))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small", loc="best")
    return figure


def panel_files(out_dir: Path) -> list[tuple[str, str]]:
    """Gallery items: worst panels first, then the first images, captioned by their file names."""
    panels = out_dir / "panels"
    files = sorted(panels.glob("worst_*.png")) + sorted(panels.glob("first_*.png"))
    return [(str(f), f.stem.replace("_", " ", 2)) for f in files]


class EvaluateTab:
    """Callbacks (tests call them directly) and the tab's layout."""

    def __init__(self, models: ModelCache, roots: Sequence[Path], out_dir: Path, max_images: int = 500) -> None:
        self.models, self.roots, self.out_dir, self.max_images = models, list(roots), Path(out_dir), max_images
        self._stops: set[str] = set()
        self._lock = threading.Lock()

    def stop(self, request: gr.Request) -> str:
        """Ask this session's running evaluation to stop after the current image."""
        with self._lock:
            self._stops.add(request.session_hash)
        return "Stopping after the current image…"

    def _stopped(self, session: str) -> bool:
        with self._lock:
            return session in self._stops

    @guarded(outputs=4)
    def run(self, key: str | None, split_value: str | None, selected: Sequence[str] | None, typed: str | None,
            tuned: bool, threshold: float, limit: float, panels: float, request: gr.Request,
            progress: gr.Progress = gr.Progress()) -> tuple:
        """``(status, metrics table, sweep plot, panels, downloads)``."""
        session = request.session_hash
        with self._lock:
            self._stops.discard(session)
        split = open_split(split_value, self.roots)
        prompts, notes = parse_prompts(selected, typed)
        model = self.models.get(key)
        total = min(len(split), max(1, min(int(limit or DEFAULT_LIMIT), self.max_images)))

        def report(done: int, of: int) -> None:
            if self._stopped(session):
                raise EvaluationStopped(f"stopped after {done} of {of} images; nothing was written")
            progress((done, of), desc="Evaluating")

        final = self.out_dir / "evaluations" / f"{split_slug(split)}-{time.strftime('%Y%m%d-%H%M%S')}"
        partial = final.with_name(f".partial-{final.name}-{uuid.uuid4().hex[:6]}")
        partial.mkdir(parents=True)
        try:
            metrics = evaluate_split(model, split, prompts, threshold_value(tuned, threshold), partial, limit=total,
                                     panels=int(panels), progress=report, dataset=dataset_name(split))
            final = _unique(final)
            os.replace(partial, final)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        timing = metrics["timing"]
        status = (f"Evaluated {total} of {len(split)} images × {len(prompts)} prompts with "
                  f"{escape_md(model.name)} in {timing['total_s']:.1f} s "
                  f"({1000 * timing['per_image_per_prompt_s']:.0f} ms per image per prompt) · "
                  f"saved in {escape_md(str(final))}")
        if notes:
            status += " · " + escape_md("; ".join(notes))
        return (status, metrics_table(metrics), sweep_figure(metrics), panel_files(final),
                [str(final / "metrics.json"), str(final / "per_image.csv")])

    def build(self, model_key: gr.State) -> None:
        """Lay out the tab and wire its events (inside a ``gr.Blocks`` context)."""
        choices = discover_splits(self.roots)
        with gr.Row():
            split = split_input(choices, "evaluate-split")
            limit = gr.Slider(1, self.max_images, min(DEFAULT_LIMIT, self.max_images), step=1,
                              label="Images", info="the first N images of the split", elem_id="evaluate-limit")
            panels = gr.Slider(0, 16, DEFAULT_PANELS, step=1, label="Panels", info="first N and worst N images drawn")
        with gr.Accordion("Prompts and threshold", open=False):
            selected, typed = prompt_inputs(split_prompts(choices[0][1], self.roots) if choices else [])
            tuned, threshold = threshold_inputs()
        with gr.Row():
            run = gr.Button("Evaluate", variant="primary", elem_id="evaluate-run", scale=3)
            stop = gr.Button("Stop", variant="stop", scale=1)
        status = gr.Markdown(elem_id="evaluate-status")
        table = gr.Dataframe(headers=HEADERS, interactive=False, elem_id="evaluate-table")
        plot = gr.Plot(label="Threshold sweep", elem_id="evaluate-plot")
        gallery = gr.Gallery(label="Panels: worst first, then the first images", columns=2, height="auto",
                             object_fit="contain", elem_id="evaluate-panels")
        files = gr.File(label="metrics.json and per_image.csv", file_count="multiple", interactive=False)
        split.change(lambda value: split_prompts(value, self.roots) or gr.skip(), split, selected,
                     api_visibility="private")
        run.click(self.run, [model_key, split, selected, typed, tuned, threshold, limit, panels],
                  [status, table, plot, gallery, files], concurrency_id="batch", concurrency_limit=1,
                  api_name="evaluate")
        stop.click(self.stop, None, status, queue=False, api_name="stop_evaluation")


def _unique(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``… when it exists (two runs finishing within the same second)."""
    candidate, n = path, 2
    while candidate.exists():
        candidate, n = path.with_name(f"{path.name}-{n}"), n + 1
    return candidate
