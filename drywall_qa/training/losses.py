"""Segmentation losses on logits and soft targets of the same shape ``[B, H, W]``."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _soft_overlap(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image: soft intersection, predicted area and target area."""
    prob, target = logits.sigmoid().flatten(1), target.flatten(1)
    return (prob * target).sum(1), prob.sum(1), target.sum(1)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 − Dice per image, averaged; ``eps`` keeps an empty target with an empty prediction at ~0 loss."""
    inter, predicted, true = _soft_overlap(logits, target)
    return (1 - (2 * inter + eps) / (predicted + true + eps)).mean()


def soft_iou_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 − soft IoU (Jaccard) per image, averaged: every image weighs the same, as in mIoU."""
    inter, predicted, true = _soft_overlap(logits, target)
    return (1 - (inter + eps) / (predicted + true - inter + eps)).mean()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, alpha: float = 0.25) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al. 2017), mean over pixels."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    prob = logits.sigmoid()
    p_t = prob * target + (1 - prob) * (1 - target)
    weight = alpha * target + (1 - alpha) * (1 - target)
    return (weight * (1 - p_t) ** gamma * bce).mean()


LOSSES: dict[str, LossFn] = {
    "bce": F.binary_cross_entropy_with_logits,
    "bce+dice": lambda logits, target: F.binary_cross_entropy_with_logits(logits, target)
    + soft_dice_loss(logits, target),
    "iou": soft_iou_loss,
    "focal+dice": lambda logits, target: 10 * focal_loss(logits, target) + soft_dice_loss(logits, target),
}
