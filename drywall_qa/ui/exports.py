"""Downloads of an Inspect run: one PNG mask per prompt and a JSON summary with COCO RLE masks."""

from __future__ import annotations

import io
import json
import re
import shutil
import tempfile
import time
import unicodedata
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from drywall_qa.evaluate import write_atomic

#: scratch folders of downloads older than this are deleted when a new one is made
SCRATCH_TTL_S = 3600


def safe_name(text: str, fallback: str = "image") -> str:
    """``text`` reduced to a file-name-safe ASCII stem (accents dropped; runs of other characters become ``_``)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text).strip("._")[:80] or fallback


def scratch_dir(root: Path | None = None) -> Path:
    """A new empty folder for one run's downloads (under the system temp folder), pruning stale ones."""
    root = Path(root or Path(tempfile.gettempdir()) / "drywall-qa-downloads")
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        if old.is_dir() and time.time() - old.stat().st_mtime > SCRATCH_TTL_S:
            shutil.rmtree(old, ignore_errors=True)
    folder = root / uuid.uuid4().hex
    folder.mkdir()
    return folder


def mask_file_names(image_name: str, prompts: Sequence[str]) -> list[str]:
    """``{image}__{prompt}.png`` per prompt, made unique when two prompts reduce to the same safe name."""
    names: list[str] = []
    for prompt in prompts:
        stem = f"{safe_name(image_name)}__{safe_name(prompt, 'prompt')}"
        name, n = f"{stem}.png", 2
        while name in names:
            name, n = f"{stem}-{n}.png", n + 1
        names.append(name)
    return names


def mask_png(mask: np.ndarray) -> bytes:
    """A boolean mask as an 8-bit grayscale PNG, 0 background / 255 foreground."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(mask, bool).astype(np.uint8) * 255, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def coco_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE ``{"size": [h, w], "counts": str}`` (decode with ``pycocotools.mask.decode``)."""
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


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
    """Write the mask PNGs and ``{image}__masks.json`` into ``folder``; return their paths (PNGs first)."""
    paths = []
    for name, mask in zip(mask_file_names(image_name, prompts), masks):
        write_atomic(folder / name, mask_png(mask))
        paths.append(folder / name)
    summary = folder / f"{safe_name(image_name)}__masks.json"
    write_atomic(summary, json.dumps(result_json(image_name, model, prompts, thresholds, masks), indent=2) + "\n")
    return [*paths, summary]
