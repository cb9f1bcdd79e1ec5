"""What a prediction is, and what to tell a user about it."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from drywall_qa.core.shapes import PIXELS
from drywall_qa.core.tiling import ScalePolicy


@dataclass
class Prediction:
    """One prompt's result on one image; ``probabilities`` (float16 in [0, 1]) and ``mask`` (bool) have the input
    image's size ``H×W``."""

    #: the text prompt, or a visual prompt's label
    prompt: str
    probabilities: np.ndarray
    mask: np.ndarray
    #: raw model output at the model's scale (CPU, float32; see :class:`drywall_qa.core.views.ViewResult`)
    logits: torch.Tensor
    threshold: float
    #: image-level presence probability (see :mod:`drywall_qa.core.presence`): calibrated when the checkpoint holds a
    #: presence calibration for the prompt (:mod:`drywall_qa.core.postprocess`), else the sigmoid of the presence logit
    presence: float | None = None
    #: the prompt's text is longer than the text encoder's token limit, so only its start was used
    truncated: bool = False
    #: how the mask was shaped from the thresholded probabilities (:mod:`drywall_qa.core.shapes`)
    shape: str = PIXELS
    #: the calibrated prompt whose threshold, shape and presence calibration were used: the prompt itself, one it
    #: paraphrases (see :meth:`Segmenter.settings_source`), or None (defaults)
    settings_from: str | None = None
    #: the trained (calibrated) prompt whose text embedding is closest to this prompt's, and their cosine similarity;
    #: None where the backend does not measure it (CLIPSeg, visual prompts, an uncalibrated checkpoint)
    closest_concept: str | None = None
    concept_similarity: float | None = None
    #: the prompt is further than the backend's ``known_concept_similarity`` from every trained prompt, so the mask
    #: and presence answer a question the model was never taught (see :func:`unknown_concept_note`)
    unknown_concept: bool = False
    #: which views of the photo the prediction blends (:mod:`drywall_qa.core.tiling`)
    policy: ScalePolicy = ScalePolicy()
    #: how it was made, for users: "whole image", "tiled: 35 windows at 640 px", …
    view: str = "whole image"
    #: the raw presence logit the ``presence`` probability is calibrated from
    presence_logit: float | None = None
    #: whether ``presence`` went through a calibration the checkpoint holds (else it is the logit's sigmoid)
    presence_calibrated: bool = False

    @property
    def borrowed_settings(self) -> bool:
        """Whether the threshold, shape and presence calibration are another (calibrated) prompt's."""
        return self.settings_from not in (None, self.prompt)

    @property
    def coverage(self) -> float:
        """Fraction of the image's pixels in the mask."""
        return float(self.mask.mean())

    def to_dict(self) -> dict[str, Any]:
        """What every output records of a prediction (JSON-ready; the mask itself is the caller's to write)."""
        return {"prompt": self.prompt, "threshold": float(self.threshold), "shape": self.shape,
                "coverage": self.coverage, "found": bool(self.mask.any()), "presence": self.presence,
                "presence_calibrated": self.presence_calibrated, "settings_from": self.settings_from,
                "truncated": self.truncated, "unknown_concept": self.unknown_concept,
                "closest_concept": self.closest_concept, "concept_similarity": self.concept_similarity,
                "view": self.view}


class Concept(NamedTuple):
    """How close a prompt is to what the model was trained on (fields as in :class:`Prediction`)."""

    prompt: str
    closest_concept: str | None = None
    concept_similarity: float | None = None
    unknown_concept: bool = False


def clean_prompt(text: str) -> str:
    """Control and format characters and other whitespace become spaces; runs of spaces collapse to one."""
    visible = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    return " ".join(visible.split())


def _shorten(prompt: str) -> str:
    return prompt if len(prompt) <= 40 else prompt[:40] + "…"


def truncation_note(prompt: str, limit: int | None) -> str:
    """What to tell a user whose prompt was truncated by the text encoder."""
    return f"prompt '{_shorten(prompt)}' is longer than the model's {limit}-token limit; only its start was used"


def borrowed_settings_note(prediction: Prediction) -> str:
    """What to tell a user whose prompt uses the tuned settings of a calibrated prompt it paraphrases."""
    return (f"prompt '{_shorten(prediction.prompt)}' uses the tuned threshold and mask shape of "
            f"'{prediction.settings_from}'")


def unknown_concept_note(prediction: Prediction | Concept, model: str) -> str:
    """What to tell a user whose prompt is far from every prompt ``model`` (a family name, e.g. ``segmenter.backend
    .family``) was trained on; for a prediction or concept with ``unknown_concept`` set."""
    return (f"'{_shorten(prediction.prompt)}' is not a concept {model} was trained on (closest: "
            f"'{prediction.closest_concept}', similarity {prediction.concept_similarity:.2f}) — results are "
            "unreliable; CLIPSeg handles open-vocabulary prompts")
