"""What the Evaluate tab shows of a run: the per-prompt metrics table, the threshold-sweep plot, the panels gallery
and the robustness drop table and plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from matplotlib.figure import Figure

from drywall_qa.core.presence import describe_auroc
from drywall_qa.core.visualisation import palette
from drywall_qa.data.coco import source_group
from drywall_qa.evaluation.metrics import TOLERANCES
from drywall_qa.evaluation.robustness import drops_figure

#: the mask scores shown, as the CLI's table (the training loss stays in metrics.json)
SCORES = ("miou", "dice", "pooled_iou", "precision", "recall")


def metric_headers(tolerances: Sequence[int] = TOLERANCES) -> list[str]:
    """The metrics table's columns: the mask scores, then clDice and the tolerance F1 at each distance."""
    return ["Prompt", "mIoU", "mIoU 95 %", "Dice", "Pooled IoU", "Precision", "Recall", "clDice",
            *(f"F1 {d}px" for d in tolerances), "Threshold", "Best threshold", "Presence AUROC"]


HEADERS = metric_headers()
DROP_HEADERS = ["Perturbation", "Prompt", "mIoU", "mIoU drop", "Dice drop", "Pooled IoU drop"]


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per prompt: the aggregate scores (mIoU with its 95 % interval over source photos), the crack-aware
    ones (clDice, tolerance F1 at the run's distances), the threshold used, the sweep's best threshold and the
    presence AUROC with its class counts (``n/a`` below :data:`~drywall_qa.core.presence.MIN_AUROC_CLASS` images of a
    class)."""
    tolerances = metrics.get("tolerances") or ()
    crack = ["cldice", *(f"tol_f1_{d}px" for d in tolerances)]
    rows = []
    for prompt, m in metrics["prompts"].items():
        best = metrics["threshold_sweep"][prompt]["best_threshold"]
        scores = [round(m[k], 3) for k in SCORES]
        rows.append([prompt, scores[0], _interval(metrics["intervals"]["prompts"][prompt], "miou"), *scores[1:],
                     *(round(m[k], 3) if k in m else None for k in crack),
                     m["threshold"], best, _auroc_cell(metrics.get("presence", {}).get(prompt))])
    return pd.DataFrame(rows, columns=metric_headers(tolerances))


def _auroc_cell(summary: dict[str, float | int | None] | None) -> str:
    """The presence AUROC, or ``n/a``; why it is missing is said once below the table (:func:`auroc_notes`)."""
    return "n/a" if summary is None or summary["auroc"] is None else f"{summary['auroc']:.3f}"


def auroc_notes(metrics: dict[str, Any]) -> str:
    """Why the presence AUROC is n/a, once per reason with the prompts it holds for and their class counts
    (:func:`~drywall_qa.core.presence.describe_auroc`); empty when every prompt has one."""
    missing: dict[str, list[str]] = {}
    for prompt in metrics["prompts"]:
        summary = metrics.get("presence", {}).get(prompt)
        if summary is None or summary["auroc"] is None:
            missing.setdefault(describe_auroc(summary).removeprefix("n/a — "), []).append(prompt)
    return "; ".join(f"presence AUROC n/a for {', '.join(prompts)}: {why}" for why, prompts in missing.items())


def _interval(bounds: dict[str, list[float]] | None, score: str) -> str:
    """``[low, high]`` of one score, or n/a (a single source photo)."""
    return "n/a" if bounds is None else "[{:.3f}, {:.3f}]".format(*bounds[score])


def drops_table(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The robustness rows: perturbed mIoU and the drops from the clean scores (positive = worse)."""
    return pd.DataFrame([[r["label"], r["prompt"], *(round(r[k], 4) for k in ("miou", "miou_drop", "dice_drop",
                                                                               "pooled_iou_drop"))] for r in rows],
                        columns=DROP_HEADERS)


#: line dashes and markers of the threshold-sweep curves, by prompt
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v")


def sweep_figure(metrics: dict[str, Any]) -> Figure:
    """mIoU and Dice against the threshold, one line per prompt, the threshold used marked (no pyplot state)."""
    figure = Figure(figsize=(9, 3.4), layout="constrained")
    axes = figure.subplots(1, 2, sharex=True)
    prompts = list(metrics["threshold_sweep"])
    for index, (prompt, color) in enumerate(zip(prompts, palette(len(prompts)))):
        sweep, rgb = metrics["threshold_sweep"][prompt], tuple(c / 255 for c in color)
        # synonyms often score alike: each line gets its own dash and marker, so none hides another
        style = {"linestyle": LINESTYLES[index % len(LINESTYLES)], "marker": MARKERS[index % len(MARKERS)],
                 "markevery": (index % 3, 3), "markersize": 4}
        for ax, key in zip(axes, ("miou", "dice")):
            ax.plot(sweep["thresholds"], sweep[key], color=rgb, label=prompt, **style)
            ax.axvline(metrics["prompts"][prompt]["threshold"], color=rgb, linestyle=":", linewidth=1)
    for ax, title in zip(axes, ("mIoU", "Dice")):
        ax.set(title=f"{title} vs threshold ({metrics['num_images']} images)", xlabel="threshold", ylim=(0, 1))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small", loc="best")
    return figure


def panel_files(out_dir: Path) -> list[tuple[str, str]]:
    """Gallery items: worst panels first, then the first images, captioned ``worst 1 · <photo>`` by their file names
    (a Roboflow export's hash left out)."""
    panels = out_dir / "panels"
    files = sorted(panels.glob("worst_*.png")) + sorted(panels.glob("first_*.png"))
    return [(str(f), _caption(f.stem)) for f in files]


def _caption(stem: str) -> str:
    kind, rank, name = stem.split("_", 2)
    return f"{kind} {int(rank) + 1} · {source_group(name)}"


def robustness_outputs(rows: list[dict[str, Any]] | None) -> tuple[dict, dict]:
    """Updates of the robustness table and plot: filled and shown after a robustness run, else hidden."""
    if not rows:
        return gr.update(visible=False, value=None), gr.update(visible=False, value=None)
    return gr.update(visible=True, value=drops_table(rows)), gr.update(visible=True, value=drops_figure(rows))
