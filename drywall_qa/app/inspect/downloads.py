"""Downloads of an Inspect run: one PNG mask per prompt and a JSON summary with COCO RLE masks, drawn at the
threshold the user chose (the encodings are the :class:`~drywall_qa.core.result.Result`'s)."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from drywall_qa.core.file_names import distinct_png_names, safe_name
from drywall_qa.core.result import coco_rle, mask_png
from drywall_qa.data.coco import source_group

#: scratch folders of downloads older than this are deleted when a new one is made
SCRATCH_TTL_S = 3600
#: how often the scratch root is scanned for stale folders
PRUNE_EVERY_S = 60

_pruned_at: dict[Path, float] = {}
_pruned_lock = threading.Lock()


def scratch_dir(root: Path | None = None) -> Path:
    """A new empty folder for one run's downloads (under the system temp folder). Folders older than
    ``SCRATCH_TTL_S`` are pruned at most once every ``PRUNE_EVERY_S`` per root, so a request does not scan every
    folder of the last hour."""
    root = Path(root or Path(tempfile.gettempdir()) / "drywall-qa-downloads")
    root.mkdir(parents=True, exist_ok=True)
    if _due_for_pruning(root):
        for old in root.iterdir():
            if old.is_dir() and time.time() - old.stat().st_mtime > SCRATCH_TTL_S:
                shutil.rmtree(old, ignore_errors=True)
    folder = root / uuid.uuid4().hex
    folder.mkdir()
    return folder


def _due_for_pruning(root: Path) -> bool:
    """True for the first call per root and then once every ``PRUNE_EVERY_S``."""
    now = time.monotonic()
    with _pruned_lock:
        if now - _pruned_at.get(root, -PRUNE_EVERY_S) < PRUNE_EVERY_S:
            return False
        _pruned_at[root] = now
        return True


#: longest image part of a download name, so the prompt after it stays in view in the browser's file list
MAX_IMAGE_STEM = 32


def download_stem(image_name: str) -> str:
    """The image's part of the download names: a Roboflow export's name without its ``.rf.<hash>`` tail
    (:func:`~drywall_qa.data.coco.source_group`), safe for files and at most :data:`MAX_IMAGE_STEM` characters. Long
    names left the prompt out of view, and one photo's downloads looked alike."""
    return safe_name(source_group(image_name))[:MAX_IMAGE_STEM].rstrip("._-") or "image"


def mask_file_names(image_name: str, prompts: Sequence[str]) -> list[str]:
    """``{image}__{prompt}.png`` per prompt (:func:`download_stem`), made unique when two prompts reduce to the same
    safe name."""
    stem = download_stem(image_name)
    return distinct_png_names(f"{stem}__{safe_name(prompt, 'prompt')}" for prompt in prompts)


def result_json(image_name: str, model: str, prompts: Sequence[str], thresholds: Sequence[float],
                masks: Sequence[np.ndarray]) -> dict[str, Any]:
    """The JSON download: image size, model, and per prompt its threshold, coverage and RLE mask."""
    height, width = masks[0].shape
    return {"image": image_name, "width": width, "height": height, "model": model,
            "prompts": [{"prompt": p, "threshold": round(float(t), 4), "coverage": float(np.mean(m)),
                         "found": bool(m.any()), "rle": coco_rle(m)}
                        for p, t, m in zip(prompts, thresholds, masks)]}


def write_downloads(folder: Path, image_name: str, model: str, prompts: Sequence[str],
                    thresholds: Sequence[float], masks: Sequence[np.ndarray]) -> list[Path]:
    """Write the mask PNGs and ``{image}__masks.json`` into ``folder``; return their paths (PNGs first). The folder
    is new and private to the run (:func:`scratch_dir`) and its files are served only after this returns, so plain
    writes suffice: no temp-file rename or fsync per request."""
    paths = []
    for name, mask in zip(mask_file_names(image_name, prompts), masks):
        (folder / name).write_bytes(mask_png(mask))
        paths.append(folder / name)
    summary = folder / f"{download_stem(image_name)}__masks.json"
    summary.write_text(json.dumps(result_json(image_name, model, prompts, thresholds, masks), indent=2) + "\n",
                       encoding="utf-8")
    return [*paths, summary]
