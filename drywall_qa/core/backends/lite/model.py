"""The trainable part of drywall-qa-lite as a transformers model: encoder, decoder, prompt MLP and head."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel

from drywall_qa.core.backends.base import Features
from drywall_qa.core.backends.checks import RESTORE
from drywall_qa.core.backends.lite.config import LiteConfig
from drywall_qa.core.backends.lite.decoder import FiLMDecoder
from drywall_qa.core.backends.lite.encoder import EfficientNetLiteEncoder
from drywall_qa.core.backends.lite.prompt_encoder import FiLMParameters
from drywall_qa.core.errors import ModelLoadError


class LiteModel(PreTrainedModel):
    """Everything but the frozen text encoder (``LiteBackend`` holds that). The attribute names are the
    checkpoint's weight prefixes: ``backbone`` the encoder, ``blocks`` the decoder, ``prompt_mlp`` the FiLM
    parameters, ``head`` the one-channel output convolution."""

    config_class = LiteConfig
    main_input_name = "pixel_values"

    def __init__(self, config: LiteConfig) -> None:
        super().__init__(config)
        self.backbone = EfficientNetLiteEncoder(config.frozen_blocks, config.width_coefficient,
                                                config.depth_coefficient, architecture=config.encoder)
        self.blocks = FiLMDecoder(self.backbone.out_channels, config.decoder_sizes)
        self.prompt_mlp = FiLMParameters(config.text_dim, config.prompt_hidden, config.decoder_sizes)
        self.head = nn.Conv2d(config.decoder_sizes[0], 1, 3, padding=1)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """As transformers', then the encoder's frozen part frozen again. transformers 5 loads each weight as a new
        ``nn.Parameter`` with ``requires_grad=True`` (``_load_parameter_into_model``), after ``__init__`` froze the
        ones it replaces; of what it calls after loading, only ``tie_weights`` and ``_initialize_missing_keys``
        (missing keys only) are hooks, neither meant for this."""
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # output_loading_info=True: (model, info)
        model.backbone.freeze()
        return loaded

    @property
    def image_std(self) -> tuple[float, ...]:
        """Per-channel std of the [0, 1] input (mean 0.5) the encoder expects."""
        return self.backbone.image_std

    def encode_image(self, pixel_values: torch.Tensor) -> Features:
        """Prompt-independent features at strides 2, 4, 8, 16, 32, projected to the decoder widths, channels-last
        (repeated per prompt in that layout, see ``repeat_features``)."""
        return self.blocks.project(self.backbone(pixel_values))

    def decode(self, features: Features, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, S, S]`` at the model input size (twice the stride-2 features)."""
        logits = self.head(self.blocks(features, self.prompt_mlp(embeddings)))
        size = (2 * features[0].shape[-2], 2 * features[0].shape[-1])
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)[:, 0]

    def forward(self, pixel_values: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode_image(pixel_values), embeddings)


def check_weights_fit(config: LiteConfig, file: Path) -> None:
    """Every tensor the model built from ``config`` has is in ``file`` with the same shape, read from the header
    alone. transformers would fill a missing one at random with a warning, and print a misfit as a table."""
    if not file.is_file():
        return  # from_pretrained names the missing file
    with torch.device("meta"):
        wanted = LiteModel(config).state_dict()
    with safe_open(str(file), framework="pt") as weights:
        stored = {key: weights.get_slice(key).get_shape() for key in weights.keys()}
    for key, tensor in wanted.items():
        if stored.get(key) != list(tensor.shape):
            found = f"of shape {stored[key]}" if key in stored else "missing"
            raise ModelLoadError(f"{file}: weight '{key}' is {found}; config.json asks for {list(tensor.shape)}. "
                                 f"{RESTORE}")


AutoConfig.register(LiteConfig.model_type, LiteConfig)
AutoModel.register(LiteConfig, LiteModel)
