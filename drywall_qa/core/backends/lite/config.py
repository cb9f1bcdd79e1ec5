"""drywall-qa-lite's hyper-parameters, and the checks a checkpoint's config.json passes before the model is built."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from transformers import PretrainedConfig

from drywall_qa.core.backends.checks import MAX_INPUT_SIZE, RESTORE, check_positive_ints
from drywall_qa.core.backends.lite.encoder import ARCHITECTURE, ARCHITECTURES, scaling
from drywall_qa.core.backends.lite.prompt_encoder import TEXT_ENCODERS, unknown_text_encoder
from drywall_qa.core.errors import ModelLoadError, shown

TEXT_ENCODER_PACKAGE = TEXT_ENCODERS[0]
#: the encoder of checkpoints whose config.json names none
UNNAMED_ENCODER = "resnet"
#: config.json fields of the ResNet encoder that no longer loads; a checkpoint that still lists them loads without
#: them, so saving it again does not carry them on
RESNET_FIELDS = ("embedding_size", "hidden_sizes", "depths")
#: widest layer and deepest stage a checkpoint may ask for (the bundled model: 384 and 2)
MAX_WIDTH, MAX_DEPTH = 2048, 64
#: config.json size fields: (0 for one int, else the list's length, lowest, highest)
SIZE_LIMITS = {"image_size": (0, 32, MAX_INPUT_SIZE), "frozen_blocks": (0, 0, MAX_DEPTH),
               "text_dim": (0, 1, MAX_WIDTH), "prompt_hidden": (0, 1, MAX_WIDTH), "decoder_sizes": (5, 1, MAX_WIDTH)}
#: config.json encoder scale fields, each a number above 0 and at most this (EfficientNet-Lite4's are 1.4 and 1.8)
SCALE_FIELDS, MAX_SCALE = ("width_coefficient", "depth_coefficient"), 4.0


class LiteConfig(PretrainedConfig):
    """Hyper-parameters of drywall-qa-lite; the defaults are the bundled model's (per-prompt settings live in
    :mod:`drywall_qa.core.postprocess`)."""

    model_type = "drywall-qa-lite"

    def __init__(
        self,
        image_size: int = 384,
        encoder: str = ARCHITECTURE,
        frozen_blocks: int = 3,
        width_coefficient: float | None = None,
        depth_coefficient: float | None = None,
        decoder_sizes: Sequence[int] = (16, 32, 48, 64, 96),
        text_encoder: str = TEXT_ENCODER_PACKAGE,
        text_dim: int = 384,
        prompt_hidden: int = 256,
        **kwargs,
    ) -> None:
        if not _supported(encoder):
            raise ModelLoadError(f"config.json: {unsupported_encoder(encoder)}")
        if not isinstance(text_encoder, str) or text_encoder not in TEXT_ENCODERS:
            raise ModelLoadError(f"config.json: {unknown_text_encoder(text_encoder)}")
        width, depth = scaling(encoder)
        self.image_size = image_size
        self.encoder = encoder
        self.frozen_blocks = frozen_blocks  # the stem and the first N encoder blocks keep their ImageNet weights
        self.width_coefficient = width_coefficient or width  # EfficientNet's channel scale (the encoder's own: None)
        self.depth_coefficient = depth_coefficient or depth  # EfficientNet's blocks-per-stage scale
        self.decoder_sizes = list(decoder_sizes)  # stride 2, 4, 8, 16, 32
        self.text_encoder = text_encoder
        self.text_dim = text_dim
        self.prompt_hidden = prompt_hidden
        for name in RESNET_FIELDS:
            kwargs.pop(name, None)
        super().__init__(**kwargs)


def _supported(encoder: object) -> bool:
    return isinstance(encoder, str) and encoder in ARCHITECTURES


def unsupported_encoder(encoder: object) -> str:
    """Why a checkpoint with this encoder does not load, and what to do."""
    supported = ", ".join(ARCHITECTURES)
    if encoder == UNNAMED_ENCODER:
        return (f"encoder {encoder!r} is no longer supported, only {supported}. retrain with "
                "`drywall-qa train --model lite`, or use the bundled model")
    return f"encoder {shown(encoder)} is not one of {supported}. {RESTORE}"


def check_config(config: dict, file: Path) -> None:
    """A checkpoint's config.json: the supported encoder, a known text encoder and sizes in range (:data:`SIZE_LIMITS`,
    :data:`SCALE_FIELDS`), so the model can be built before its weights are read."""
    encoder = config.get("encoder", UNNAMED_ENCODER)
    if not _supported(encoder):
        raise ModelLoadError(f"{file}: {unsupported_encoder(encoder)}")
    if config.get("text_encoder", TEXT_ENCODER_PACKAGE) not in TEXT_ENCODERS:
        raise ModelLoadError(f"{file}: {unknown_text_encoder(config['text_encoder'])}")
    check_positive_ints(config, SIZE_LIMITS, file)
    for field in SCALE_FIELDS:
        value = config.get(field, 1.0)
        if not (isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= MAX_SCALE):
            raise ModelLoadError(f"{file}: field '{field}' is {shown(value)}, not a number above 0 and at most "
                                 f"{MAX_SCALE}. {RESTORE}")
