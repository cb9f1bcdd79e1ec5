"""Shared fixtures: real data location (skipped when absent) and tiny offline checkpoints built in code."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
#: exported ONNX graphs (keyed by weights, so safe to share between runs), away from the user's cache
os.environ.setdefault("DRYWALL_QA_CACHE", str(Path(tempfile.gettempdir()) / "drywall-qa-test-cache"))


#: the splits the data tests read, per dataset folder
REQUIRED_SPLITS = [f"{folder}/{split}" for folder in ("drywall-join-detect", "cracks") for split in ("train", "valid")]


def _missing_splits(root: Path) -> list[str]:
    return [split for split in REQUIRED_SPLITS if not (root / split / "_annotations.coco.json").is_file()]


def _real_data_root() -> tuple[Path | None, str]:
    """The first candidate folder holding every required split, or None with the reason for the skip."""
    candidates = [Path(p) for p in os.environ.get("DRYWALL_QA_DATA", "").split(os.pathsep) if p]
    candidates.append(REPO.parent / "shared" / "data")
    reasons = []
    for root in candidates:
        missing = _missing_splits(root)
        if not missing:
            return root, ""
        reasons.append(f"{root} lacks {', '.join(missing)}")
    return None, "; ".join(reasons)


@pytest.fixture(scope="session")
def data_root() -> Path:
    root, reason = _real_data_root()
    if root is None:
        pytest.skip(f"real data not found ({reason}): set DRYWALL_QA_DATA to a folder holding "
                    f"{', '.join(REQUIRED_SPLITS)} (COCO exports), or place the datasets in ../shared/data")
    return root


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread (several threads mostly wait for each other on a busy machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_clipseg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from drywall_qa.testing.tiny_clipseg import make_tiny_clipseg

    return make_tiny_clipseg(tmp_path_factory.mktemp("tiny_clipseg"))


@pytest.fixture(scope="session")
def tiny_lite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from drywall_qa.testing.tiny_lite import make_tiny_lite

    return make_tiny_lite(tmp_path_factory.mktemp("tiny_lite"))


#: test modules that start the app as a server or train models (minutes, not seconds)
SLOW_MODULES = {"test_hostile", "test_browser", "test_training", "test_training_processes", "test_training_demo",
                "test_crash_safety", "test_recipe"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers from what a test uses: ``real_data`` (the data_root fixture), ``browser`` (Chromium), ``slow``
    (a server or training), so ``pytest -m "not slow and not real_data"`` is a quick run."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        fixtures = set(getattr(item, "fixturenames", ()))
        if "data_root" in fixtures:
            item.add_marker(pytest.mark.real_data)
        if module == "test_browser":
            item.add_marker(pytest.mark.browser)
        if module in SLOW_MODULES or "server" in fixtures:
            item.add_marker(pytest.mark.slow)
