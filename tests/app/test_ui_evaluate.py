"""Evaluate tab callbacks: a complete run, a stopped run that keeps its partial results, refused splits, the
robustness report and the presence AUROC against a negatives split."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from matplotlib.figure import Figure

from drywall_qa.app.evaluate.tab import EvaluateForm, EvaluateTab
from drywall_qa.app.messages import escape_md
from drywall_qa.app.models import ModelCache
from tests.helpers import make_split

PROMPTS = ["segment crack", "segment wall crack"]


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache(device="cpu")


@pytest.fixture
def tab(models: ModelCache, tmp_path: Path) -> EvaluateTab:
    make_split(tmp_path / "data" / "cracks" / "valid", n=5)
    return EvaluateTab(models, [tmp_path / "data"], tmp_path / "out")


def run(tab: EvaluateTab, key: Path, limit: int = 3, progress=lambda *a, **k: None, value: str | None = None,
        session: str = "s1", **extra) -> tuple:
    value = value or str(tab.roots[0] / "cracks" / "valid")
    form = EvaluateForm(model=str(key), split=value, selected=PROMPTS, limit=limit, panels=2, **extra)
    return tab.run(form, SimpleNamespace(session_hash=session), progress)


def test_run_scores_the_first_images_and_offers_downloads(tab: EvaluateTab, tiny_lite_dir: Path) -> None:
    calls = []
    status, table, figure, gallery, files, drops, drops_plot = run(tab, tiny_lite_dir,
                                                                   progress=lambda *a, **k: calls.append(a))
    assert "Evaluated 3 of 5 images" in status
    assert list(table["Prompt"]) == PROMPTS
    assert all(0 <= v <= 1 for v in table["mIoU"])
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    assert [call[0] for call in calls] == [(1, 3), (2, 3), (3, 3)]
    [folder] = (tab.out_dir / "evaluations").iterdir()
    assert folder.name.startswith("cracks__valid-")
    assert [Path(f).name for f in files] == ["metrics.json", "per_image.csv", "per_source.csv"]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["num_images"] == 3 and list(metrics["prompts"]) == PROMPTS and metrics["dataset"] == "cracks"
    assert table["mIoU"][0] == pytest.approx(metrics["prompts"][PROMPTS[0]]["miou"], abs=5e-4)
    assert table["mIoU 95 %"][0] == "[{:.3f}, {:.3f}]".format(*metrics["intervals"]["prompts"][PROMPTS[0]]["miou"])
    assert len(gallery) == 4 and all(Path(path).is_file() for path, _ in gallery)   # 2 worst + 2 first
    assert gallery[0][1].startswith("worst 1 · ") and gallery[2][1].startswith("first 1 · ")
    assert drops["visible"] is False and drops_plot["visible"] is False      # no robustness report asked for


def test_stop_keeps_the_partial_results(tab: EvaluateTab, tiny_lite_dir: Path) -> None:
    def press_stop(*args, **kwargs) -> None:
        tab.stop(SimpleNamespace(session_hash="s1"))

    status, table, _, _, files, _, _ = run(tab, tiny_lite_dir, limit=5, progress=press_stop)
    assert status.startswith("Stopped after 1 of 5 images: partial results below and saved as ")
    assert "Error" not in status and list(table["Prompt"]) == PROMPTS
    [folder] = (tab.out_dir / "evaluations").iterdir()
    assert folder.name.endswith("-stopped") and status.count(escape_md(folder.name)) == 1
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["partial"] is True and metrics["stopped_after"] == {"done": 1, "of": 5, "unit": "images"}
    assert metrics["num_images"] == 1
    assert [Path(f).name for f in files] == ["metrics.json", "per_image.csv", "per_source.csv"]
    status, *_ = run(tab, tiny_lite_dir)          # the next run of the session is not stopped
    assert "Evaluated 3" in status


def test_another_sessions_stop_does_not_stop_this_run(tab: EvaluateTab, tiny_lite_dir: Path) -> None:
    status, *_ = run(tab, tiny_lite_dir, progress=lambda *a, **k: tab.stop(SimpleNamespace(session_hash="other")))
    assert "Evaluated 3" in status


def test_stop_during_robustness_keeps_the_clean_scores_and_the_passes_done(tab: EvaluateTab,
                                                                           tiny_lite_dir: Path) -> None:
    def stop_in_robustness(*args, **kwargs) -> None:
        if kwargs.get("desc") == "Robustness":
            tab.stop(SimpleNamespace(session_hash="s1"))

    status, _, _, _, _, drops, _ = run(tab, tiny_lite_dir, limit=2, progress=stop_in_robustness,
                                       perturbations=["blur"])
    assert status.startswith("Stopped after 1 of 2 perturbed passes: partial results below")
    [folder] = (tab.out_dir / "evaluations").iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["num_images"] == 2 and len(metrics["robustness"]) == len(PROMPTS) == len(drops["value"])
    assert metrics["stopped_after"] == {"done": 1, "of": 2, "unit": "perturbed passes"}


def test_stop_while_waiting_is_not_an_error(tab: EvaluateTab, tiny_lite_dir: Path) -> None:
    entered, release = threading.Event(), threading.Event()

    def other_job() -> None:
        with tab.lane.admit("other"):
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=other_job)
    thread.start()
    assert entered.wait(5)
    def press_stop(*args, **kwargs) -> None:          # called with "Waiting: 1 job(s) ahead"
        tab.stop(SimpleNamespace(session_hash="s1"))

    try:
        status, *outputs = run(tab, tiny_lite_dir, progress=press_stop)
    finally:
        release.set()
        thread.join(5)
    assert status == "Stopped while waiting for another job to finish; nothing was run." and outputs == [None] * 6


def test_refused_split_and_missing_model_give_messages(tab: EvaluateTab, tiny_lite_dir: Path,
                                                        tmp_path: Path) -> None:
    status, *outputs = run(tab, tiny_lite_dir, value=str(make_split(tmp_path / "elsewhere")))
    assert "outside the configured data folders" in status and outputs == [None] * 6
    status, *_ = run(tab, tmp_path / "no-such-model")
    assert "no-such-model" in status and "not found" in status
    assert not (tab.out_dir / "evaluations").exists() or not any((tab.out_dir / "evaluations").iterdir())


def test_robustness_report_and_presence_auroc_against_negatives(tab: EvaluateTab, tiny_lite_dir: Path) -> None:
    negatives = make_split(tab.roots[0] / "drywall-join-detect" / "valid", n=2, seed=1)
    calls = []
    status, table, _, _, files, drops, drops_plot = run(
        tab, tiny_lite_dir, limit=2, progress=lambda *a, **k: calls.append((a, k)), perturbations=["blur"],
        negatives=str(negatives))
    assert "Evaluated 2 of 5" in status and "2 negative images" in status
    [folder] = (tab.out_dir / "evaluations").iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["negatives"]["num_images"] == 2
    for prompt, auroc in zip(table["Prompt"], table["Presence AUROC"]):           # 2 with / 2 without: too few
        assert metrics["presence"][prompt]["negatives"] == 2 and metrics["presence"][prompt]["auroc"] is None
        assert auroc == "n/a"
    assert f"presence AUROC n/a for {', '.join(PROMPTS)}: add a negatives split (" in status.replace("\\", "")
    assert "/ 2 without the target" in status
    assert [Path(f).name for f in files] == ["metrics.json", "per_image.csv", "per_source.csv", "robustness.csv",
                                             "robustness.png"]
    rows = list(csv.DictReader((folder / "robustness.csv").open()))
    assert [(r["level"], r["prompt"]) for r in rows] == [(level, p) for level in ("low", "high") for p in PROMPTS]
    assert len(metrics["robustness"]) == 4
    table_by_prompt = dict(zip(table["Prompt"], table["mIoU"]))
    shown = drops["value"]
    assert drops["visible"] is True and drops_plot["visible"] is True and len(shown) == 4
    for _, row in shown.iterrows():          # drop = clean mIoU (metrics table) − perturbed mIoU
        assert row["mIoU drop"] == pytest.approx(table_by_prompt[row["Prompt"]] - row["mIoU"], abs=7e-4)
    assert calls[-2:] == [(((done, 2),), {"desc": "Robustness"}) for done in (1, 2)]      # one per perturbed pass


def test_negatives_split_must_differ_from_the_evaluated_one(tab: EvaluateTab, tiny_lite_dir: Path) -> None:
    status, *outputs = run(tab, tiny_lite_dir, negatives=str(tab.roots[0] / "cracks" / "valid"))
    assert "is the evaluated split itself" in status and outputs == [None] * 6


def test_oversized_jobs_are_refused_before_any_work(tab: EvaluateTab, tiny_lite_dir: Path, monkeypatch) -> None:
    from drywall_qa.serving import limits as job_limits

    monkeypatch.setattr(job_limits, "MAX_JOB_PASSES", 20)
    status, *outputs = run(tab, tiny_lite_dir, limit=5, perturbations=["blur"])     # 5 × 2 × 3 = 30 passes
    assert "30 model passes, the limit per request is 20" in status and outputs == [None] * 6
    assert not (tab.out_dir / "evaluations").exists()
    assert "Evaluated 3 of 5" in run(tab, tiny_lite_dir, limit=3)[0]                   # 3 × 2 = 6 passes


def test_old_evaluations_beyond_the_retention_are_removed(models: ModelCache, tiny_lite_dir: Path,
                                                          tmp_path: Path) -> None:
    from drywall_qa.serving.retention import Retention

    make_split(tmp_path / "data" / "cracks" / "valid", n=2)
    tab = EvaluateTab(models, [tmp_path / "data"], tmp_path / "out", retention=Retention(count=2))
    for _ in range(3):
        assert "Evaluated" in run(tab, tiny_lite_dir, limit=1)[0]
    assert len(list((tab.out_dir / "evaluations").iterdir())) == 2


def test_sweep_curves_of_synonyms_stay_apart() -> None:
    from drywall_qa.app.evaluate.views import sweep_figure

    sweep = {"thresholds": [0.1, 0.5, 0.9], "miou": [0.2, 0.5, 0.3], "dice": [0.3, 0.6, 0.4]}
    metrics = {"num_images": 3, "threshold_sweep": {"segment crack": sweep, "segment wall crack": sweep},
               "prompts": {"segment crack": {"threshold": 0.5}, "segment wall crack": {"threshold": 0.5}}}
    first, second = sweep_figure(metrics).axes[0].get_lines()[::2]       # the curves (axvlines in between)
    assert (first.get_linestyle(), first.get_marker()) != (second.get_linestyle(), second.get_marker())


def test_stop_from_a_session_without_an_evaluation_keeps_nothing(tab: EvaluateTab) -> None:
    for index in range(20):
        assert tab.stop(SimpleNamespace(session_hash=f"visitor{index}")).startswith("No evaluation")
    assert tab._stops == set() and tab._running == set()
