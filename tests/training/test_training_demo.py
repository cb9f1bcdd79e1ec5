"""The README's CPU fine-tuning demo, shortened: the tiny demo CLIPSeg (``python -m drywall_qa.testing.tiny_clipseg
DIR --demo``)
fine-tuned on the real cracks images scores a higher mean validation Dice after its last epoch than after its first.
Skipped without the real data.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from drywall_qa.cli.train import main
from drywall_qa.testing import tiny_clipseg
from drywall_qa.training.history import read_history

EPOCHS = 3


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_demo_fine_tuning_improves_validation_dice(data_root: Path, tmp_path: Path, one_thread: None) -> None:
    model, out = tmp_path / "model", tmp_path / "run"
    assert tiny_clipseg.main([str(model), "--demo"]) == 0
    rc = main(["--model", str(model), "--dataset", "cracks", "--data-root", str(data_root), "--output-dir", str(out),
               "--epochs", str(EPOCHS), "--limit", "64", "--batch-size", "8", "--lr", "3e-3", "--loss", "bce+dice",
               "--negatives", "0"])
    assert rc == 0
    history = read_history(out)
    assert [record["epoch"] for record in history] == list(range(EPOCHS))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["score"] > history[0]["score"]
