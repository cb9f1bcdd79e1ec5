"""Test data built in code, shared by the test modules: COCO splits and damaged image files."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from drywall_qa.data.coco import DATASETS, split_dir
from drywall_qa.testing.splits import MIXED_SIZES, make_mixed_split, make_split  # noqa: F401 (re-exported to the tests)
from drywall_qa.training.checkpoint import STATE_FILE
from drywall_qa.training.loop import TrainConfig

#: side of the images of :func:`make_data_root`
SIDE = 48
def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width × height`` but holds almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def write_training_split(folder: Path, dataset: str, count: int, seed: int) -> None:
    """``count`` generated images with a COCO file: taping = a pale band marked by its box (empty segmentation),
    cracks = a dark diagonal polygon."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for i in range(count):
        image = rng.normal(120, 20, (SIDE, SIDE, 3))
        x, y, w, h = (int(v) for v in rng.integers(4, SIDE // 2, 4))
        if dataset == "taping":
            image[y:y + h, x:x + w] += 80
            annotation = {"bbox": [x, y, w, h], "segmentation": []}
        else:
            polygon = [x, y, x + 3, y, x + w + 3, y + h, x + w, y + h]
            yy, xx = np.mgrid[:SIDE, :SIDE]
            image[(np.abs((xx - x) * h - (yy - y) * w) < 2 * h) & (yy >= y) & (yy <= y + h)] -= 80
            annotation = {"bbox": [x, y, w + 3, h], "segmentation": [polygon]}
        name = f"{dataset}_{seed}_{i}.png"
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(folder / name)
        images.append({"id": i, "file_name": name, "width": SIDE, "height": SIDE})
        annotations.append({"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "area": w * h, **annotation})
    coco = {"images": images, "annotations": annotations,
            "categories": [{"id": 0, "name": "super"}, {"id": 1, "name": dataset}]}
    (folder / "_annotations.coco.json").write_text(json.dumps(coco))


def make_data_root(root: Path, train_count: int = 4, valid_count: int = 2) -> Path:
    """Both datasets in the Roboflow layout under ``root``."""
    for number, name in enumerate(DATASETS):
        write_training_split(split_dir(root, name, "train"), name, train_count, seed=2 * number)
        write_training_split(split_dir(root, name, "valid"), name, valid_count, seed=2 * number + 1)
    return root


def tiny_config(model: Path, data: Path, out: Path, **overrides) -> TrainConfig:
    """A quick run: both datasets, all prompts, some negatives, 2 epochs of 2 steps."""
    settings = dict(dataset="both", data_root=data, output_dir=out, model=str(model), epochs=2, batch_size=4,
                    lr=1e-3, prompts="all", negatives=0.25, loss="bce+dice")
    return TrainConfig(**{**settings, **overrides})


def state_of(out: Path) -> dict:
    return torch.load(out / STATE_FILE, map_location="cpu", weights_only=False)


def evaluate_to_dict(segmenter, split, prompts, threshold: float | None = None, out_dir: Path | None = None, *,
                     panels: int = 8, negatives=None, progress=None, stop=None, **settings) -> dict:
    """What ``drywall-qa evaluate`` does with its options: score, write into ``out_dir`` (when given) and return the
    ``metrics.json`` document."""
    from drywall_qa.evaluation import EvaluationSettings, PanelWriter, evaluate_split

    writer = PanelWriter(Path(out_dir) / "panels", panels) if out_dir is not None else None
    result = evaluate_split(segmenter, split, prompts, settings=EvaluationSettings(threshold=threshold, **settings),
                            negatives=negatives, panels=writer, progress=progress, stop=stop)
    if out_dir is not None:
        result.write(out_dir)
    return result.to_dict()
