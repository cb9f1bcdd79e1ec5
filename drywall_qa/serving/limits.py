"""How much work one Score or Evaluate request may ask for, so a single click (or API call) cannot hold the heavy
lane for hours."""

from __future__ import annotations

from collections.abc import Sequence

from drywall_qa.core.errors import InputError
from drywall_qa.evaluation import robustness_passes

#: model passes (image × prompt, counting every perturbed copy and negative image) one request may ask for; about
#: 5 minutes of the bundled model on 2 CPU cores
MAX_JOB_PASSES = 6000


def job_passes(images: int, negatives: int, prompts: int, perturbations: Sequence[str] = ()) -> int:
    """Model passes of an evaluation: every image once and once per perturbed pass of the robustness report
    (:func:`~drywall_qa.evaluation.robustness_passes` of the perturbations' names), plus the negatives."""
    return (images * (1 + robustness_passes(perturbations)) + negatives) * prompts


def check_job_size(images: int, negatives: int, prompts: int, perturbations: Sequence[str] = ()) -> None:
    """:class:`InputError` when the request would exceed :data:`MAX_JOB_PASSES`."""
    passes = job_passes(images, negatives, prompts, perturbations)
    if passes > MAX_JOB_PASSES:
        raise InputError("job size", f"{images} images × {prompts} prompts × {1 + robustness_passes(perturbations)} "
                         f"passes{f' + {negatives} negative images' if negatives else ''} = {passes:,} model passes, "
                         f"the limit per request is {MAX_JOB_PASSES:,}",
                         "use fewer images, prompts or perturbations, or run `drywall-qa evaluate` "
                         "on your own machine")
