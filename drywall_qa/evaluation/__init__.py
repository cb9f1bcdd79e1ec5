"""Scoring a model on a split: the runner (:mod:`.runner`), its typed result and how it is written
(:mod:`.result`, :mod:`.writers`); the command is ``drywall-qa evaluate``."""

from drywall_qa.evaluation.result import EvaluationResult
from drywall_qa.evaluation.runner import (
    EvaluationSettings,
    Progress,
    Split,
    Stop,
    evaluate_robustness,
    evaluate_split,
    predictions_over,
    prompt_label,
    robustness_passes,
)
from drywall_qa.evaluation.writers import CSV_FIELDS, ROBUSTNESS_FIELDS, PanelWriter

__all__ = ["CSV_FIELDS", "ROBUSTNESS_FIELDS", "EvaluationResult", "EvaluationSettings", "PanelWriter", "Progress",
           "Split", "Stop", "evaluate_robustness", "evaluate_split", "predictions_over", "prompt_label",
           "robustness_passes"]
