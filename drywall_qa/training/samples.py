"""Training samples: (image, prompt, target) triples over one or more datasets, with negative prompts.

Randomness (prompt choice, negatives, augmentation) is drawn from a generator seeded by (seed, epoch, index), so a
run is reproducible, a resumed run sees the same samples as an uninterrupted one, and workers need no shared state.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from scipy import ndimage
from torch.utils.data import Dataset, Sampler

from drywall_qa.data.coco import CocoSplit, DatasetSpec
from drywall_qa.training.augment import AugmentConfig, augment

#: prompts for things absent from every training image; a negative pair teaches the model to answer "nothing".
#: The cross-prompt evaluation uses other unrelated prompts (window, person, sky), so it stays a held-out check.
DISTRACTOR_PROMPTS = (
    "segment door", "segment floor", "segment ceiling lamp", "segment electrical outlet", "segment ladder",
    "segment paint bucket", "segment cable", "segment tree", "segment car", "segment text", "segment dog",
    "segment table",
)


#: an overlay is a mask of another dataset nowhere wider than this (pixels): cracks, not taping or box annotations
OVERLAY_MAX_WIDTH = 12.0
#: tries at drawing a thin enough overlay mask before the sample goes without one
OVERLAY_TRIES = 5


def can_overlay(mask: np.ndarray) -> bool:
    """Whether a mask is non-empty and nowhere wider than ``OVERLAY_MAX_WIDTH`` (no pixel deeper than half of it)."""
    return bool(mask.any()) and float(ndimage.distance_transform_edt(mask).max()) <= OVERLAY_MAX_WIDTH / 2


def darken(image: np.ndarray, mask: np.ndarray, strength: float) -> np.ndarray:
    """``image`` (uint8 ``H×W×3``) darkened by ``strength`` along ``mask``, its edge softened: a crack drawn on it."""
    alpha = ndimage.gaussian_filter(mask.astype(np.float32), 0.7)[..., None]
    return (image * (1 - strength * alpha)).astype(np.uint8)


@dataclass(frozen=True)
class Source:
    """One training split and the dataset it belongs to."""

    spec: DatasetSpec
    split: CocoSplit


class PromptedSegmentationSet(Dataset):
    """Yields dicts with ``image`` ([3,S,S] float in [0,1], or ``index`` when features are cached), ``target``
    (soft mask [S,S]), ``prompt`` and ``negative``.

    With probability ``overlay`` an image also gets a thin mask of another dataset (a crack on a taping photo)
    darkened into it, and a prompt of that dataset then targets the overlaid mask: the datasets never share an image,
    so without it the model learns that a crack means "no taping here".
    """

    def __init__(
        self,
        sources: Sequence[Source],
        size: int,
        prompts: str = "all",
        negatives: float = 0.0,
        seed: int = 0,
        augmentation: AugmentConfig = AugmentConfig(),
        limit: int | None = None,
        images: bool = True,
        overlay: float = 0.0,
    ) -> None:
        if prompts not in ("canonical", "all"):
            raise ValueError(f"prompts must be 'canonical' or 'all', not {prompts!r}")
        self.sources, self.size, self.prompts, self.negatives = list(sources), size, prompts, negatives
        self.seed, self.augmentation, self.images, self.epoch = seed, augmentation, images, 0
        if overlay and not images:
            raise ValueError("overlays need images: they cannot be drawn into cached features")
        self.overlay = overlay
        self._overlay_ok: dict[tuple[int, int], bool] = {}  # (source, image) → can_overlay(its mask)
        self.index = [(s, i) for s, src in enumerate(self.sources) for i in range(min(len(src.split), limit or 10**9))]

    def __len__(self) -> int:
        return len(self.index)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _prompts_of(self, spec: DatasetSpec) -> tuple[str, ...]:
        return spec.prompts if self.prompts == "all" else (spec.canonical,)

    def _negative_prompt(self, own: DatasetSpec, rng: np.random.Generator) -> str:
        others = [p for src in self.sources if src.spec.name != own.name for p in self._prompts_of(src.spec)]
        pool = others if others and rng.random() < 0.5 else list(DISTRACTOR_PROMPTS)
        return pool[rng.integers(len(pool))]

    def _overlay_mask(self, own: DatasetSpec, shape: tuple[int, int],
                      rng: np.random.Generator) -> tuple[DatasetSpec, np.ndarray] | None:
        """A thin mask from a random image of another dataset, resized to ``shape``; None when none was found."""
        donors = [k for k, src in enumerate(self.sources) if src.spec.name != own.name]
        for _ in range(OVERLAY_TRIES if donors else 0):
            source_id = donors[rng.integers(len(donors))]
            donor = self.sources[source_id]
            image_id = int(rng.integers(len(donor.split)))
            key = (source_id, image_id)
            if not self._overlay_ok.get(key, True):
                continue  # known to be too wide: its mask is not decoded again
            mask = donor.split.mask(image_id)
            if key not in self._overlay_ok:
                self._overlay_ok[key] = can_overlay(mask)
            if self._overlay_ok[key]:
                resized = Image.fromarray(mask.astype(np.uint8)).resize(shape[::-1], Image.Resampling.NEAREST)
                return donor.spec, np.asarray(resized, bool)
        return None

    def __getitem__(self, item: int) -> dict:
        source_id, image_id = self.index[item]
        source = self.sources[source_id]
        rng = np.random.default_rng((self.seed, self.epoch, item))
        negative = rng.random() < self.negatives
        own = self._prompts_of(source.spec)
        prompt = self._negative_prompt(source.spec, rng) if negative else own[rng.integers(len(own))]
        mask = source.split.mask(image_id)
        if negative:
            mask = np.zeros_like(mask)
        sample = {"prompt": prompt, "negative": negative, "index": item}
        if not self.images:
            sample["target"] = torch.nn.functional.interpolate(
                torch.from_numpy(mask).float()[None, None], size=(self.size, self.size), mode="area")[0, 0]
            return sample
        image = source.split.load_image(image_id)
        overlay = (self._overlay_mask(source.spec, mask.shape, rng)
                   if self.overlay and rng.random() < self.overlay else None)
        if overlay is not None:
            spec, overlay_mask = overlay
            image = darken(image, overlay_mask, rng.uniform(0.4, 0.75))
            if prompt in self._prompts_of(spec):
                mask, sample["negative"] = overlay_mask, False
        sample["image"], sample["target"] = augment(image, mask, self.size, rng, self.augmentation)
        return sample

    def image_file(self, item: int) -> str:
        source_id, image_id = self.index[item]
        return str(self.sources[source_id].split.image_path(image_id))


def collate(samples: list[dict]) -> dict:
    """Stack tensors, keep prompts as a list."""
    batch = {"prompt": [s["prompt"] for s in samples], "index": torch.tensor([s["index"] for s in samples]),
             "negative": torch.tensor([s["negative"] for s in samples]),
             "target": torch.stack([s["target"] for s in samples])}
    if "image" in samples[0]:
        batch["image"] = torch.stack([s["image"] for s in samples])
    return batch


class EpochSampler(Sampler[int]):
    """A seeded draw per epoch: all items shuffled, or ``per_epoch`` of them without replacement. With ``weights``
    (e.g. :func:`balanced_weights`) it draws ``per_epoch`` items (default: as many as there are) with replacement,
    so the weights hold however long the epoch is."""

    def __init__(self, length: int, seed: int, per_epoch: int | None = None, weights: Sequence[float] | None = None):
        self.length, self.seed, self.per_epoch, self.epoch = length, seed, per_epoch, 0
        self.weighted = weights is not None
        self.weights = torch.as_tensor(weights if weights is not None else [1.0] * length, dtype=torch.float64)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        wanted = self.per_epoch or self.length
        return wanted if self.weighted else min(wanted, self.length)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        draws = torch.multinomial(self.weights, len(self), replacement=self.weighted, generator=generator)
        return iter(draws.tolist())


def balanced_weights(dataset: PromptedSegmentationSet) -> list[float]:
    """Sampling weights that give every source the same share of an epoch."""
    counts = np.bincount([s for s, _ in dataset.index], minlength=len(dataset.sources))
    return [1.0 / counts[s] for s, _ in dataset.index]
