"""Shared fixtures: real data location (skipped when absent) and tiny offline checkpoints built in code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _real_data_root() -> Path | None:
    candidates = [Path(p) for p in os.environ.get("DRYWALL_QA_DATA", "").split(os.pathsep) if p]
    candidates.append(REPO.parent / "shared" / "data")
    return next((p for p in candidates if (p / "drywall-join-detect").is_dir() and (p / "cracks").is_dir()), None)


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _real_data_root()
    if root is None:
        pytest.skip("real data not found: set DRYWALL_QA_DATA or place the datasets in ../shared/data")
    return root


@pytest.fixture(scope="session")
def tiny_clipseg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_clipseg import make_tiny_clipseg

    return make_tiny_clipseg(tmp_path_factory.mktemp("tiny_clipseg"))


@pytest.fixture(scope="session")
def tiny_lite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_lite import make_tiny_lite

    return make_tiny_lite(tmp_path_factory.mktemp("tiny_lite"))
