"""drywall-qa-lite behind the backend contract: :class:`LiteModel` plus the frozen sentence encoder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from transformers import PreTrainedTokenizerBase

from drywall_qa.backends.base import Backend, Features
from drywall_qa.backends.checks import RESTORE, read_config, reason
from drywall_qa.backends.lite.config import LiteConfig, check_config
from drywall_qa.backends.lite.model import LiteModel, check_weights_fit
from drywall_qa.backends.lite.prompt_encoder import SentenceEncoder
from drywall_qa.backends.onnx_graph import OnnxGraph
from drywall_qa.engine import ONNXRUNTIME, TORCH, resolve_engine
from drywall_qa.errors import ModelLoadError
from drywall_qa.postprocess import PostprocessSettings


class LiteBackend(Backend):
    """drywall-qa-lite behind the backend contract."""

    family = "drywall-qa-lite"
    #: all-MiniLM-L6-v2: paraphrases of the registered prompts measure 0.82–0.97 against them, unrelated prompts
    #: ("segment sky", "segment wall", the training distractors) at most 0.64
    paraphrase_similarity = 0.75
    #: below this a prompt is an unknown concept: chosen on the 71 prompts of ``python -m drywall_qa.concepts``
    #: (paraphrases 0.58–0.98, unrelated prompts 0.38–0.84), 95.8 % right, leave-one-out 95.8 %
    known_concept_similarity = 0.643
    resizable_input = True

    def __init__(self, model: LiteModel, text_encoder: SentenceEncoder | None = None) -> None:
        self.model = model
        self.text_encoder = text_encoder or SentenceEncoder(model.config.text_encoder).to(self.device)
        self.settings = PostprocessSettings()
        #: the image encoder in ONNX Runtime, while :meth:`use_engine` chose it
        self.encoder_graph: OnnxGraph | None = None

    @classmethod
    def new(cls, device: str | torch.device | None = None, **options) -> LiteBackend:
        """A new model (``options``: :class:`LiteConfig` fields) whose encoder starts from ImageNet weights."""
        model = LiteModel(LiteConfig(**options))
        model.backbone.load_imagenet_weights()
        return cls(model.to(device or "cpu"))

    @classmethod
    def from_pretrained(cls, directory: str, device: str | torch.device | None = None) -> LiteBackend:
        """Load a checkpoint directory whose config.json sizes are sane and whose weights fit the model they build."""
        config = read_config(Path(directory))
        check_config(config, Path(directory) / "config.json")
        check_weights_fit(LiteConfig.from_dict(config), Path(directory) / "model.safetensors")
        try:
            model = LiteModel.from_pretrained(directory)
        except (OSError, ValueError, RuntimeError, SafetensorError) as err:
            raise ModelLoadError(f"{directory}: could not load a drywall-qa-lite checkpoint ({reason(err)}). "
                                 f"{RESTORE}") from err
        return cls(model.to(device or "cpu").eval())

    @property
    def input_size(self) -> int:
        return self.model.config.image_size

    def resize_input(self, size: int) -> None:
        """The model is fully convolutional: it runs at any side."""
        self.model.config.image_size = size

    @property
    def image_std(self) -> tuple[float, ...]:
        return self.model.image_std

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self.text_encoder.tokenizer

    @property
    def max_prompt_tokens(self) -> int:
        return self.text_encoder.max_tokens

    def preprocess(self, images: Sequence[np.ndarray], size: int | None = None) -> torch.Tensor:
        side = self.check_input_side(size)
        size = (side, side)
        batch = [
            F.interpolate(torch.from_numpy(np.array(im, dtype=np.uint8)).permute(2, 0, 1)[None].float(),
                          size=size, mode="bilinear", antialias=True, align_corners=False)
            for im in images
        ]
        return self.normalize(torch.cat(batch).div_(255.0).to(self.device))

    @property
    def engine(self) -> str:
        graph = self.encoder_graph
        return ONNXRUNTIME if graph is not None and graph.disabled is None else TORCH

    def use_engine(self, engine: str) -> str:
        """``onnxruntime`` runs the image encoder (the prompt-independent part, most of a photo's time) in ONNX
        Runtime, exported on first use; the decoder stays eager, which measures as fast (docs/benchmarks.md)."""
        self.encoder_graph = _encoder_graph(self.model) if resolve_engine(engine, self.device) == ONNXRUNTIME else None
        return self.engine

    def encode_image(self, pixel_values: torch.Tensor) -> Features:
        """In ONNX Runtime where the engine is chosen and the graph computes what eager would (inference, eval
        mode, CPU; :meth:`OnnxGraph.applies`), else eager; channels-last either way."""
        graph = self.encoder_graph
        if graph is not None and graph.applies((pixel_values,)):
            features = graph.run(pixel_values)
            if features is not None:
                return tuple(f.contiguous(memory_format=torch.channels_last) for f in features)
        return self.model.encode_image(pixel_values)

    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        return self.text_encoder(prompts).to(self.device)

    def decode(self, features: Features, embeddings: torch.Tensor) -> torch.Tensor:
        return self.model.decode(features, embeddings)

    def save_pretrained(self, directory: str | Path) -> None:
        self.model.save_pretrained(directory)


def _encoder_graph(model: LiteModel) -> OnnxGraph:
    """``model.encode_image`` as an ONNX graph taking any batch and input side."""
    outputs = [f"features_stride{2 ** level}" for level in range(1, 6)]
    side = model.config.image_size
    axes = {name: {0: "batch", 2: f"{name}_height", 3: f"{name}_width"} for name in ["pixel_values", *outputs]}
    return OnnxGraph(model, "encode_image", "lite-image-encoder", lambda: (torch.zeros(2, 3, side, side),),
                     ["pixel_values"], outputs, axes)
