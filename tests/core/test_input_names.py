"""Hostile file names and metadata (issue 13, item 10): over-long or NUL paths, PNG text chunks over Pillow's limits
and download names built from such image names each give one readable line or a safe, bounded name."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from drywall_qa.app.inspect.downloads import download_stem, mask_file_names, write_downloads
from drywall_qa.core.errors import InputError
from drywall_qa.core.imaging import load_image, path_problem, short_path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with(*chunks: bytes) -> bytes:
    """An 8×8 grey PNG with ``chunks`` inserted after IHDR (8-byte signature + 25-byte IHDR)."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(buffer, "PNG")
    png = buffer.getvalue()
    return png[:33] + b"".join(chunks) + png[33:]


@pytest.mark.parametrize(("path", "expected"), [
    ("x" * 256 + ".png", "a file or folder name in it is 260 bytes long; the limit is 255"),
    ("/tmp/" + "é" * 128 + "/a.png", "a file or folder name in it is 256 bytes long"),
    ("/tmp/" + "a/" * 2100 + "a.png", "the path is 4,210 bytes long; the limit is 4,095"),
    ("/tmp/wall\0.png", "the path contains a NUL character"),
])
def test_unusable_paths_are_one_line(path: str, expected: str) -> None:
    assert path_problem(path).startswith(expected)
    with pytest.raises(InputError, match=expected) as info:
        load_image(path)
    assert str(info.value).endswith("rename it or pass another path") and "\0" not in str(info.value)


def test_ordinary_paths_pass() -> None:
    assert path_problem("/tmp/" + "x" * 255 + "/" + "y" * 255) is None
    assert short_path("a\0b") == "a\\x00b"
    assert short_path("z" * 500).count("z") == 200


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_folder_is_one_line(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(locked / "a.png")
    locked.chmod(0)
    try:
        with pytest.raises(InputError, match=r"cannot be read \(Permission denied\)"):
            load_image(locked / "a.png")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("chunk", [
    _chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"a" * 2_000_000)),                # over MAX_TEXT_CHUNK unpacked
    _chunk(b"iTXt", b"Comment\0\1\0\0\0" + zlib.compress(b"a" * 2_000_000)),
])
def test_png_text_chunk_over_pillow_limit(chunk: bytes) -> None:
    with pytest.raises(InputError, match="a PNG metadata \\(text\\) chunk is too large to read safely. re-save"):
        load_image(_png_with(chunk), name="wall.png")


def test_png_text_over_the_total_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_MEMORY", 1000)  # 64 MB in Pillow: the test needs not allocate it
    text = [_chunk(b"tEXt", f"Comment{i}\0".encode() + b"a" * 600) for i in range(2)]
    with pytest.raises(InputError, match="metadata \\(text\\) chunk is too large"):
        load_image(_png_with(*text))


def test_large_uncompressed_text_chunk_within_limits_loads() -> None:
    assert load_image(_png_with(_chunk(b"tEXt", b"Comment\0" + b"a" * 2_000_000))).shape == (8, 8, 3)


@pytest.mark.parametrize("image_name", ["x" * 1000, "wall\0name", "\0" * 300, "é" * 300, "-rf", "../../etc/passwd",
                                        "..", "a/b\\c:d*e?f\"g<h>i|j"])
def test_download_names_are_safe_and_bounded(tmp_path: Path, image_name: str) -> None:
    names = mask_file_names(image_name, ["segment crack", "p" * 500, "p" * 500, "\0"])
    assert len(set(names)) == 4
    for name in [*names, f"{download_stem(image_name)}__masks.json"]:
        assert len(name.encode()) <= 200 and path_problem(name) is None
        assert name.isascii() and not name.startswith(("-", ".")) and "/" not in name and "\\" not in name
    masks = [np.ones((2, 2), bool)] * 4
    paths = write_downloads(tmp_path, image_name, "model", ["a", "b", "c", "d"], [0.5] * 4, masks)
    assert all(p.parent == tmp_path and p.is_file() for p in paths)
