"""What choosing among checkpoints on a validation split costs: ``drywall-qa selection``.

Choosing a checkpoint (a recipe, an epoch), an output shape and a threshold on the split that reports the score
flatters it. For every registered prompt this scores each checkpoint's raw probabilities over every shape and
threshold (as :mod:`drywall_qa.calibration.calibrate` does for one checkpoint) and reports:

* per checkpoint, its best mIoU on the whole split (what choosing on it reports);
* the best of all of them, the joint choice of checkpoint, shape and threshold;
* the held-out mIoU of that joint choice (:func:`~drywall_qa.calibration.calibrate.held_out_score`): made on one half
of the source photos, scored on the other, over repeated random halvings. The difference is the selection cost.

    drywall-qa selection --models drywall_qa/weights/drywall-qa-lite runs/a/last --data-root ../shared/data
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from drywall_qa.calibration.calibrate import held_out_score
from drywall_qa.evaluation.metrics import ThresholdSweep

PROG = "drywall-qa selection"


def selection_cost(sweeps: Mapping[str, Mapping[str, ThresholdSweep]],
                   groups: Sequence[str] | None = None) -> dict[str, object]:
    """For one prompt, ``sweeps`` (checkpoint → shape → sweep over the same images, in the same order): each
    checkpoint's best mIoU, the joint choice's checkpoint and mIoU, and its held-out mIoU."""
    per_model = {name: np.stack([s.per_image_iou() for s in by_shape.values()], axis=1)
                 for name, by_shape in sweeps.items()}  # images × shapes × thresholds
    best = {name: float(ious.mean(axis=0).max()) for name, ious in per_model.items()}
    chosen = max(best, key=best.get)
    options = np.concatenate([ious.reshape(len(ious), -1) for ious in per_model.values()], axis=1)
    return {"best_miou": best, "chosen": chosen, "chosen_miou": best[chosen],
            "held_out_miou": held_out_score(options, groups)}
