"""Output-folder housekeeping: leftovers of killed writes pruned at start-up, evaluation folders kept in bounds."""

from __future__ import annotations

import os
from pathlib import Path

from drywall_qa.serving.retention import Retention, prune_evaluations, prune_leftovers


def evaluation(folder: Path, name: str, size: int, age_s: int) -> Path:
    path = folder / name
    path.mkdir(parents=True)
    (path / "metrics.json").write_bytes(b"x" * size)
    stamp = 1_700_000_000 - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_start_up_removes_partial_folders_and_temp_files_only(tmp_path: Path) -> None:
    evaluations, reviews = tmp_path / "evaluations", tmp_path / "reviews"
    partial = evaluation(evaluations, ".partial-cracks__valid-1-abc123", 10, 0)
    done = evaluation(evaluations, "cracks__valid-1", 10, 0)
    reviews.mkdir()
    (reviews / ".cracks__valid.json.x1y2.tmp").write_text("{")
    (reviews / "cracks__valid.json").write_text("{}")
    assert prune_leftovers(tmp_path) == 2
    assert not partial.exists() and done.is_dir()
    assert sorted(p.name for p in reviews.iterdir()) == ["cracks__valid.json"]
    assert prune_leftovers(tmp_path / "missing") == 0


def test_start_up_removes_temp_files_left_in_job_folders(tmp_path: Path) -> None:
    job = tmp_path / "jobs" / "20260101-000000-abcdef"
    (job / "photos").mkdir(parents=True)
    leftovers = [job / ".job.json.a1.tmp", job / "photos" / ".wall.json.b2.tmp", tmp_path / "jobs" / ".x.tmp"]
    kept = [job / "job.json", job / "photos" / "wall.json"]
    for path in leftovers + kept:
        path.write_text("{}")
    assert prune_leftovers(tmp_path) == 3
    assert not any(p.exists() for p in leftovers) and all(p.is_file() for p in kept)


def test_oldest_evaluations_beyond_the_count_or_size_are_deleted(tmp_path: Path) -> None:
    folders = [evaluation(tmp_path, f"e{i}", 400_000, age_s=100 - i) for i in range(5)]   # e4 newest
    removed = prune_evaluations(tmp_path, Retention(count=3, megabytes=100))
    assert sorted(removed) == folders[:2] and all(f.is_dir() for f in folders[2:])
    removed = prune_evaluations(tmp_path, Retention(count=10, megabytes=0.9))
    assert removed == [folders[2]]
    removed = prune_evaluations(tmp_path, Retention(count=0, megabytes=0), keep=folders[4])
    assert removed == [folders[3]] and folders[4].is_dir()
