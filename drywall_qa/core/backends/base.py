"""The contract every model family implements so the Segmenter, evaluation and training never care which one runs.

Flow: ``preprocess`` (RGB uint8 images → pixel values) → ``encode_image`` (prompt-independent features,
computed once per image) ; ``encode_prompts`` (text → conditioning vectors, frozen, cacheable) — or, where
``supports_visual_prompts``, ``encode_visual_prompts`` (example images → vectors in the same space) ;
``decode`` (features + vectors → logits at the model's native resolution).

Capabilities a family may lack are methods whose default refuses with a clear error: building a new model
(:meth:`Backend.new`, through ``backends.new_backend``), image prompts, unfreezing encoder layers, another input size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from drywall_qa.core.engine import TORCH, resolve_engine
from drywall_qa.core.errors import InputError
from drywall_qa.core.postprocess import PostprocessSettings

Features = tuple[torch.Tensor, ...]


class Backend(ABC):
    """A model family behind one contract. ``model`` is a transformers ``PreTrainedModel``."""

    model: PreTrainedModel
    #: per-prompt post-processing loaded beside the model (:mod:`drywall_qa.core.postprocess`); empty until loaded
    #: or set
    settings: PostprocessSettings
    #: short name shown in the UI and written to metrics files
    family: str = "backend"
    #: True when ``encode_image`` has no trainable parameters, so training may cache its output per image
    frozen_image_encoder: bool = False
    #: True when :meth:`encode_visual_prompts` maps example images into the prompt space (one-shot prompts)
    supports_visual_prompts: bool = False
    #: cosine similarity of prompt embeddings from which a prompt without tuned settings uses those of a calibrated
    #: prompt it paraphrases (``Segmenter.settings_source``); None: never, the text encoder was not measured for it
    paraphrase_similarity: float | None = None
    #: cosine similarity to the closest calibrated prompt below which a text prompt is an unknown concept
    #: (``Segmenter.concepts``); at most ``paraphrase_similarity``. None: never flagged (open vocabulary)
    known_concept_similarity: float | None = None
    #: side in photo pixels of the windows a tiled prediction uses when no scale policy names one
    #: (:mod:`drywall_qa.core.tiling`): the 640 px dataset photos the models here are trained on
    tile_window: int = 640
    #: True when the model runs at any input side (fully convolutional): :meth:`resize_input` and ``preprocess``'s
    #: ``size`` take other sides, and a scale policy may name a smaller one (:mod:`drywall_qa.core.tiling`)
    resizable_input: bool = False
    #: per-channel normalisation of [0, 1] images
    image_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    image_std: tuple[float, ...] = (0.5, 0.5, 0.5)

    @classmethod
    @abstractmethod
    def from_pretrained(cls, source: str, device: str | torch.device | None = None) -> Backend:
        """Load a checkpoint directory (or a hub id, where the family is published there); ``None``: CPU."""

    @classmethod
    def new(cls, device: str | torch.device | None = None, **options) -> Backend:
        """A new model of this family to train (``options``: fields of its config); ``None``: CPU."""
        raise NotImplementedError(f"the {cls.family} backend builds no new models: fine-tune a checkpoint")

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    @abstractmethod
    def input_size(self) -> int:
        """Side of the square model input, in pixels."""

    def resize_input(self, size: int) -> None:
        """Take square inputs of side ``size`` from now on (fully convolutional families only)."""
        raise InputError("--image-size", f"the {self.family} backend keeps its input size ({self.input_size})",
                         "leave --image-size out")

    @abstractmethod
    def preprocess(self, images: Sequence[np.ndarray], size: int | None = None) -> torch.Tensor:
        """RGB uint8 ``H×W×3`` arrays → pixel values ``[B, 3, S, S]`` on the model's device; ``S`` is ``size``
        (only where ``resizable_input``), else ``input_size``."""

    def check_input_side(self, size: int | None) -> int:
        """``size`` if this backend can shrink its input to it (``None``: ``input_size``), else one clear error."""
        if size is None or size == self.input_size:
            return self.input_size
        if not self.resizable_input:
            raise InputError("input", f"the {self.family} backend keeps its input size ({self.input_size}), not "
                             f"{size}", "leave the scale policy's input out")
        if size > self.input_size:
            raise InputError("input", f"{size} is larger than the model's input side ({self.input_size})",
                             "name a smaller side, or leave the scale policy's input out")
        return size

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1], ``[B, 3, S, S]`` → pixel values (training feeds augmented images)."""
        mean = torch.tensor(self.image_mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.image_std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        return (images - mean) / std

    @abstractmethod
    def encode_image(self, pixel_values: torch.Tensor) -> Features:
        """Prompt-independent features of a batch of images (frozen parts only for CLIPSeg)."""

    @property
    def engine(self) -> str:
        """The engine that runs inference (:mod:`drywall_qa.core.engine`): ``torch`` unless :meth:`use_engine`
        chose another that this family supports."""
        return TORCH

    def use_engine(self, engine: str) -> str:
        """Run inference with ``engine`` (``auto``, ``torch`` or ``onnxruntime``) where this family can; training
        and gradients always run in PyTorch. Returns the engine that runs: families without an exported graph keep
        ``torch``."""
        resolve_engine(engine, self.device)
        return self.engine

    @abstractmethod
    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """Conditioning vectors ``[P, D]`` for text prompts; frozen, so callers may cache them per prompt."""

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase | None:
        """The text encoder's tokenizer (None: prompts are not tokenised)."""
        return None

    @property
    def max_prompt_tokens(self) -> int | None:
        """Most tokens (special tokens included) the text encoder reads; :meth:`encode_prompts` truncates longer
        prompts to this. None: no limit."""
        return None

    def truncated_prompts(self, prompts: Sequence[str]) -> list[bool]:
        """Which text prompts are longer than :attr:`max_prompt_tokens`, so only their start is encoded."""
        limit = self.max_prompt_tokens
        if limit is None or self.tokenizer is None or not prompts:
            return [False] * len(prompts)
        ids = self.tokenizer(list(prompts), truncation=False, verbose=False)["input_ids"]
        return [len(tokens) > limit for tokens in ids]

    def encode_visual_prompts(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Conditioning vectors ``[N, D]`` for example images (RGB uint8), in the space of :meth:`encode_prompts`.

        Only backends with ``supports_visual_prompts`` implement it.
        """
        raise NotImplementedError(f"the {self.family} backend has no image-prompt encoder")

    @abstractmethod
    def decode(self, features: Features, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, h, w]``; ``features`` and ``embeddings`` share the batch dimension ``B``."""

    def trainable_parameters(self) -> Iterator[torch.nn.Parameter]:
        """Parameters fine-tuning updates (default: all that require grad)."""
        return (p for p in self.model.parameters() if p.requires_grad)

    def unfreeze_last(self, n: int) -> None:
        """Also train the last ``n`` layers of a frozen image encoder (``frozen_image_encoder`` becomes False)."""
        raise InputError("--unfreeze-last", f"the {self.family} image encoder trains in full already",
                         "leave --unfreeze-last out")

    def cache_key(self) -> str:
        """Identifies the frozen image encoder, so cached features are invalidated when it changes."""
        return f"{self.family}:{self.model.config.name_or_path}"

    @abstractmethod
    def save_pretrained(self, directory: str | Path) -> None:
        """Write model (safetensors) and whatever preprocessing/tokenizer files loading needs (not :attr:`settings`:
        they are saved on their own, ``settings.save_pretrained``)."""


def repeat_features(features: Features, repeats: int) -> Features:
    """Repeat each image's features ``repeats`` times along the batch (image-major order), keeping a channels-last
    layout (one copy, no conversion back and forth)."""
    if repeats == 1:
        return features
    return tuple(_repeat(f, repeats) for f in features)


def _repeat(feature: torch.Tensor, repeats: int) -> torch.Tensor:
    channels_last = feature.dim() == 4 and feature.is_contiguous(memory_format=torch.channels_last)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty((feature.shape[0] * repeats, *feature.shape[1:]), dtype=feature.dtype, device=feature.device,
                      memory_format=layout)
    out.view(feature.shape[0], repeats, *feature.shape[1:]).copy_(feature.unsqueeze(1))
    return out
