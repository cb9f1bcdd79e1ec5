"""The model work of a whole server: one :class:`~drywall_qa.serving.scheduler.Scheduler` shared by every loaded
model (they share the CPU), the per-request work budget and the one-large-request-at-a-time rule
(:mod:`drywall_qa.serving.budget`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from drywall_qa.core.backends.feature_cache import FeatureCache
from drywall_qa.core.segmenter import Condition, Prediction, Segmenter
from drywall_qa.core.views import Progress
from drywall_qa.serving.budget import LargeRequests, check_work
from drywall_qa.serving.scheduler import Scheduler


@dataclass
class ModelService:
    """Runs predictions for many requests on shared models, fairly and within budget."""

    scheduler: Scheduler = field(default_factory=Scheduler)
    large: LargeRequests = field(default_factory=LargeRequests)

    def predict(self, segmenter: Segmenter, image: np.ndarray, prompts: Sequence[Condition],
                threshold: float | None = None, tiling: str = "auto", progress: Progress | None = None,
                features: FeatureCache | None = None) -> list[Prediction]:
        """:meth:`Segmenter.predict` for the current caller: refused above the work budget, waiting for another
        large request when it is large, its units of model work interleaved with other requests' by the
        scheduler."""
        height, width = image.shape[:2]
        with self.scheduler.turn():
            views = segmenter.views((height, width), prompts, tiling)
        work = height * width * views
        check_work(work, width, height, views)
        with self.large.admit(work):
            return segmenter.predict(image, prompts, threshold, tiling=tiling, progress=progress, features=features,
                                     turn=self.scheduler.turn)
