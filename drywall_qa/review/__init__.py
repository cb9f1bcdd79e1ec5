"""Review decisions per image (:mod:`.decisions`) and the corrected split they export (:mod:`.export`); the command
is ``drywall-qa review export``."""

from drywall_qa.review.decisions import (
    DECISIONS,
    EXCLUDE_IMAGE,
    GROUND_TRUTH_WRONG,
    MASK_SOURCES,
    PREDICTION_CORRECT,
    PREDICTION_WRONG,
    Decision,
    DecisionStore,
    decode_mask,
    encode_mask,
    read_decisions,
)
from drywall_qa.review.export import ExportSummary, export_split

__all__ = ["DECISIONS", "EXCLUDE_IMAGE", "GROUND_TRUTH_WRONG", "MASK_SOURCES", "PREDICTION_CORRECT",
           "PREDICTION_WRONG", "Decision", "DecisionStore", "ExportSummary", "decode_mask", "encode_mask",
           "export_split", "read_decisions"]
