"""Training losses: zero for confident correct answers, and the soft IoU loss is 1 − IoU per image, averaged."""

from __future__ import annotations

import pytest
import torch

from drywall_qa.training.losses import LOSSES, soft_iou_loss


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_vanishes_for_confident_correct_answers_and_grows_for_wrong_ones(name: str) -> None:
    target = torch.zeros(2, 8, 8)
    target[0, 2:4, 1:7] = 1                                   # image 1 has a target, image 2 is empty
    right, wrong = (target * 2 - 1) * 30, (1 - target * 2) * 30
    assert LOSSES[name](right, target) < 1e-3
    assert LOSSES[name](wrong, target) > 0.1


def test_soft_iou_loss_is_one_minus_iou_of_hard_masks_with_every_image_weighing_the_same() -> None:
    target, logits = torch.zeros(2, 20, 20), torch.full((2, 20, 20), -30.0)
    target[0, 5, 4:8] = 1                                      # a thin 4 px target: half of it found
    logits[0, 5, 4:6] = 30
    target[1, :5] = 1                                          # a 100 px target: found, with 100 px extra
    logits[1, :10] = 30
    assert soft_iou_loss(logits, target, eps=1e-6) == pytest.approx(1 - (0.5 + 0.5) / 2)
