"""Data splits the app may read: only COCO splits inside the configured data roots, never a path outside them.

Every file the app opens — the split folder, its annotation file, each image — must lie inside a root once
symlinks and ``..`` are resolved; a link from a root to anything outside is refused, never read."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

from drywall_qa.core.errors import InputError
from drywall_qa.data.coco import ANNOTATION_FILE, DATASETS, CocoSplit

_HINT = "choose a split from the list (data folders come from --data-root or DRYWALL_QA_DATA)"
_OUTSIDE = "is outside the configured data folders"
_LINK_HINT = "copy the file into the data folder instead of linking to it, or add its folder as a data folder"


def within(path: Path, roots: Sequence[Path]) -> bool:
    """True when ``path``, with symlinks and ``..`` resolved, lies inside one of ``roots``."""
    resolved = Path(path).resolve()
    return any(resolved.is_relative_to(Path(root).resolve()) for root in roots)


class ConfinedSplit(CocoSplit):
    """A :class:`CocoSplit` whose folder, annotation file and images must all lie inside the data roots: a symlink
    out of a root, or a crafted ``file_name`` such as ``../../secret.png`` in an annotation file, is refused
    before anything is read. The annotation file is read at the resolved path that was checked."""

    def __init__(self, path: Path, roots: Sequence[Path]) -> None:
        self.roots = list(roots)
        for checked in (Path(path), Path(path) / ANNOTATION_FILE):
            if not within(checked, self.roots):
                raise InputError(str(checked), _OUTSIDE, _LINK_HINT)
        super().__init__(path, annotation_file=(Path(path) / ANNOTATION_FILE).resolve())

    def image_path(self, i: int) -> Path:
        path = super().image_path(i)
        if not within(path, self.roots):
            raise InputError(f"{self.annotation_file}: image {self.file_name(i)!r}",
                             "points outside the configured data folders", "fix the file_name in the annotations")
        return path


def discover_splits(roots: Sequence[Path]) -> list[tuple[str, str]]:
    """``(label, value)`` for every folder holding an annotation file: each root itself, or one or two levels
    below it (``cracks/valid``). ``value`` is the folder's path; the label shows it relative to its root. A folder
    or annotation file that resolves outside every root (a symlink out) is not offered."""
    found: dict[Path, tuple[str, str]] = {}
    for root in roots:
        for pattern in (ANNOTATION_FILE, f"*/{ANNOTATION_FILE}", f"*/*/{ANNOTATION_FILE}"):
            for annotation in sorted(Path(root).glob(pattern), key=_split_order):
                folder = annotation.parent
                if not (within(folder, roots) and within(annotation, roots)):
                    continue
                relative = folder.relative_to(root).as_posix()
                label = f"{relative if relative != '.' else folder.name}  ({Path(root).resolve().name})"
                found.setdefault(folder.resolve(), (label, str(folder)))
    return list(found.values())


def _split_order(annotation: Path) -> tuple:
    """Held-out splits (valid, val, test) before the others within a dataset folder."""
    split = annotation.parent
    return split.parent, split.name not in {"valid", "val", "test"}, split.name


def resolve_split(value: str | None, roots: Sequence[Path]) -> Path:
    """The split folder ``value`` names, resolved; :class:`InputError` unless it and its annotation file lie inside
    a data root (symlinks resolved) and the annotation file exists."""
    if not roots:
        raise InputError("data folders", "none configured",
                         "start the app with --data-root DIR or set DRYWALL_QA_DATA to a folder of COCO splits")
    if not value:
        raise InputError("split", "no split chosen", _HINT)
    label = f"split {_shown(value)}"
    if "\0" in value:
        raise InputError(label, "contains a NUL character", _HINT)
    path = Path(value).resolve()
    if not within(path, roots):
        raise InputError(label, _OUTSIDE, _HINT)
    if not within(path / ANNOTATION_FILE, roots):
        raise InputError(f"{label}: {ANNOTATION_FILE}", _OUTSIDE, _LINK_HINT)
    try:
        found = (path / ANNOTATION_FILE).is_file()
    except OSError as err:  # a name too long for the file system
        raise InputError(label, f"cannot be read ({err.strerror})", _HINT) from None
    if not found:
        raise InputError(label, f"holds no {ANNOTATION_FILE}", _HINT)
    return path


def _shown(value: str, limit: int = 80) -> str:
    """``value`` quoted for a one-line message, its middle cut when longer than ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit // 2]}…{text[-(limit // 2):]}"


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


def split_size(value: str | None, roots: Sequence[Path]) -> int | None:
    """How many images the split ``value`` names holds; None when it cannot be opened."""
    try:
        return len(open_split(value, roots))
    except Exception:  # noqa: BLE001 — only bounds a slider; the run button reports why the split is unusable
        return None


def split_prompts(value: str | None, roots: Sequence[Path]) -> list[str]:
    """:func:`dataset_prompts` of the split ``value`` names; empty when it cannot be opened (the tab's run button
    then reports why)."""
    try:
        return dataset_prompts(open_split(value, roots))
    except Exception:  # noqa: BLE001 — only pre-ticks prompts; never fails the page
        return []
