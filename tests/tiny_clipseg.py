"""A tiny random CLIPSeg checkpoint (model + processor) built in code, so tests never touch the hub.

It mirrors the shape of ``CIDAS/clipseg-rd64-refined`` at toy scale: ViT patch 16, complex transposed convolution,
a processor image size larger than the vision config's (so position embeddings are interpolated), and layers after
the last extract layer (which inference must skip).
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import pre_tokenizers
from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor, CLIPTokenizer
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
#: processor input side; the vision config is trained at half of it, as the real model (224 → 352)
TINY_INPUT_SIZE = 64


def make_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    """Character-level byte-BPE CLIP tokenizer: every byte symbol with and without ``</w>``, specials last.

    Specials take the highest ids as in CLIP's vocabulary, so any text model with ``vocab_size >= len(vocab)``
    accepts its ids.
    """
    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = symbols + [s + "</w>" for s in symbols] + [BOS, EOS]
    vocab = {token: index for index, token in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)


def make_processor(tokenizer: CLIPTokenizer, size: int) -> CLIPSegProcessor:
    """CLIPSeg processor like the published one (ImageNet mean/std, bilinear resize to ``size``², no crop)."""
    image_processor = ViTImageProcessorPil(size={"height": size, "width": size}, image_mean=IMAGENET_DEFAULT_MEAN,
                                           image_std=IMAGENET_DEFAULT_STD)
    return CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer)


def token_config(tokenizer: CLIPTokenizer) -> dict[str, int]:
    """Text-config fields that must agree with the tokenizer."""
    return {"vocab_size": len(tokenizer), "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}


def tiny_config(tokenizer: CLIPTokenizer) -> CLIPSegConfig:
    text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
            **token_config(tokenizer)}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 4, "num_attention_heads": 2,
              "image_size": TINY_INPUT_SIZE // 2, "patch_size": 16}
    return CLIPSegConfig(text_config=text, vision_config=vision, projection_dim=16, extract_layers=(1, 2),
                         reduce_dim=16, decoder_num_attention_heads=2, decoder_intermediate_size=32,
                         use_complex_transposed_convolution=True)


def make_tiny_clipseg(directory: Path) -> Path:
    """Write a deterministic tiny CLIPSeg model and its processor to ``directory``; return it."""
    torch.manual_seed(0)
    tokenizer = make_tokenizer()
    model = CLIPSegForImageSegmentation(tiny_config(tokenizer))
    directory = Path(directory)
    model.save_pretrained(directory)
    make_processor(tokenizer, TINY_INPUT_SIZE).save_pretrained(directory)
    return directory
