"""drywall-qa-lite's two inference parts as ONNX Runtime graphs
(:class:`~drywall_qa.core.backends.onnx_graph.OnnxGraph`), for any batch and input side: the image encoder (with the
decoder's lateral projections, as ``encode_image``) and the prompt-conditioned decoder (prompt MLP, FiLM decoder, head
and upsampling, as ``decode``).

Features pass between them in the contiguous NCHW layout ONNX Runtime returns, so no layout conversion runs between
the two graphs; eager decoding of them (when only the encoder graph applies) gives the same logits, a little slower.
"""

from __future__ import annotations

import torch

from drywall_qa.core.backends.lite.model import LiteModel
from drywall_qa.core.backends.onnx_graph import OnnxGraph

#: the encoder's outputs, finest first
FEATURES = [f"features_stride{2 ** level}" for level in range(1, 6)]
#: the side the graphs are traced at: not a side the model runs at, so a size baked into a graph shows in the tests
TRACE_SIDE = 96


def _spatial(names: list[str]) -> dict[str, dict[int, str]]:
    return {name: {0: "batch", 2: f"{name}_height", 3: f"{name}_width"} for name in names}


def encoder_graph(model: LiteModel) -> OnnxGraph:
    """``model.encode_image``: ``pixel_values [B, 3, H, W]`` → the five projected feature maps."""
    return OnnxGraph(model, model.encode_image, "lite-image-encoder",
                     lambda: (torch.zeros(2, 3, TRACE_SIDE, TRACE_SIDE),), ["pixel_values"], FEATURES,
                     _spatial(["pixel_values", *FEATURES]))


def decoder_graph(model: LiteModel) -> OnnxGraph:
    """``model.decode``: the five feature maps and ``embeddings [B, D]`` → ``logits [B, 2h, 2w]``."""
    def decode(*inputs: torch.Tensor) -> torch.Tensor:
        return model.decode(inputs[:-1], inputs[-1])

    def example() -> tuple[torch.Tensor, ...]:
        features = model.encode_image(torch.zeros(2, 3, TRACE_SIDE, TRACE_SIDE))
        return (*features, torch.zeros(2, model.config.text_dim))

    axes = _spatial(FEATURES) | {"embeddings": {0: "batch"}, "logits": {0: "batch", 1: "height", 2: "width"}}
    return OnnxGraph(model, decode, "lite-decoder", example, [*FEATURES, "embeddings"], ["logits"], axes)
