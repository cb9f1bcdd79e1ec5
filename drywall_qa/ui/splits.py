"""Data splits the app may read: only COCO splits inside the configured data roots, never a path outside them."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

from drywall_qa.data import ANNOTATION_FILE, DATASETS, CocoSplit
from drywall_qa.errors import InputError

_HINT = "choose a split from the list (data folders come from --data-root or DRYWALL_QA_DATA)"


def within(path: Path, roots: Sequence[Path]) -> bool:
    """True when ``path``, with symlinks and ``..`` resolved, lies inside one of ``roots``."""
    resolved = Path(path).resolve()
    return any(resolved.is_relative_to(Path(root).resolve()) for root in roots)


class ConfinedSplit(CocoSplit):
    """A :class:`CocoSplit` that refuses image files outside the data roots (a crafted ``file_name`` such as
    ``../../secret.png`` in an annotation file)."""

    def __init__(self, path: Path, roots: Sequence[Path]) -> None:
        self.roots = list(roots)
        super().__init__(path)

    def image_path(self, i: int) -> Path:
        path = super().image_path(i)
        if not within(path, self.roots):
            raise InputError(f"{self.annotation_file}: image {self.file_name(i)!r}",
                             "points outside the configured data folders", "fix the file_name in the annotations")
        return path


def discover_splits(roots: Sequence[Path]) -> list[tuple[str, str]]:
    """``(label, value)`` for every folder holding an annotation file: each root itself, or one or two levels
    below it (``cracks/valid``). ``value`` is the folder's path; the label shows it relative to its root."""
    found: dict[Path, tuple[str, str]] = {}
    for root in roots:
        for pattern in (ANNOTATION_FILE, f"*/{ANNOTATION_FILE}", f"*/*/{ANNOTATION_FILE}"):
            for annotation in sorted(Path(root).glob(pattern), key=_split_order):
                folder = annotation.parent
                relative = folder.relative_to(root).as_posix()
                label = f"{relative if relative != '.' else folder.name}  ({root})"
                found.setdefault(folder.resolve(), (label, str(folder)))
    return list(found.values())


def _split_order(annotation: Path) -> tuple:
    """Held-out splits (valid, val, test) before the others within a dataset folder."""
    split = annotation.parent
    return split.parent, split.name not in {"valid", "val", "test"}, split.name


def resolve_split(value: str | None, roots: Sequence[Path]) -> Path:
    """The split folder ``value`` names, resolved; :class:`InputError` unless it lies inside a data root and holds
    an annotation file."""
    if not roots:
        raise InputError("data folders", "none configured",
                         "start the app with --data-root DIR or set DRYWALL_QA_DATA to a folder of COCO splits")
    if not value:
        raise InputError("split", "no split chosen", _HINT)
    path = Path(value).resolve()
    if not within(path, roots):
        raise InputError(f"split {value!r}", "is outside the configured data folders", _HINT)
    if not (path / ANNOTATION_FILE).is_file():
        raise InputError(f"split {value!r}", f"holds no {ANNOTATION_FILE}", _HINT)
    return path


def open_split(value: str | None, roots: Sequence[Path]) -> ConfinedSplit:
    """The checked split, cached until its annotation file changes."""
    path = resolve_split(value, roots)
    return _cached_split(path, (path / ANNOTATION_FILE).stat().st_mtime_ns, tuple(Path(r).resolve() for r in roots))


@functools.lru_cache(maxsize=8)
def _cached_split(path: Path, _mtime_ns: int, roots: tuple[Path, ...]) -> ConfinedSplit:
    return ConfinedSplit(path, roots)


def split_name(split: CocoSplit) -> str:
    """``dataset/split`` (e.g. ``cracks/valid``): the last two folders of the split."""
    return "/".join(split.root.parts[-2:])


def split_slug(split: CocoSplit) -> str:
    """A file-name-safe form of :func:`split_name`, e.g. ``cracks__valid``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", split_name(split).replace("/", "__"))


def dataset_name(split: CocoSplit) -> str | None:
    """The registered dataset the split belongs to, by its folder (``drywall-join-detect/valid`` → ``taping``)."""
    return next((spec.name for spec in DATASETS.values() if spec.folder == split.root.parent.name), None)


def dataset_prompts(split: CocoSplit) -> list[str]:
    """The registered prompts of the split's dataset, else an empty list."""
    name = dataset_name(split)
    return list(DATASETS[name].prompts) if name else []


def split_prompts(value: str | None, roots: Sequence[Path]) -> list[str]:
    """:func:`dataset_prompts` of the split ``value`` names; empty when it cannot be opened (the tab's run button
    then reports why)."""
    try:
        return dataset_prompts(open_split(value, roots))
    except Exception:  # noqa: BLE001 — only pre-ticks prompts; never fails the page
        return []
