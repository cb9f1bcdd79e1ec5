"""On-disk cache of frozen image features, so fine-tuning the decoder never re-runs the frozen encoder.

Entries are keyed by the image file's content, the backend's encoder identity and the input size: changing any of
them yields a new key, so stale features are never read. Files are written atomically (temp file + rename).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from drywall_qa.backends import Backend, Features
from drywall_qa.imaging import load_image


class FeatureCache:
    """Maps image files to the backend's ``encode_image`` output, computing each once."""

    def __init__(self, backend: Backend, directory: str | Path, dtype: torch.dtype = torch.float16) -> None:
        self.backend, self.directory, self.dtype = backend, Path(directory), dtype
        self.directory.mkdir(parents=True, exist_ok=True)
        self.memory: dict[str, Features] = {}
        self.computed = 0

    def key(self, image_file: str | Path) -> str:
        digest = hashlib.sha1(Path(image_file).read_bytes())
        digest.update(f"|{self.backend.cache_key()}|{self.backend.input_size}|{self.dtype}".encode())
        return digest.hexdigest()

    def get(self, image_file: str | Path) -> Features:
        """Features of one image (batch dimension 1), from memory, disk or a fresh encoder pass."""
        key = self.key(image_file)
        if key not in self.memory:
            self.memory[key] = self._load(key) or self._compute(key, image_file)
        return self.memory[key]

    def batch(self, image_files: list[str]) -> Features:
        """Features of several images concatenated along the batch, on the backend's device."""
        per_image = [self.get(f) for f in image_files]
        return tuple(torch.cat(level).to(self.backend.device, torch.float32) for level in zip(*per_image))

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.safetensors"

    def _load(self, key: str) -> Features | None:
        path = self._path(key)
        if not path.exists():
            return None
        tensors = load_file(path)
        return tuple(tensors[str(i)] for i in range(len(tensors)))

    def _compute(self, key: str, image_file: str | Path) -> Features:
        with torch.inference_mode():
            pixels = self.backend.preprocess([load_image(image_file)])
            features = tuple(f.to("cpu", self.dtype).contiguous() for f in self.backend.encode_image(pixels))
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        os.close(fd)
        save_file({str(i): f for i, f in enumerate(features)}, tmp)
        os.replace(tmp, self._path(key))
        self.computed += 1
        return features
