"""Joint image/mask augmentation for training from scratch: flips, rotation, scale/crop, colour.

Geometry is one affine warp (PIL, fast on a CPU) applied to image and mask together at twice the output size, then
both are box-averaged down to the output size, so 1–2 px cracks become soft targets instead of vanishing. A crop that
spans more than two source pixels per warped pixel (a large image, a small output) is box-averaged first, so the
warp's bilinear sampling never steps over a thin line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image


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


def _affine(rng: np.random.Generator, cfg: AugmentConfig, scale: float, size: tuple[int, int],
            out: int) -> tuple[float, ...]:
    """PIL affine coefficients mapping output pixels (``out``×``out``) to input pixels of an image of ``size``
    (width, height): a square crop of ``scale`` times the shorter side anywhere in the image, a random rotation (free
    angle plus optional multiples of 90°) and a horizontal flip."""
    angle = math.radians(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)) if cfg.enabled else 0.0
    if cfg.enabled and cfg.rot90:
        angle += rng.integers(4) * math.pi / 2
    flip = -1.0 if cfg.enabled and rng.random() < 0.5 else 1.0
    crop = scale * min(size)
    step = crop / out  # input pixels per output pixel
    cos, sin = math.cos(angle) * step, math.sin(angle) * step
    # keep the crop inside the image as far as the rotation allows
    centre = np.array(size, dtype=np.float64) / 2
    reach = np.maximum(0.0, centre - crop / 2 * (abs(math.cos(angle)) + abs(math.sin(angle))))
    cx, cy = centre + (rng.uniform(-reach, reach) if reach.max() > 0 else np.zeros(2))
    a, b, d, e = cos * flip, -sin, sin * flip, cos
    half = out / 2
    return (a, b, cx - a * half - b * half, d, e, cy - d * half - e * half)


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
    scale = rng.uniform(cfg.min_scale, cfg.max_scale) if cfg.enabled else 1.0
    factor = max(1, int(scale * min(image.shape[:2]) / (2 * size)))  # source pixels per warped pixel, rounded down
    source = Image.fromarray(image).reduce(factor)
    source_mask = Image.fromarray(mask.astype(np.uint8) * 255).reduce(factor)
    coefficients = _affine(rng, cfg, scale, source.size, 2 * size)
    warp = {"size": (2 * size, 2 * size), "method": Image.Transform.AFFINE, "data": coefficients,
            "resample": Image.Resampling.BILINEAR}
    warped = source.transform(**warp).reduce(2)
    warped_mask = source_mask.transform(**warp).reduce(2)
    out_image = torch.from_numpy(np.asarray(warped, dtype=np.float32) / 255.0).permute(2, 0, 1)
    out_mask = torch.from_numpy(np.asarray(warped_mask, dtype=np.float32) / 255.0)
    return _colour(out_image, rng, cfg), out_mask
