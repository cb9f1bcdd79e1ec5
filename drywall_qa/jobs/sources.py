"""The photos of a job, from what a user names: image files, folders (searched recursively), glob patterns and .zip
archives.

A folder or archive contributes its image files (by suffix; hidden files and ``__MACOSX`` left out); a file named
directly is always tried. Archives are never extracted: a member is read into memory when its photo runs, at most
:data:`MAX_MEMBER_BYTES` whatever its header claims (a zip bomb stops there), and its name only ever labels the
photo, so ``../`` in it reaches nothing. Each photo gets a ``key``: a file-name-safe stem unique in the job, the name
of its results."""

from __future__ import annotations

import glob
import os
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from drywall_qa.core.errors import InputError
from drywall_qa.core.file_names import safe_name
from drywall_qa.core.imaging import load_image, path_problem, short_path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
#: largest archive member read (uncompressed bytes): far above a 50 MP photo
MAX_MEMBER_BYTES = 256 * 2**20
#: most members an archive may list
MAX_MEMBERS = 20_000


@dataclass(frozen=True)
class Photo:
    """One photo: ``name`` as shown to users, ``path`` its file or archive, ``member`` its name in the archive."""

    name: str
    key: str
    path: Path
    member: str | None = None

    def read(self) -> np.ndarray:
        """The photo as RGB; :class:`InputError` when it cannot be read."""
        if self.member is None:
            return load_image(self.path, self.name)
        return load_image(_read_member(self.path, self.member, self.name), self.name)


@dataclass(frozen=True)
class Refused:
    """Something named that gives no photo, and why."""

    name: str
    reason: str


def collect(sources: Sequence[str | Path], skip: Path | None = None) -> tuple[list[Photo], list[Refused]]:
    """The photos ``sources`` name, in the order given (a folder's and a pattern's sorted), each once, and what
    was refused; all named relative to the deepest folder holding what ``sources`` name (see :func:`_name`).
    Files inside ``skip`` (the job's own folder, when it lies among the photos) are not photos."""
    found: list[_Entry] = []
    refused: list[Refused] = []
    base = _base_folder([str(source) for source in sources])
    for source in sources:
        entries, problems = _expand(str(source), base)
        found += entries
        refused += problems
    seen: set[tuple[Path, str | None]] = set()
    photos = []
    outside = (lambda path: not path.is_relative_to(skip.resolve())) if skip is not None else (lambda path: True)
    for entry in found:
        if (entry.path.resolve(), entry.member) not in seen and outside(entry.path.resolve()):
            seen.add((entry.path.resolve(), entry.member))
            photos.append(entry)
    keys = unique_keys([entry.short for entry in photos])
    return [Photo(e.name, key, e.path, e.member) for e, key in zip(photos, keys)], refused


def unique_keys(names: Sequence[str]) -> list[str]:
    """A file-name-safe stem per name (:func:`safe_name` without the suffix), numbered ``-2``, ``-3``, … when it
    repeats."""
    keys, used = [], set()
    for name in names:
        suffix = PurePosixPath(name.replace("\\", "/")).suffix
        stem = safe_name(name[:len(name) - len(suffix)], "photo")
        key, number = stem, 1
        while key in used:
            number += 1
            key = f"{stem}-{number}"
        used.add(key)
        keys.append(key)
    return keys


@dataclass(frozen=True)
class _Entry:
    """A photo found: ``short`` is its name within what was named (a folder's or archive's member, a file's name),
    which its key is made from."""

    name: str
    short: str
    path: Path
    member: str | None = None


def _base_folder(sources: Sequence[str]) -> Path | None:
    """The deepest folder holding everything ``sources`` name: a folder itself, a file's or archive's folder, a
    pattern's part before its first wildcard; a name that is not there (a typo) is left out, lest it pull the
    folder up to the file system's root (None when nothing named is there)."""
    folders = []
    for source in sources:
        if path_problem(source):
            continue
        path = Path(source)
        if glob.has_magic(source):
            path = Path(*next((path.parts[:i] for i, part in enumerate(path.parts) if glob.has_magic(part)), ()))
        elif not path.is_dir():
            path = path.parent if path.is_file() else None
        if path is not None and path.is_dir():
            folders.append(os.path.abspath(path))
    return Path(os.path.commonpath(folders)) if folders else None


