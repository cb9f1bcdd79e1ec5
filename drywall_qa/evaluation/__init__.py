"""Scoring a model on a split: the runner (:mod:`.runner`) and what it writes (:mod:`.writers`); the command is
``python -m drywall_qa.evaluate``."""

from drywall_qa.evaluation.runner import (
    Progress,
    Split,
    Stop,
    evaluate_robustness,
    evaluate_split,
    mark_stopped,
    predictions_over,
    prompt_label,
    robustness_passes,
)
from drywall_qa.evaluation.writers import CSV_FIELDS, ROBUSTNESS_FIELDS, write_png

__all__ = ["CSV_FIELDS", "ROBUSTNESS_FIELDS", "Progress", "Split", "Stop", "evaluate_robustness", "evaluate_split",
           "mark_stopped", "predictions_over", "prompt_label", "robustness_passes", "write_png"]
