"""Choosing among checkpoints on a validation split, and what that choice costs on photos it was not made on."""

from __future__ import annotations

import numpy as np
import pytest

from drywall_qa.calibration.selection import selection_cost
from drywall_qa.cli.selection import main
from drywall_qa.core.shapes import PIXELS
from drywall_qa.data.coco import DATASETS
from drywall_qa.evaluation.metrics import ThresholdSweep
from tests.helpers import make_mixed_split


def _sweeps(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, ThresholdSweep]:
    sweep = ThresholdSweep(shape=PIXELS)
    for probabilities, truth in pairs:
        sweep.add(probabilities, truth)
    return {PIXELS: sweep}


def test_a_checkpoint_better_everywhere_costs_nothing_to_choose() -> None:
    rng = np.random.default_rng(0)
    truths = [rng.random((16, 16)) > 0.7 for _ in range(8)]
    good = _sweeps([(t.astype(np.float32), t) for t in truths])
    blurred = _sweeps([(np.where(t, 0.6, 0.45).astype(np.float32) + rng.normal(0, 0.1, t.shape), t) for t in truths])
    cost = selection_cost({"good": good, "blurred": blurred}, [f"photo{i}" for i in range(8)])
    assert cost["chosen"] == "good" and cost["chosen_miou"] == 1.0 > cost["best_miou"]["blurred"]
    assert cost["held_out_miou"] == pytest.approx(1.0)


def test_choosing_between_checkpoints_that_differ_by_noise_is_flattered_in_sample() -> None:
    rng = np.random.default_rng(1)
    truths = [rng.random((12, 12)) > 0.5 for _ in range(12)]
    sweeps = {f"run{k}": _sweeps([(np.clip(t + rng.normal(0, 0.6, t.shape), 0, 1).astype(np.float32), t)
                                  for t in truths]) for k in range(4)}
    cost = selection_cost(sweeps, [f"photo{i}" for i in range(12)])
    assert cost["chosen_miou"] == max(cost["best_miou"].values())
    assert cost["held_out_miou"] < cost["chosen_miou"] - 0.005


def test_selection_cli_tables_every_prompt(tiny_lite_dir, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    for spec in DATASETS.values():
        make_mixed_split(root / spec.folder / "valid")
    assert main(["--models", str(tiny_lite_dir), str(tiny_lite_dir), "--data-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "segment crack" in out and "segment taping area" in out and "held-out" in out
    assert main(["--models", str(tmp_path / "nothing"), "--data-root", str(root)]) == 2
    assert "nothing" in capsys.readouterr().err
