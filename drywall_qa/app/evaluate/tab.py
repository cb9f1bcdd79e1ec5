"""Evaluate tab: the CLI's ``evaluate_split`` on a split with a progress bar and a Stop button; per-prompt metrics,
threshold sweep plot, panels, and downloads of ``metrics.json`` / ``per_image.csv`` / ``per_source.csv``. Optionally
a negatives split (images without the prompts' targets: presence AUROC in the table) and a robustness report
(``evaluate_robustness`` under the ticked perturbations: drop table, plot, ``robustness.csv``).

A run writes into a hidden ``.partial-…`` folder that is renamed to ``<out>/evaluations/<split>-<time>`` when it
ends; a failed run removes it. Stop is not a failure: the images scored so far are kept, as a folder named
``…-stopped`` whose ``metrics.json`` says ``"partial": true`` and where the run stopped.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr

from drywall_qa.app.evaluate.views import (
    DROP_HEADERS,
    HEADERS,
    auroc_notes,
    metrics_table,
    panel_files,
    robustness_outputs,
    sweep_figure,
)
from drywall_qa.app.forms import SplitForm, handler, named_inputs
from drywall_qa.app.messages import cleared, escape_md, guarded, skipped_note
from drywall_qa.app.models import ModelCache, SharedModel
from drywall_qa.app.prompts import parse_prompts
from drywall_qa.app.widgets import (
    bound_image_limit,
    image_limit_input,
    prompt_inputs,
    split_input,
    threshold_inputs,
    threshold_value,
    whole_number,
)
from drywall_qa.core.errors import InputError
from drywall_qa.data.discovery import (
    ConfinedSplit,
    dataset_name,
    discover_splits,
    open_split,
    split_prompts,
    split_slug,
)
from drywall_qa.evaluation import (
    EvaluationSettings,
    PanelWriter,
    evaluate_robustness,
    evaluate_split,
    robustness_passes,
)
from drywall_qa.evaluation.robustness import LEVELS, PERTURBATIONS
from drywall_qa.serving.lanes import HeavyLane, JobStopped, client_address
from drywall_qa.serving.limits import check_job_size
from drywall_qa.serving.retention import PARTIAL_PREFIX, Retention, prune_evaluations

DEFAULT_LIMIT = 20
DEFAULT_PANELS = 4
MAX_PANELS = 16


@dataclass
class EvaluateForm(SplitForm):
    """A split job's controls plus the evaluation's own."""

    #: panels drawn: the first N and the worst N images
    panels: float | None = None
    #: names of :data:`~drywall_qa.evaluation.robustness.PERTURBATIONS` for the robustness report
    perturbations: Sequence[str] | None = None
    #: a split folder of images without the prompts' targets, for the presence AUROC
    negatives: str | None = None


class Evaluated(NamedTuple):
    status: str
    table: Any
    plot: Any
    panels: list[str] | None
    downloads: list[str] | None
    drops: Any
    drops_plot: Any


def negatives_split(value: str | None, split: ConfinedSplit, roots: Sequence[Path]) -> ConfinedSplit | None:
    """The chosen negatives split (None for none); :class:`InputError` when it is the evaluated split itself."""
    if not value:
        return None
    negatives = open_split(value, roots)
    if negatives.root.resolve() == split.root.resolve():
        raise InputError("negatives split", "is the evaluated split itself",
                         "choose a split whose images lack the prompts' targets (e.g. the other dataset's)")
    return negatives


class EvaluateTab:
    """Callbacks (tests call them directly) and the tab's layout."""

    def __init__(self, models: ModelCache, roots: Sequence[Path], out_dir: Path, max_images: int = 500,
                 lane: HeavyLane | None = None, retention: Retention | None = None) -> None:
        self.models, self.roots, self.out_dir, self.max_images = models, list(roots), Path(out_dir), max_images
        self.lane, self.retention = lane or HeavyLane(), retention or Retention()
        #: sessions with an evaluation waiting or running, and those of them asked to stop
        self._running: set[str] = set()
        self._stops: set[str] = set()
        self._lock = threading.Lock()

    def stop(self, request: gr.Request | None = None) -> str:
        """Ask this session's running or waiting evaluation to stop after the current image (a session without one
        leaves nothing behind)."""
        session = getattr(request, "session_hash", None) or "local"
        with self._lock:
            if session not in self._running:
                return "No evaluation of this session is running."
            self._stops.add(session)
        return "Stopping after the current image…"

    def _stopped(self, session: str) -> bool:
        with self._lock:
            return session in self._stops

    @staticmethod
    def _reporter(progress: gr.Progress, desc: str) -> Callable[[int, int], None]:
        """A ``progress(done, total)`` callback that moves the bar."""
        return lambda done, of: progress((done, of), desc=desc)

    @guarded(Evaluated)
    def run(self, form: EvaluateForm, request: gr.Request | None = None,
            progress: gr.Progress = gr.Progress()) -> Evaluated:
        """Evaluate the form's split: metrics table, sweep plot, panels and downloads, plus the robustness report
        when perturbations are ticked and the presence AUROC on the negatives split when one is chosen."""
        session = getattr(request, "session_hash", None) or "local"
        split = open_split(form.split, self.roots)
        negative_split = negatives_split(form.negatives, split, self.roots)
        prompts, notes = parse_prompts(form.selected, form.typed)
        total = min(len(split), whole_number(form.limit, "images", DEFAULT_LIMIT, 1, self.max_images))
        panel_count = whole_number(form.panels, "panels", DEFAULT_PANELS, 0, MAX_PANELS)
        perturbations = list(form.perturbations or [])
        negative_count = min(total, len(negative_split)) if negative_split is not None else 0
        check_job_size(total, negative_count, len(prompts), perturbations)
        with self._lock:
            self._running.add(session)
        try:
            with self.lane.admit(client_address(request), lambda: self._stopped(session),
                                 lambda ahead: progress(0, desc=f"Waiting: {ahead} job(s) ahead")):
                model = self.models.get(form.model)
                notes += model.prompt_notes(prompts)
                final, metrics = self._evaluate(model, split, negative_split, prompts,
                                                threshold_value(form.tuned, form.threshold), total, panel_count,
                                                perturbations, session, progress)
        except JobStopped:
            return cleared(Evaluated, "Stopped while waiting for another job to finish; nothing was run.")
        finally:
            with self._lock:
                self._running.discard(session)
                self._stops.discard(session)
        prune_evaluations(self.out_dir / "evaluations", self.retention, keep=final)
        status = _headline(metrics, len(split), len(prompts), model.name, final.name)
        if negative_split is not None:
            status += f" · {metrics['negatives']['num_images']} negative images for the presence AUROC"
        notes += [note for note in (skipped_note(split), skipped_note(negative_split), auroc_notes(metrics)) if note]
        if notes:
            status += " · " + escape_md("; ".join(notes))
        return Evaluated(status, metrics_table(metrics), sweep_figure(metrics), panel_files(final),
                         [str(final / name) for name in ("metrics.json", "per_image.csv", "per_source.csv",
                                                         "robustness.csv", "robustness.png")
                          if (final / name).is_file()],
                         *robustness_outputs(metrics.get("robustness")))

    def _evaluate(self, model: SharedModel, split: ConfinedSplit, negative_split: ConfinedSplit | None,
                  prompts: list[str], cutoff: float | None, total: int, panels: int, perturbations: list[str],
                  session: str, progress: gr.Progress) -> tuple[Path, dict]:
        """Write the evaluation into a hidden folder, renamed into place when it ends (``…-stopped`` when Stop
        ended it early); ``(folder, metrics)``."""
        final = self.out_dir / "evaluations" / f"{split_slug(split)}-{time.strftime('%Y%m%d-%H%M%S')}"
        partial = final.with_name(f"{PARTIAL_PREFIX}{final.name}-{uuid.uuid4().hex[:6]}")
        partial.mkdir(parents=True)
        stop = functools.partial(self._stopped, session)
        try:
            settings = EvaluationSettings(threshold=cutoff, limit=total, dataset=dataset_name(split))
            result = evaluate_split(model, split, prompts, settings=settings, negatives=negative_split,
                                    panels=PanelWriter(partial / "panels", panels),
                                    progress=self._reporter(progress, "Evaluating"), stop=stop)
            if perturbations and not result.partial:
                result.robustness = evaluate_robustness(model, split, prompts, perturbations, result,
                                                        settings=settings,
                                                        progress=self._reporter(progress, "Robustness"), stop=stop)
                passes, done = robustness_passes(perturbations), len(result.robustness) // len(prompts)
                if done < passes:
                    result.mark_stopped(done, passes, "perturbed passes")
            result.write(partial)
            final = unique_path(final.with_name(f"{final.name}-stopped") if result.partial else final)
            os.replace(partial, final)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return final, result.to_dict()

    def build(self, model_key: gr.State) -> None:
        """Lay out the tab and wire its events (inside a ``gr.Blocks`` context)."""
        choices = discover_splits(self.roots)
        with gr.Row():
            split = split_input(choices, "evaluate-split")
            limit = image_limit_input(choices, self.roots, self.max_images, DEFAULT_LIMIT, "Images", "evaluate-limit")
            panels = gr.Slider(0, MAX_PANELS, DEFAULT_PANELS, step=1, label="Panels",
                               info="first N and worst N images drawn")
        with gr.Accordion("Prompts and threshold", open=False):
            selected, typed = prompt_inputs(split_prompts(choices[0][1], self.roots) if choices else [])
            tuned, threshold = threshold_inputs()
        with gr.Accordion("Robustness and presence", open=False, elem_id="evaluate-extra"):
            perturbations = gr.CheckboxGroup(list(PERTURBATIONS), label="Robustness: perturbations",
                                             elem_id="evaluate-perturbations",
                                             info=f"the split is re-scored under each, at its "
                                             f"{' and '.join(LEVELS)} strengths (slow)")
            negatives = gr.Dropdown([("none", ""), *choices], value="", label="Negatives split",
                                    elem_id="evaluate-negatives",
                                    info="images without the prompts' targets (e.g. the other dataset's): "
                                    "presence AUROC in the table")
        with gr.Row():
            run = gr.Button("Evaluate", variant="primary", elem_id="evaluate-run", scale=3)
            stop = gr.Button("Stop", variant="stop", scale=1)
        status = gr.Markdown(elem_id="evaluate-status")
        table = gr.Dataframe(headers=HEADERS, interactive=False, wrap=True, elem_id="evaluate-table")
        plot = gr.Plot(label="Threshold sweep", elem_id="evaluate-plot")
        drops = gr.Dataframe(headers=DROP_HEADERS, interactive=False, visible=False, elem_id="evaluate-robustness",
                             label="Robustness: scores under each perturbation and their drop from the clean run")
        drops_plot = gr.Plot(label="mIoU drop per perturbation", visible=False, elem_id="evaluate-robustness-plot")
        # one panel per row: a panel is a strip of 3-4 tiles, unreadable when shrunk into a square grid cell
        gallery = gr.Gallery(label="Panels, worst first: the photo, its ground truth, each prompt's errors (green hit, "
                             "red extra, blue missed)", columns=1,
                             height="auto", object_fit="contain", elem_id="evaluate-panels")
        files = gr.File(label="metrics.json, per_image.csv, per_source.csv (and robustness.csv / .png)",
                        file_count="multiple", interactive=False)
        split.change(lambda value: split_prompts(value, self.roots) or gr.skip(), split, selected,
                     api_visibility="private")
        bound_image_limit(split, limit, self.roots, self.max_images)
        form = named_inputs(model=model_key, split=split, selected=selected, typed=typed, tuned=tuned,
                            threshold=threshold, limit=limit, panels=panels, perturbations=perturbations,
                            negatives=negatives)
        run.click(handler(self.run, EvaluateForm), inputs_kwargs=form,
                  outputs=Evaluated(status, table, plot, gallery, files, drops, drops_plot), concurrency_id="batch",
                  concurrency_limit=self.lane.capacity + 1, show_progress_on=table, api_name="evaluate")
        stop.click(self.stop, None, status, queue=False, api_name="stop_evaluation")


def _headline(metrics: dict, split_size: int, prompts: int, model: str, folder: str) -> str:
    """The status line's start: what was scored, how fast and where it was saved; led by where Stop ended a
    stopped run."""
    timing = metrics["timing"]
    scored = (f"{metrics['num_images']} of {split_size} images × {prompts} prompts with {escape_md(model)} in "
              f"{timing['total_s']:.1f} s ({1000 * timing['per_image_per_prompt_s']:.0f} ms per image per prompt)")
    if not metrics["partial"]:
        return f"Evaluated {scored} · saved as {escape_md(folder)}"
    stopped = metrics["stopped_after"]
    return (f"Stopped after {stopped['done']} of {stopped['of']} {stopped['unit']}: partial results below and saved "
            f"as {escape_md(folder)} · scored {scored}")


def unique_path(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``… when it exists (two runs finishing within the same second)."""
    candidate, n = path, 2
    while candidate.exists():
        candidate, n = path.with_name(f"{path.name}-{n}"), n + 1
    return candidate
