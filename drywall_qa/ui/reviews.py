"""Review decisions (accept / reject + comment per image and prompt) stored in one JSON file per split folder.

Every save re-reads the file, applies the change and writes it atomically (temp file + rename) under a lock shared
by all stores of the same file, so concurrent saves never lose or corrupt each other's entries and a crash leaves
the previous file intact. The lock is per process: run one app per output folder.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from drywall_qa.atomic import write_atomic
from drywall_qa.data import CocoSplit
from drywall_qa.errors import InputError
from drywall_qa.ui.splits import split_slug

DECISIONS = ("accept", "reject")
MAX_COMMENT_CHARS = 2000
#: decisions one review file may hold (image × prompt); the whole file is rewritten on every save
MAX_ENTRIES = 20_000
VERSION = 1

_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def review_slug(split: CocoSplit) -> str:
    """The review file's stem: the split's short name and a digest of its resolved folder, e.g.
    ``cracks__valid-3f2a91c0``, so two data roots that both hold ``cracks/valid`` keep separate decisions."""
    digest = hashlib.sha256(str(Path(split.root).resolve()).encode()).hexdigest()[:8]
    return f"{split_slug(split)}-{digest}"


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path.resolve(), threading.Lock())


class ReviewStore:
    """Decisions for one split, kept in ``path`` as ``{"version", "split", "reviews": {image: {prompt: entry}}}``."""

    def __init__(self, path: Path, split: str) -> None:
        self.path, self.split = Path(path), split
        self._lock = _lock_for(self.path)

    def load(self) -> dict[str, dict[str, dict[str, Any]]]:
        """All entries, ``{image: {prompt: {"decision", "comment", "updated", …}}}`` (empty when no file yet)."""
        with self._lock:
            return self._read()["reviews"]

    def get(self, image: str, prompt: str) -> dict[str, Any] | None:
        return self.load().get(image, {}).get(prompt)

    def save(self, image: str, prompt: str, decision: str | None, comment: str = "",
             **context: Any) -> dict[str, Any]:
        """Record a decision (``accept``, ``reject`` or None for a comment only) with ``context`` such as the model
        and scores; returns the stored entry."""
        if decision is not None and decision not in DECISIONS:
            raise InputError("decision", f"{decision!r} is not a decision", f"use one of: {', '.join(DECISIONS)}")
        comment = (comment or "").strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise InputError("comment", f"{len(comment)} characters, the limit is {MAX_COMMENT_CHARS}",
                             "shorten the comment")
        entry = {"decision": decision, "comment": comment, **context,
                 "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        with self._lock:
            document = self._read()
            known = prompt in document["reviews"].get(image, {})
            if not known and sum(map(len, document["reviews"].values())) >= MAX_ENTRIES:
                raise InputError(str(self.path.name), f"holds {MAX_ENTRIES:,} decisions, the most one file may hold",
                                 "download it and move it away to start a new one")
            document["reviews"].setdefault(image, {})[prompt] = entry
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        return entry

    def _read(self) -> dict[str, Any]:
        """The file's content, checked; a file that is not a review file is never overwritten."""
        if not self.path.exists():
            return {"version": VERSION, "split": self.split, "reviews": {}}
        hint = "fix the file or move it away; the app keeps it untouched"
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InputError(str(self.path), f"not a valid review file ({err})", hint) from None
        if not isinstance(document, dict) or not isinstance(document.get("reviews"), dict):
            raise InputError(str(self.path), 'not a review file (no "reviews" object)', hint)
        return document