def _name(path: Path | str, base: Path | None, member: str | None = None) -> str:
    """What users see for a photo: its path relative to ``base`` (then ``/member`` in an archive), so that a report
    never shows the server's folders (``/srv/jobs/7/photos/sub/a.jpg`` → ``sub/a.jpg``, ``walls.zip/b.jpg``); a
    path outside ``base`` as it was given."""
    try:
        text = Path(os.path.abspath(path)).relative_to(base).as_posix() if base is not None else str(path)
    except ValueError:
        text = str(path)
    return short_path(f"{text}/{member}" if member is not None else text)


def _expand(source: str, base: Path | None) -> tuple[list[_Entry], list[Refused]]:
    """The photos one argument names, and what it refuses, named relative to ``base``."""
    problem = path_problem(source)
    if problem:
        return [], [Refused(short_path(source), problem)]
    path = Path(source)
    if path.is_dir():
        return [_Entry(_name(p, base), str(p.relative_to(path)), p) for p in _folder_images(path)], []
    if path.is_file():
        return _archive(path, base) if path.suffix.lower() == ".zip" else (
            [_Entry(_name(path, base), path.name, path)], [])
    if glob.has_magic(source):
        matches = sorted(Path(p) for p in glob.glob(source, recursive=True))
        entries, refused = [], []
        for match in matches:
            more, problems = _archive(match, base) if match.suffix.lower() == ".zip" else (
                [_Entry(_name(match, base), match.name, match)] if _is_image(match) else [], [])
            entries += more
            refused += problems
        return entries, refused if matches else [Refused(_name(source, base), "no file matches this pattern")]
    return [], [Refused(_name(source, base), "no such file or folder")]


def _folder_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if _is_image(p) and not _hidden(p.relative_to(folder).parts))


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def _hidden(parts: Sequence[str]) -> bool:
    return any((part.startswith(".") and part not in (".", "..")) or part == "__MACOSX" for part in parts)


def _archive(path: Path, base: Path | None) -> tuple[list[_Entry], list[Refused]]:
    """The image members of a zip archive, and the members refused for their size."""
    label = _name(path, base)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        return [], [Refused(label, f"not a readable zip archive ({err})")]
    if len(infos) > MAX_MEMBERS:
        return [], [Refused(label, f"lists {len(infos):,} members; the limit is {MAX_MEMBERS:,}")]
    entries, refused = [], []
    counts = Counter(info.filename for info in infos)
    for info in infos:
        member = PurePosixPath(info.filename)
        if info.is_dir() or _hidden(member.parts) or member.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        name = _name(path, base, info.filename)
        if counts[info.filename] > 1:
            refused.append(Refused(name, f"the archive holds {counts[info.filename]} members of this name, so it "
                                         "cannot tell which is meant; rename them and re-create the archive"))
        elif info.file_size > MAX_MEMBER_BYTES:
            refused.append(Refused(name, f"{info.file_size:,} bytes uncompressed; the limit is {MAX_MEMBER_BYTES:,}"))
        else:
            entries.append(_Entry(name, info.filename, path, info.filename))
    return entries, list(dict.fromkeys(refused))               # a name held twice is refused once


def _read_member(path: Path, member: str, name: str) -> bytes:
    """An archive member's bytes, refused past :data:`MAX_MEMBER_BYTES` (whatever the header says)."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open(member) as handle:
            data = handle.read(MAX_MEMBER_BYTES + 1)
    except (zipfile.BadZipFile, OSError, KeyError, RuntimeError, NotImplementedError, EOFError) as err:
        raise InputError(name, f"cannot be read from the archive ({err})", "re-create the archive") from None
    if len(data) > MAX_MEMBER_BYTES:
        raise InputError(name, f"expands past {MAX_MEMBER_BYTES:,} bytes (a zip bomb?)", "leave it out of the job")
    return data
