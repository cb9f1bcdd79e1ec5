"""On-disk cache of frozen image features, so fine-tuning the decoder never re-runs the frozen encoder.

Entries are keyed by the image file's content, the backend's encoder identity (``Backend.cache_key``: for CLIPSeg a
digest of the frozen vision weights and the preprocessing) and the input size: changing any of them yields a new key,
so stale features are never read. Files are written atomically (temp file + rename); an unreadable entry (e.g. after
a power cut) is recomputed. Features are stored in float16 by default, which halves disk and memory use and changes
the training loss only in its last digits (about 1e-5 relative); pass ``dtype=torch.float32`` for bit-exact features.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from drywall_qa.core.atomic import write_atomic
from drywall_qa.core.backends import Backend, Features
from drywall_qa.core.errors import InputError
from drywall_qa.core.imaging import load_image


class FeatureCache:
    """Maps image files to the backend's ``encode_image`` output, computing each once.

    Recently used entries are also kept in memory, up to ``memory_bytes``; the rest is read back from disk.
    ``computed`` counts encoder passes.
    """

    def __init__(self, backend: Backend, directory: str | Path, dtype: torch.dtype = torch.float16,
                 memory_bytes: int = 2 << 30) -> None:
        self.backend, self.directory, self.dtype, self.memory_bytes = backend, Path(directory), dtype, memory_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self.identity = f"|{backend.cache_key()}|{backend.input_size}|{dtype}".encode()
        self.memory: OrderedDict[str, Features] = OrderedDict()
        self.computed = 0

    def key(self, image_file: str | Path) -> str:
        try:
            digest = hashlib.sha256(Path(image_file).read_bytes())
        except OSError as err:
            raise InputError(str(image_file), f"cannot read the image ({err.strerror})",
                             "restore the file or re-export the dataset") from err
        digest.update(self.identity)
        return digest.hexdigest()

    def get(self, image_file: str | Path) -> Features:
        """Features of one image (batch dimension 1), from memory, disk or a fresh encoder pass."""
        key = self.key(image_file)
        features = self.memory.pop(key, None) or self._load(key) or self._compute(key, image_file)
        self._remember(key, features)
        return features

    def batch(self, image_files: list[str]) -> Features:
        """Features of several images concatenated along the batch, as float32 on the backend's device."""
        per_image = [self.get(f) for f in image_files]
        return tuple(torch.cat(level).to(self.backend.device, torch.float32) for level in zip(*per_image))

    def _remember(self, key: str, features: Features) -> None:
        """Keep ``features`` in memory, evicting the least recently used (all entries have the same size)."""
        self.memory[key] = features
        size = sum(f.numel() * f.element_size() for f in features)
        while len(self.memory) > 1 and len(self.memory) * size > self.memory_bytes:
            self.memory.popitem(last=False)

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.safetensors"

    def _load(self, key: str) -> Features | None:
        try:
            tensors = load_file(self._path(key))
        except (SafetensorError, OSError):  # not cached yet, or a damaged entry: recompute and replace it
            return None
        return tuple(tensors[str(i)] for i in range(len(tensors)))

    def _compute(self, key: str, image_file: str | Path) -> Features:
        with torch.inference_mode():
            pixels = self.backend.preprocess([load_image(image_file)])
            features = tuple(f.to("cpu", self.dtype).contiguous() for f in self.backend.encode_image(pixels))
        write_atomic(self._path(key), save({str(i): f for i, f in enumerate(features)}))
        self.computed += 1
        return features
