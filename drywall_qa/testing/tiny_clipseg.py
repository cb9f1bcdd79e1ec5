"""A tiny random CLIPSeg checkpoint (model + processor) built in code, so tests never touch the hub.

It mirrors the shape of ``CIDAS/clipseg-rd64-refined`` at toy scale: ViT patch 16, complex transposed convolution,
a processor image size larger than the vision config's (so position embeddings are interpolated), and layers after
the last extract layer (which inference must skip).

``--demo`` writes a variant for the CPU fine-tuning demo on the real data (README): its decoder can learn from the
frozen random features (see :func:`demo_config` and :func:`reset_decoder`).
``python -m drywall_qa.testing.tiny_clipseg DIR [--demo]`` writes either to ``DIR``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from tokenizers import pre_tokenizers
from torch import nn
from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor, CLIPTokenizer
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
#: processor input side; the vision config is trained at half of it, as the real model (224 → 352)
TINY_INPUT_SIZE = 64
#: processor input side of the demo checkpoint
DEMO_INPUT_SIZE = 128


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


def _config(tokenizer: CLIPTokenizer, vision: dict, **decoder) -> CLIPSegConfig:
    """Tiny text tower, a 4-layer vision tower with ``vision``'s sizes, extract layers 1 and 2, ``decoder`` fields."""
    text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
            **token_config(tokenizer)}
    vision = {"num_hidden_layers": 4, "num_attention_heads": 2, **vision}
    return CLIPSegConfig(text_config=text, vision_config=vision, projection_dim=16, extract_layers=(1, 2),
                         decoder_num_attention_heads=2, **decoder)


def tiny_config(tokenizer: CLIPTokenizer) -> CLIPSegConfig:
    vision = {"hidden_size": 32, "intermediate_size": 64, "image_size": TINY_INPUT_SIZE // 2, "patch_size": 16}
    return _config(tokenizer, vision, reduce_dim=16, decoder_intermediate_size=32,
                   use_complex_transposed_convolution=True)


def demo_config(tokenizer: CLIPTokenizer) -> CLIPSegConfig:
    """Random vision features that keep the pixels, and the real model's decoder width (64).

    Patch 8 with 192 = 8·8·3 hidden units makes the random patch embedding a square, almost surely invertible map, so
    the frozen features still hold every pixel of the 128-px input. With ``tiny_config``'s 32 units per 16-px patch
    (tried at 128-, 224- and 352-px inputs, same decoder init) no validation pixel stayed above 0.5 after two epochs
    on cracks: Dice 0.
    The plain transposed convolution upsamples by the patch size; the complex one by (patch / 4)², i.e. only for 16.
    """
    vision = {"hidden_size": 192, "intermediate_size": 384, "image_size": DEMO_INPUT_SIZE // 2, "patch_size": 8}
    return _config(tokenizer, vision, reduce_dim=64, decoder_intermediate_size=128,
                   use_complex_transposed_convolution=False)


def reset_decoder(model: CLIPSegForImageSegmentation) -> None:
    """PyTorch's default init for the decoder's linear and convolution layers, and FiLM as the identity.

    transformers draws those weights with std ``initializer_factor`` (1.0; the CLIPSeg config has no
    ``initializer_range``), so an untrained decoder's logits are large (std ≈ 30 for :func:`tiny_config` on real
    photos) and its masks cover about half of any image at random.
    """
    for module in model.decoder.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            module.reset_parameters()
    for film, bias in ((model.decoder.film_mul, 1.0), (model.decoder.film_add, 0.0)):
        nn.init.zeros_(film.weight)
        nn.init.constant_(film.bias, bias)


def make_tiny_clipseg(directory: Path, demo: bool = False) -> Path:
    """Write a deterministic tiny CLIPSeg model and its processor to ``directory``; return it.

    ``demo``: the fine-tuning demo's checkpoint (:func:`demo_config`, :func:`reset_decoder`) instead of the tests'.
    """
    torch.manual_seed(0)
    tokenizer = make_tokenizer()
    model = CLIPSegForImageSegmentation((demo_config if demo else tiny_config)(tokenizer))
    if demo:
        reset_decoder(model)
    directory = Path(directory)
    model.save_pretrained(directory)
    make_processor(tokenizer, DEMO_INPUT_SIZE if demo else TINY_INPUT_SIZE).save_pretrained(directory)
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drywall_qa.testing.tiny_clipseg",
    description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="where to write the checkpoint")
    parser.add_argument("--demo", action="store_true", help="the CPU fine-tuning demo's checkpoint")
    args = parser.parse_args(argv)
    print(make_tiny_clipseg(args.directory, demo=args.demo))
    return 0


if __name__ == "__main__":
    sys.exit(main())
