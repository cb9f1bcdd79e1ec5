"""Record the bundled model's predictions on the generated demo images (rerun after retraining the bundled model).

    python -m tests.golden.make_golden      # writes tests/golden/bundled_lite.npz
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from drywall_qa.core.segmenter import Segmenter
from drywall_qa.data.coco import DATASETS

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "examples"
IMAGES = ("seam_and_crack.png", "plain_wall.png")
PROMPTS = tuple(p for spec in DATASETS.values() for p in spec.prompts)
GOLDEN = HERE / "bundled_lite.npz"
#: probabilities are stored at this side (every 8th pixel of the 640×640 map) to keep the file small
STRIDE = 8


def predict(segmenter: Segmenter) -> dict[str, np.ndarray]:
    """``{image/prompt: probabilities[::STRIDE, ::STRIDE]}`` for every demo image and dataset prompt."""
    record = {}
    for name in IMAGES:
        for prediction in segmenter.predict(EXAMPLES / name, list(PROMPTS)):
            record[f"{name}/{prediction.prompt}"] = prediction.probabilities[::STRIDE, ::STRIDE]
    return record


if __name__ == "__main__":
    np.savez_compressed(GOLDEN, **{k: v.astype(np.float32) for k, v in predict(Segmenter.load()).items()})
    print(f"wrote {GOLDEN}")
