"""CLIPSeg behind the Backend contract: the frozen CLIP vision tower runs once per image, only up to the last layer
the decoder reads; text prompts become frozen CLIP text embeddings; the light decoder is the trainable part."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor, CLIPTokenizer, CLIPTokenizerFast

from drywall_qa.core.backends.base import Backend, Features
from drywall_qa.core.backends.checks import MAX_INPUT_SIZE, check_positive_ints, reason
from drywall_qa.core.backends.hub import hub_endpoint, hub_reachable
from drywall_qa.core.errors import InputError, ModelLoadError
from drywall_qa.core.postprocess import PostprocessSettings


class ClipSegBackend(Backend):
    """``CLIPSegForImageSegmentation`` + ``CLIPSegProcessor``; CLIP frozen, decoder trainable."""

    family = "clipseg"
    frozen_image_encoder = True
    supports_visual_prompts = True
    #: the stock model's input side: windows seen at 1:1 pixels, the scale CLIP and its decoder were trained at
    tile_window = 352

    def __init__(self, model: CLIPSegForImageSegmentation, processor: CLIPSegProcessor) -> None:
        self.model = model.eval()
        self.processor = processor
        self.settings = PostprocessSettings()
        self.image_mean = tuple(processor.image_processor.image_mean)
        self.image_std = tuple(processor.image_processor.image_std)
        model.clip.requires_grad_(False)
        model.decoder.requires_grad_(True)

    @classmethod
    def from_pretrained(cls, id_or_dir: str | Path, device: str | torch.device | None = None) -> ClipSegBackend:
        """Load model and processor from a hub id or a directory written by ``save_pretrained`` (``None``: CPU).
        A hub id is read from the local cache alone when the hub cannot be reached, so no network fails at once."""
        online = not Path(id_or_dir).is_dir() and hub_reachable()
        try:
            model = CLIPSegForImageSegmentation.from_pretrained(str(id_or_dir), local_files_only=not online)
            processor = CLIPSegProcessor.from_pretrained(str(id_or_dir), local_files_only=not online)
        except (OSError, ValueError, RuntimeError, SafetensorError) as err:
            raise ModelLoadError(_load_failure(str(id_or_dir), err, online)) from err
        size = processor.image_processor.size
        check_positive_ints({"height": size["height"], "width": size["width"]},
                            dict.fromkeys(("height", "width"), (0, 32, MAX_INPUT_SIZE)),
                            f"{id_or_dir} (image processor size)")
        return cls(model.to(device or "cpu"), processor)

    @property
    def input_size(self) -> int:
        return int(self.processor.image_processor.size["height"])

    def preprocess(self, images: Sequence[np.ndarray], size: int | None = None) -> torch.Tensor:
        self.check_input_side(size)
        # channels_last stated, not guessed: the processor takes a 1×1×3 or 3×2×3 array for channels-first
        pixel_values = self.processor.image_processor(images=list(images), input_data_format="channels_last",
                                                      return_tensors="pt").pixel_values
        return pixel_values.to(self.device)

    def encode_image(self, pixel_values: torch.Tensor) -> Features:
        """Activations of the extract layers, exactly as the stock forward feeds them to the decoder.

        Runs embeddings → pre-layernorm → encoder layers up to the last extract layer; later layers, the
        post-layernorm and the pooled output only serve CLIP's own head, so they are skipped. Frozen weights build
        no autograd graph; layers opened by :meth:`unfreeze_last` do.
        """
        vision = self.model.clip.vision_model
        extract = tuple(self.model.extract_layers)
        hidden = vision.pre_layrnorm(vision.embeddings(pixel_values, interpolate_pos_encoding=True))
        outputs: dict[int, torch.Tensor] = {}
        for index, layer in enumerate(self._used_layers()):
            hidden = layer(hidden, None)
            if index in extract:
                outputs[index] = hidden
        return tuple(outputs[index] for index in extract)

    def _used_layers(self) -> torch.nn.ModuleList:
        """Vision encoder layers up to the last one the decoder reads."""
        return self.model.clip.vision_model.encoder.layers[: max(self.model.extract_layers) + 1]

    def unfreeze_last(self, n: int) -> None:
        """Also train the last ``n`` vision layers the decoder reads; image features then change during training,
        so they may no longer be cached (``frozen_image_encoder`` becomes False)."""
        layers = self._used_layers()
        if not 1 <= n <= len(layers):
            raise InputError("--unfreeze-last", f"{n} is outside 1…{len(layers)} (the vision layers up to the last "
                             "extract layer)", f"pass a number of layers between 1 and {len(layers)}")
        layers[len(layers) - n:].requires_grad_(True)
        self.frozen_image_encoder = False

    def cache_key(self) -> str:
        """Digest of everything ``encode_image`` depends on: the weights of the vision layers it runs, the extract
        layers and the image preprocessing. Fine-tuning the decoder leaves it unchanged."""
        vision = self.model.clip.vision_model
        digest = hashlib.sha256(f"{self.family}|{list(self.model.extract_layers)}|".encode())
        digest.update(self.processor.image_processor.to_json_string().encode())
        for module in (vision.embeddings, vision.pre_layrnorm, self._used_layers()):
            for name, tensor in module.state_dict().items():
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return f"{self.family}:{digest.hexdigest()}"

    @property
    def tokenizer(self) -> CLIPTokenizerFast | CLIPTokenizer:
        return self.processor.tokenizer

    @property
    def max_prompt_tokens(self) -> int:
        """The tokenizer's limit, capped by the text tower's position table (77 for CLIP)."""
        return min(self.tokenizer.model_max_length, self.model.config.text_config.max_position_embeddings)

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(prompts), padding=True, truncation=True, max_length=self.max_prompt_tokens,
                                return_tensors="pt")
        tokens = tokens.to(self.device)
        return self.model.clip.get_text_features(tokens.input_ids, attention_mask=tokens.attention_mask).pooler_output

    @torch.no_grad()
    def encode_visual_prompts(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """CLIP image embeddings of example images: the stock model's ``conditional_pixel_values`` path."""
        return self.model.clip.get_image_features(self.preprocess(images)).pooler_output

    def decode(self, features: Features, embeddings: torch.Tensor) -> torch.Tensor:
        logits = self.model.decoder(list(features), embeddings).logits
        return logits.reshape(embeddings.shape[0], *logits.shape[-2:])

    def save_pretrained(self, directory: str | Path) -> None:
        self.model.save_pretrained(directory)
        self.processor.save_pretrained(directory)


def _load_failure(source: str, err: BaseException, online: bool) -> str:
    """One actionable message for a checkpoint that cannot be loaded (``online``: the hub was reachable)."""
    if Path(source).is_dir():
        return (f"cannot load CLIPSeg checkpoint '{source}' ({reason(err)}): the directory lacks or has damaged model "
                "weights or processor files — pass `--model DIR` with a directory written by save_pretrained "
                "(config.json, model.safetensors, processor and tokenizer files)")
    where = ("the hub answered but the id could not be loaded from it (check the id)" if online else
             f"it is not in the local Hugging Face cache and {hub_endpoint()} cannot be reached (offline, or "
             "HF_HUB_OFFLINE is set)")
    return (f"cannot load CLIPSeg checkpoint '{source}': {where} — download it where there is internet and save it "
            "with save_pretrained, then pass that directory with `--model DIR`")
