"""drywall-qa-lite's decoder: an FPN-style top-down path, FiLM-modulated by the prompt at every scale."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from drywall_qa.core.backends.base import Features


class FiLMBlock(nn.Module):
    """Merge a lateral feature (projected by ``lateral`` once per image) with the coarser decoder output, then
    modulate by the prompt (scale, shift)."""

    def __init__(self, lateral: int, coarser: int, out: int) -> None:
        super().__init__()
        self.lateral = nn.Conv2d(lateral, out, 1)
        self.coarser = nn.Conv2d(coarser, out, 1) if coarser else None
        self.conv = nn.Sequential(nn.Conv2d(out, out, 3, 1, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor, coarser: torch.Tensor | None, film: torch.Tensor) -> torch.Tensor:
        """``x``: the projected lateral feature; ``film``: ``[B, 2 * out]``, the scale then the shift."""
        if coarser is not None:
            x = x + F.interpolate(self.coarser(coarser), size=x.shape[-2:], mode="bilinear", align_corners=False)
        scale, shift = film[:, :, None, None].chunk(2, dim=1)
        return self.conv(torch.addcmul(shift, x, 1 + scale))


class FiLMDecoder(nn.ModuleList):
    """One :class:`FiLMBlock` per encoder feature map, finest (stride 2) first; ``sizes`` are their widths."""

    def __init__(self, encoder_channels: Sequence[int], sizes: Sequence[int]) -> None:
        coarser = [*sizes[1:], 0]  # the coarsest level has nothing below it
        super().__init__(FiLMBlock(*widths) for widths in zip(encoder_channels, coarser, sizes))

    def project(self, maps: Features) -> Features:
        """The lateral projections of the encoder's maps: prompt-independent, so computed once per image;
        channels-last, the layout decoding runs fastest in on a CPU (kept by ``repeat_features``)."""
        return tuple(block.lateral(m).contiguous(memory_format=torch.channels_last) for block, m in zip(self, maps))

    def forward(self, features: Features, films: Sequence[torch.Tensor]) -> torch.Tensor:
        """Coarsest to finest, each level modulated by its ``films`` entry → the stride-2 map."""
        x = None
        for block, feature, film in zip(reversed(self), reversed(features), reversed(films)):
            x = block(feature, x, film)
        return x
