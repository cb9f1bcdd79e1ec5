"""CLIPSeg behind the Backend contract: the frozen CLIP vision tower runs once per image, only up to the last layer
the decoder reads; text prompts become frozen CLIP text embeddings; the light decoder is the trainable part."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

from drywall_qa.backends.base import Backend, Features
from drywall_qa.errors import ModelLoadError


class ClipSegBackend(Backend):
    """``CLIPSegForImageSegmentation`` + ``CLIPSegProcessor``; CLIP frozen, decoder trainable."""

    family = "clipseg"
    frozen_image_encoder = True

    def __init__(self, model: CLIPSegForImageSegmentation, processor: CLIPSegProcessor) -> None:
        self.model = model.eval()
        self.processor = processor
        model.clip.requires_grad_(False)
        model.decoder.requires_grad_(True)

    @classmethod
    def from_pretrained(cls, id_or_dir: str | Path, device: str | torch.device | None = None) -> ClipSegBackend:
        """Load model and processor from a hub id or a directory written by ``save_pretrained`` (``None``: CPU)."""
        try:
            model = CLIPSegForImageSegmentation.from_pretrained(str(id_or_dir))
            processor = CLIPSegProcessor.from_pretrained(str(id_or_dir))
        except (OSError, ValueError) as err:
            raise ModelLoadError(_load_failure(str(id_or_dir))) from err
        return cls(model.to(device or "cpu"), processor)

    @property
    def input_size(self) -> int:
        return int(self.processor.image_processor.size["height"])

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        pixel_values = self.processor.image_processor(images=list(images), return_tensors="pt").pixel_values
        return pixel_values.to(self.device)

    @torch.no_grad()
    def encode_image(self, pixel_values: torch.Tensor) -> Features:
        """Activations of the extract layers, exactly as the stock forward feeds them to the decoder.

        Runs embeddings → pre-layernorm → encoder layers up to the last extract layer; later layers, the
        post-layernorm and the pooled output only serve CLIP's own head, so they are skipped.
        """
        vision = self.model.clip.vision_model
        extract = tuple(self.model.extract_layers)
        hidden = vision.pre_layrnorm(vision.embeddings(pixel_values, interpolate_pos_encoding=True))
        outputs: dict[int, torch.Tensor] = {}
        for index, layer in enumerate(vision.encoder.layers[: max(extract) + 1]):
            hidden = layer(hidden, None)
            if index in extract:
                outputs[index] = hidden
        return tuple(outputs[index] for index in extract)

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        tokens = self.processor.tokenizer(list(prompts), padding=True, truncation=True, return_tensors="pt")
        tokens = tokens.to(self.device)
        return self.model.clip.get_text_features(tokens.input_ids, attention_mask=tokens.attention_mask).pooler_output

    def decode(self, features: Features, embeddings: torch.Tensor) -> torch.Tensor:
        logits = self.model.decoder(list(features), embeddings).logits
        return logits.reshape(embeddings.shape[0], *logits.shape[-2:])

    def save_pretrained(self, directory: str | Path) -> None:
        self.model.save_pretrained(directory)
        self.processor.save_pretrained(directory)


def _load_failure(source: str) -> str:
    """One actionable message for a checkpoint that cannot be loaded."""
    if Path(source).is_dir():
        return (f"cannot load CLIPSeg checkpoint '{source}': the directory lacks the model weights or the processor "
                "files — pass `--model DIR` with a directory written by save_pretrained (config.json, "
                "model.safetensors, processor and tokenizer files)")
    return (f"cannot load CLIPSeg checkpoint '{source}': it is not in the local Hugging Face cache and the hub "
            "cannot be reached (or the id does not exist) — download it where there is internet and save it with "
            "save_pretrained, then pass that directory with `--model DIR`")
