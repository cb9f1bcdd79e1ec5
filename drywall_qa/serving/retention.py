"""What the app leaves in its output folder: leftovers of killed writes are removed at start-up, and evaluation
folders are kept within a count and a size (a busy public app writes about 11 MB per evaluation)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("drywall_qa.app")

#: prefix of an evaluation folder still being written (renamed into place when complete)
PARTIAL_PREFIX = ".partial-"


@dataclass(frozen=True)
class Retention:
    """Evaluation folders kept: at most ``count`` of them, and at most ``megabytes`` in all (newest kept)."""

    count: int = 50
    megabytes: float = 1000.0


def leftovers(out_dir: Path) -> Iterator[Path]:
    """Hidden ``.partial-*`` folders and ``.*.tmp`` files that a killed evaluation or atomic write left behind,
    job folders' temp files (their records, masks, overlays, notes and zip) included."""
    for folder in (Path(out_dir) / "evaluations", Path(out_dir) / "reviews"):
        if folder.is_dir():
            yield from (p for p in folder.iterdir() if p.name.startswith(PARTIAL_PREFIX) and p.is_dir())
            yield from (p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))
    jobs = Path(out_dir) / "jobs"
    if jobs.is_dir():
        yield from (p for pattern in (".*.tmp", "*/.*.tmp", "*/*/.*.tmp") for p in jobs.glob(pattern) if p.is_file())


def prune_leftovers(out_dir: Path) -> int:
    """Remove :func:`leftovers` (call once at start-up: one app per output folder, so none is being written);
    returns how many were removed."""
    removed = 0
    for path in list(leftovers(out_dir)):
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        else:
            shutil.rmtree(path, ignore_errors=True)
        removed += 1
    if removed:
        log.info("removed %d leftover partial file(s) or folder(s) from %s", removed, out_dir)
    return removed


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def prune_evaluations(folder: Path, retention: Retention, keep: Path | None = None) -> list[Path]:
    """Delete the oldest complete evaluation folders beyond ``retention`` (never ``keep``, the one just written);
    returns the deleted folders."""
    if not folder.is_dir():
        return []
    done = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    budget, kept, full, removed = retention.megabytes * 1e6, 0, False, []
    for number, path in enumerate(done):
        size = _size(path)
        full = full or number >= retention.count or kept + size > budget
        if full and path != keep:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        else:
            kept += size
    return removed
