"""Joint image/mask augmentation for training from scratch: flips, rotation, scale/crop, colour.

The crop side is a fraction of the image's shorter side: below 1 zooms in; above 1 zooms out, the image surrounded by
mirrored copies of itself (a wider shot of the same wall, each structure smaller). ``log_scale`` draws the fraction
log-uniformly, so zooming in by 4 is as likely as zooming out by 4 (scale jitter).

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
    max_scale: float = 1.0  # above 1: zoom out over mirrored copies of the image
    log_scale: bool = False  # draw the crop fraction log-uniformly
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


def crop_fraction(rng: np.random.Generator, cfg: AugmentConfig) -> float:
    """The crop side as a fraction of the image's shorter side (1 without augmentation)."""
    if not cfg.enabled:
        return 1.0
    if cfg.log_scale:
        return float(np.exp(rng.uniform(np.log(cfg.min_scale), np.log(cfg.max_scale))))
    return float(rng.uniform(cfg.min_scale, cfg.max_scale))


def _mirrored(image: np.ndarray, mask: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The image and mask surrounded by mirrored copies, wide enough for a crop of ``scale`` times the shorter side at
    any rotation, and that crop's fraction of the larger image's shorter side."""
    crop = scale * min(image.shape[:2])
    pad = [(math.ceil(max(0.0, crop * math.sqrt(2) - side) / 2),) * 2 for side in image.shape[:2]]  # room to rotate
    image = np.pad(image, [*pad, (0, 0)], mode="symmetric")
    mask = np.pad(mask, pad, mode="symmetric")
    return image, mask, min(1.0, crop / min(image.shape[:2]))


def augment(
    image: np.ndarray, mask: np.ndarray, size: int, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()
) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB uint8 ``H×W×3`` + bool mask → float image ``[3, size, size]`` in [0, 1] and soft mask ``[size, size]``."""
    scale = crop_fraction(rng, cfg)
    if scale > 1:
        image, mask, scale = _mirrored(image, mask, scale)
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
