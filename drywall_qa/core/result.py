"""What :meth:`Segmenter.predict <drywall_qa.core.segmenter.Segmenter.predict>` returns: one image and its prompts'
predictions, with every way of handing them on — the notes a user should read, JSON with COCO RLE masks, a COCO
results file, mask PNGs on disk and an overlay picture. The command line, the app, jobs and evaluation all receive
it, and their files share :meth:`Prediction.to_dict` and the encoders here."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
from PIL import Image

from drywall_qa.core.atomic import write_atomic
from drywall_qa.core.file_names import distinct_png_names, safe_name
from drywall_qa.core.prediction import Prediction, borrowed_settings_note, truncation_note, unknown_concept_note
from drywall_qa.core.visualisation import outlines, overlay

#: what :meth:`Result.save` names its summary file
SUMMARY_FILE = "predictions.json"


@dataclass(frozen=True, eq=False, kw_only=True)
class Result(Sequence[Prediction]):
    """One image's predictions, one per prompt and in the prompts' order; indexes and iterates like a list of
    :class:`~drywall_qa.core.prediction.Prediction`."""

    #: the image as predicted (``H×W×3`` uint8)
    image: np.ndarray
    predictions: tuple[Prediction, ...]
    #: the model's name as shown to users
    model: str
    #: the model's family (``drywall-qa-lite``, ``clipseg``), named by the unknown-concept note
    family: str
    #: the image's file name, or ``"image"`` for an array
    name: str = "image"
    #: the text encoder's token limit, named by the truncation note
    token_limit: int | None = None

    @overload
    def __getitem__(self, index: int) -> Prediction: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Prediction]: ...

    def __getitem__(self, index):
        return self.predictions[index]

    def __len__(self) -> int:
        return len(self.predictions)

    def __iter__(self) -> Iterator[Prediction]:
        return iter(self.predictions)

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the image and of every mask."""
        return self.image.shape[0], self.image.shape[1]

    def notes(self) -> list[str]:
        """What a user should know before trusting these masks: prompts cut at the token limit, prompts that borrow a
        calibrated prompt's settings, prompts the model was never trained on."""
        notes = [truncation_note(p.prompt, self.token_limit) for p in self if p.truncated]
        notes += [borrowed_settings_note(p) for p in self if p.borrowed_settings]
        return notes + [unknown_concept_note(p, self.family) for p in self if p.unknown_concept]

    def to_json(self) -> dict[str, Any]:
        """The image's size, the model, and per prompt its record (:meth:`Prediction.to_dict`) with the mask as COCO
        RLE (``rle``; decode with ``pycocotools.mask.decode``)."""
        height, width = self.size
        return {"image": self.name, "width": width, "height": height, "model": self.model,
                "predictions": [{**p.to_dict(), "rle": coco_rle(p.mask)} for p in self]}

    def to_coco(self, image_id: int = 1) -> dict[str, Any]:
        """A COCO results file: the image, one category per prompt, and one annotation per non-empty mask (its RLE,
        area, box and, as ``score``, the presence probability where the model gives one)."""
        height, width = self.size
        annotations = []
        for category, prediction in enumerate(self, start=1):
            if not prediction.mask.any():
                continue
            rows, cols = np.nonzero(prediction.mask)
            box = [int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category,
                                "segmentation": coco_rle(prediction.mask), "area": int(prediction.mask.sum()),
                                "bbox": box, "iscrowd": 0, "score": prediction.presence})
        return {"images": [{"id": image_id, "file_name": self.name, "width": width, "height": height}],
                "categories": [{"id": i, "name": p.prompt} for i, p in enumerate(self, start=1)],
                "annotations": annotations}

    def mask_names(self, numbered: bool = True) -> list[str]:
        """A PNG name per prompt, distinct even when two prompts reduce to the same safe name: ``NN_<prompt>.png``
        (``numbered``) or ``<image>__<prompt>.png``, which tells downloads of several photos apart."""
        prompts = [safe_name(prediction.prompt, "prompt") for prediction in self]
        image = safe_name(Path(self.name).stem)
        return distinct_png_names(f"{index:02d}_{prompt}" if numbered else f"{image}__{prompt}"
                                  for index, prompt in enumerate(prompts))

    def save(self, folder: str | Path, extra: dict[str, Any] | None = None) -> list[Path]:
        """Write ``masks/NN_<prompt>.png`` (white = mask) and ``predictions.json`` (:meth:`to_json`, each record
        naming its mask file, plus the entries of ``extra``) into ``folder``; returns the paths written, the summary
        last."""
        folder = Path(folder)
        (folder / "masks").mkdir(parents=True, exist_ok=True)
        paths = []
        for name, prediction in zip(self.mask_names(), self):
            paths.append(folder / "masks" / name)
            write_atomic(paths[-1], mask_png(prediction.mask))
        summary = {**self.to_json(), **(extra or {})}
        for record, path in zip(summary["predictions"], paths):
            record["mask"] = path.relative_to(folder).as_posix()
        write_atomic(folder / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
        return [*paths, folder / SUMMARY_FILE]

    def overlay(self, alpha: float = 0.5, outline: bool = False) -> np.ndarray:
        """The image with each prompt's mask blended in its own colour (borders only with ``outline``)."""
        masks = [p.mask for p in self]
        return overlay(self.image, outlines(masks) if outline else masks, alpha=alpha)


def mask_png(mask: np.ndarray) -> bytes:
    """A boolean mask as an 8-bit grayscale PNG, 0 background / 255 foreground."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(mask, bool).astype(np.uint8) * 255, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def coco_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE ``{"size": [h, w], "counts": str}`` (decode with ``pycocotools.mask.decode``)."""
    from pycocotools import mask as mask_utils  # here, so that importing the core does not load pycocotools

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
