"""Small COCO splits built in code: noisy images with one dark polygon each, and a split mixing a polygon, a box-only
annotation and an unannotated image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

#: (h, w) of the three images of :func:`make_mixed_split`
MIXED_SIZES = [(48, 64), (64, 48), (40, 40)]


def make_split(directory: Path, n: int = 4, size: int = 64, seed: int = 0) -> Path:
    """A COCO split of ``n`` noisy images, each with one dark polygon labelled as its mask."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(n):
        image = Image.fromarray(rng.integers(150, 230, (size, size, 3), dtype=np.uint8))
        x, y = rng.integers(4, size // 2, 2)
        polygon = [float(min(v, size - 1)) for v in (x, y, x + size // 3 + 2 * i, y, x + size // 4, y + size // 3 + i)]
        ImageDraw.Draw(image).polygon(polygon, fill=(40, 40, 40))
        image.save(directory / f"img{i}.png")
        images.append({"id": i, "file_name": f"img{i}.png", "width": size, "height": size})
        annotations.append({"id": i, "image_id": i, "category_id": 1, "segmentation": [polygon], "iscrowd": 0,
                            "bbox": [0, 0, 1, 1], "area": 1})
    document = {"images": images, "annotations": annotations,
                "categories": [{"id": 0, "name": "cracks"}, {"id": 1, "name": "crack"}]}
    (directory / "_annotations.coco.json").write_text(json.dumps(document))
    return directory


def make_mixed_split(directory: Path) -> Path:
    """Three images: one polygon, one box-only annotation (empty segmentation), one unannotated."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = []
    for index, (h, w) in enumerate(MIXED_SIZES):
        name = f"img {index}.png"                 # a space, to check panel names are sanitised
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(directory / name)
        images.append({"id": index + 1, "file_name": name, "height": h, "width": w})
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 30, 20], "area": 300, "iscrowd": 0,
         "segmentation": [[4, 4, 34, 4, 34, 24, 4, 24, 10, 14]]},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [5, 10, 20, 30], "area": 600, "iscrowd": 0,
         "segmentation": []},
    ]
    categories = [{"id": 0, "name": "defects", "supercategory": "none"},
                  {"id": 1, "name": "crack", "supercategory": "defects"}]
    (directory / "_annotations.coco.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return directory
