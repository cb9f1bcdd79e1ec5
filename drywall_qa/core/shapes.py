"""Output shapes: how a thresholded probability map becomes the mask a prompt returns.

``pixels`` keeps the thresholded pixels. ``boxes`` fills every connected region to its bounding box: the taping
annotations are boxes, and a box-shaped answer matches them far better than the model's strip of pixels. Which
shape (and threshold) each prompt of a checkpoint uses is chosen on validation data by ``python -m
drywall_qa.calibration.calibrate`` and stored in its ``postprocess.json`` (:mod:`drywall_qa.core.postprocess`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

PIXELS, BOXES = "pixels", "boxes"
SHAPES = (PIXELS, BOXES)


def shape_mask(mask: np.ndarray, shape: str = PIXELS) -> np.ndarray:
    """``mask`` (bool ``H×W``) in the given output shape; 8-connected regions for ``boxes``."""
    if shape == PIXELS:
        return mask
    if shape != BOXES:
        raise ValueError(f"unknown output shape {shape!r} (use one of {', '.join(SHAPES)})")
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    boxed = np.zeros_like(mask, dtype=bool)
    for region in ndimage.find_objects(labels):
        boxed[region] = True
    return boxed


def threshold_mask(probabilities: np.ndarray, threshold: float, shape: str = PIXELS) -> np.ndarray:
    """The mask of a probability map: pixels above ``threshold``, in ``shape``."""
    return shape_mask(probabilities > threshold, shape)
