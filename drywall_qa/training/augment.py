"""Joint image/mask augmentation for training from scratch: flips, rotation, scale/crop, colour.

Geometry is one affine warp (``grid_sample``) applied to image and mask together at twice the output size, then the
mask is area-averaged down to the output size, so 1–2 px cracks become soft targets instead of vanishing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transforms (set ``enabled=False`` for a plain resize)."""

    enabled: bool = True
    min_scale: float = 0.55  # crop side as a fraction of the image side (zoom in up to 1/min_scale)
    max_scale: float = 1.0
    max_rotation_deg: float = 20.0
    rot90: bool = True
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.3
    grayscale_p: float = 0.1
    noise_std: float = 0.02


def _affine(rng: np.random.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """A 2×3 matrix in normalised coordinates: output grid → input sampling positions."""
    if not cfg.enabled:
        return torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    scale = rng.uniform(cfg.min_scale, cfg.max_scale)
    angle = math.radians(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg))
    if cfg.rot90:
        angle += rng.integers(4) * math.pi / 2
    flip = -1.0 if rng.random() < 0.5 else 1.0
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    # keep the crop inside the image as far as the rotation allows
    reach = max(0.0, 1.0 - scale * (abs(math.cos(angle)) + abs(math.sin(angle))))
    tx, ty = rng.uniform(-reach, reach, size=2) if reach > 0 else (0.0, 0.0)
    return torch.tensor([[cos * flip, -sin, tx], [sin * flip, cos, ty]], dtype=torch.float32)


def _colour(image: torch.Tensor, rng: np.random.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """Brightness, contrast, saturation, occasional grayscale and a little noise on a [0, 1] image."""
    if not cfg.enabled:
        return image
    gray = image.mean(dim=0, keepdim=True)
    image = image * (1 + rng.uniform(-cfg.brightness, cfg.brightness))
    image = (image - gray.mean()) * (1 + rng.uniform(-cfg.contrast, cfg.contrast)) + gray.mean()
    if rng.random() < cfg.grayscale_p:
        image = image.mean(dim=0, keepdim=True).expand_as(image)
    else:
        image = gray + (image - gray) * (1 + rng.uniform(-cfg.saturation, cfg.saturation))
    noise = torch.from_numpy(rng.standard_normal(image.shape).astype(np.float32)) * cfg.noise_std
    return (image + noise).clamp_(0, 1)


def augment(
    image: np.ndarray, mask: np.ndarray, size: int, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()
) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB uint8 ``H×W×3`` + bool mask → float image ``[3, size, size]`` in [0, 1] and soft mask ``[size, size]``."""
    img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    msk = torch.from_numpy(np.ascontiguousarray(mask)).float()[None]
    theta = _affine(rng, cfg)[None]
    grid = F.affine_grid(theta, [1, 1, 2 * size, 2 * size], align_corners=False)
    if img.shape[-1] > 2 * size:  # pre-shrink a large image so bilinear sampling does not alias
        img = F.interpolate(img[None], scale_factor=2 * size / img.shape[-1], mode="bilinear", antialias=True)[0]
    warped = F.grid_sample(img[None], grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    warped_mask = F.grid_sample(msk[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out_image = F.interpolate(warped, size=(size, size), mode="area")[0]
    out_mask = F.interpolate(warped_mask, size=(size, size), mode="area")[0, 0]
    return _colour(out_image, rng, cfg), out_mask
