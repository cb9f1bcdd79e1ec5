"""How the passes of a pyramid (:mod:`drywall_qa.core.tiling`) combine into one map per prompt.

* ``mean`` / ``max``: per pixel, the running mean or the maximum of the passes' maps.
* ``select``: the whole map of the one pass the model is most decided on: the fewest hesitant outputs (probability
  within :data:`HESITANT`) per foreground output (at least 0.5), counted on the model's own outputs inside the photo.
  Shown structures at a scale it was not trained at, the model answers with more hesitant pixels around what it
  finds. A pass that finds nothing is never chosen over one that finds something, and a tie keeps the pass that ran
  first. The choice is made per photo and prompt, so each photo is read at its own working scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:          # torch is imported by whoever passes tensors; the command lines parse without it
    import torch

MEAN, MAX, SELECT = "mean", "max", "select"
#: how the maps of several passes are combined
FUSIONS = (MEAN, MAX, SELECT)
#: probabilities the model is hesitant about
HESITANT = (0.2, 0.8)


@dataclass(frozen=True)
class PassFusion:
    """How one pass's rows join each prompt's map: ``done`` passes already in it, combined by ``modes`` (a ``select``
    pass always writes a map of its own)."""

    done: list[int]
    modes: list[str]

    def combine(self, prompt: int, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
        """The map's rows after this pass: ``new`` alone, their running mean, or their maximum."""
        done = self.done[prompt]
        if done == 0 or self.modes[prompt] == SELECT:
            return new
        if self.modes[prompt] == MAX:
            return new.maximum(old)
        return (new + old * done) / (done + 1)


@dataclass
class Decidedness:
    """Hesitant and foreground outputs of one pass, per prompt; ``counted``: which prompts need them (the ``select``
    ones; None: all), so the others cost nothing."""

    prompts: int
    counted: tuple[bool, ...] | None = None
    hesitant: np.ndarray = field(init=False)
    foreground: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.hesitant, self.foreground = np.zeros(self.prompts), np.zeros(self.prompts)

    def wants(self, prompt: int) -> bool:
        """Whether ``prompt``'s outputs are counted."""
        return self.counted is None or self.counted[prompt]

    def add(self, prompt: int, probabilities: torch.Tensor) -> None:
        """Count one view's outputs (inside the photo) for ``prompt``."""
        self.hesitant[prompt] += int(((probabilities > HESITANT[0]) & (probabilities < HESITANT[1])).sum())
        self.foreground[prompt] += int((probabilities >= 0.5).sum())

    def cost(self, prompt: int) -> float:
        """Hesitant outputs per foreground output (infinite when the pass found nothing): lower is more decided."""
        return self.hesitant[prompt] / self.foreground[prompt] if self.foreground[prompt] else float("inf")
