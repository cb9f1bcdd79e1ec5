"""Crash-safe training state: model, optimizer, scheduler, RNG and progress in one file, replaced atomically; and
folders (the best checkpoint) swapped in whole."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drywall_qa.core.atomic import write_atomic

STATE_FILE = "training_state.pt"


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` that a kill cannot leave half-written."""
    write_atomic(path, lambda handle: torch.save(obj, handle))


def replace_directory(directory: Path, write: Callable[[Path], None]) -> None:
    """Let ``write`` fill a fresh sibling folder, then swap it in for ``directory``: a kill leaves the old folder or
    the new one (a kill between the two renames leaves the old one as ``NAME.old``, restored by the next call)."""
    staging, old = directory.with_name(directory.name + ".partial"), directory.with_name(directory.name + ".old")
    if old.is_dir() and not directory.exists():
        os.replace(old, directory)
    for leftover in (staging, old):
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir(parents=True)
    write(staging)
    if directory.exists():
        os.replace(directory, old)
    os.replace(staging, directory)
    shutil.rmtree(old, ignore_errors=True)


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def restore_rng(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_training_state(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        scheduler: Any, epoch: int, best: float) -> None:
    """Everything needed to continue after ``epoch`` (the number of completed epochs)."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "epoch": epoch, "best": best, "rng": rng_state()}
    atomic_torch_save(state, directory / STATE_FILE)


def load_training_state(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        scheduler: Any) -> tuple[int, float]:
    """Restore in place; returns (completed epochs, best score)."""
    state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    restore_rng(state["rng"])
    return state["epoch"], state["best"]
