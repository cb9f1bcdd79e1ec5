"""drywall-qa-lite behind the backend contract: :class:`LiteModel` plus the frozen sentence encoder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from transformers import PreTrainedTokenizerBase

from drywall_qa.core.backends.base import Backend, Features
from drywall_qa.core.backends.checks import RESTORE, read_config, reason
from drywall_qa.core.backends.lite.config import LiteConfig, check_config
from drywall_qa.core.backends.lite.graphs import decoder_graph, encoder_graph
from drywall_qa.core.backends.lite.model import LiteModel, check_weights_fit
from drywall_qa.core.backends.lite.prompt_encoder import SentenceEncoder
from drywall_qa.core.backends.onnx_graph import OnnxGraph
from drywall_qa.core.engine import ONNXRUNTIME, TORCH, resolve_engine
from drywall_qa.core.errors import ModelLoadError
from drywall_qa.core.postprocess import PostprocessSettings


class LiteBackend(Backend):
    """drywall-qa-lite behind the backend contract."""

    family = "drywall-qa-lite"
    #: all-MiniLM-L6-v2: paraphrases of the registered prompts measure 0.82–0.97 against them, unrelated prompts
    #: ("segment sky", "segment wall", the training distractors) at most 0.64
    paraphrase_similarity = 0.75
    #: below this a prompt is an unknown concept: chosen on the 71 prompts of ``drywall-qa concepts``
    #: (paraphrases 0.58–0.98, unrelated prompts 0.38–0.84), 95.8 % right, leave-one-out 95.8 %
    known_concept_similarity = 0.643
    resizable_input = True

    def __init__(self, model: LiteModel, text_encoder: SentenceEncoder | None = None) -> None:
        self.model = model
        self.text_encoder = text_encoder or SentenceEncoder(model.config.text_encoder).to(self.device)
        self.settings = PostprocessSettings()
        #: the image encoder and the decoder in ONNX Runtime, while :meth:`use_engine` chose it
        self.graphs: tuple[OnnxGraph, OnnxGraph] | None = None

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
        return ONNXRUNTIME if self.graphs is not None and self.graphs[0].disabled is None else TORCH

    def use_engine(self, engine: str) -> str:
        """``onnxruntime`` runs the image encoder and the decoder in ONNX Runtime (:mod:`.graphs`), each exported
        on first use; both measure faster there on a CPU (docs/benchmarks.md)."""
        chosen = resolve_engine(engine, self.device) == ONNXRUNTIME
        self.graphs = (encoder_graph(self.model), decoder_graph(self.model)) if chosen else None
        return self.engine

    def encode_image(self, pixel_values: torch.Tensor) -> Features:
        """In ONNX Runtime where the engine is chosen and its graph computes what eager would (inference, eval
        mode, CPU: :meth:`OnnxGraph.applies`), else eager (channels-last, the layout eager decoding runs fastest in).
        """
        features = self._run(0, pixel_values)
        return self.model.encode_image(pixel_values) if features is None else features

    def decode(self, features: Features, embeddings: torch.Tensor) -> torch.Tensor:
        logits = self._run(1, *features, embeddings)
        return self.model.decode(features, embeddings) if logits is None else logits[0]

    def _run(self, part: int, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """Graph ``part`` (0 encoder, 1 decoder) on ``inputs``, or None where eager must run."""
        graph = self.graphs[part] if self.graphs is not None else None
        return graph.run(*inputs) if graph is not None and graph.applies(inputs) else None

    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        return self.text_encoder(prompts).to(self.device)

    def save_pretrained(self, directory: str | Path) -> None:
        self.model.save_pretrained(directory)

