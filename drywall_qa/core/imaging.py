"""Image loading (any common format and mode → RGB uint8) and mask / probability-map resizing."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

from drywall_qa.core.atomic import write_atomic
from drywall_qa.core.errors import InputError

if TYPE_CHECKING:
    import torch

#: Largest image (width × height) that is decoded; bigger ones are refused as possible decompression bombs.
MAX_PIXELS = 50_000_000
#: longest file or folder name (bytes) and whole path (bytes) that Linux and macOS file systems accept
MAX_NAME_BYTES, MAX_PATH_BYTES = 255, 4095

ImageSource = str | Path | bytes | Image.Image | np.ndarray

_ALPHA_MODES = {"LA", "La", "PA", "RGBA", "RGBa"}
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


def load_image(source: ImageSource, name: str | None = None) -> np.ndarray:
    """Load ``source`` as an RGB uint8 ``H×W×3`` array with its EXIF orientation applied.

    ``source`` is a path, encoded file bytes, a PIL image or an array (``H×W``, ``H×W×1``, ``H×W×3``, ``H×W×4``).
    Transparency is composited on white; 16-bit and float data are scaled to 8 bits (see :func:`to_uint8`).
    ``name`` is used in error messages (default: the path, or a description of the source).
    Raises :class:`InputError` for a missing, unreadable, empty, non-image, truncated or oversized (> ``MAX_PIXELS``)
    file, a path the file system cannot hold (:func:`path_problem`) and PNG metadata over Pillow's limits.
    """
    if isinstance(source, np.ndarray):
        return _to_rgb(_array_to_pil(source, name or "image array"))
    if isinstance(source, Image.Image):
        return _decode(source, name or "image")
    if isinstance(source, (bytes, bytearray)):
        label = name or "uploaded image"
        if not source:
            raise InputError(label, "the image data is empty (0 bytes)", "upload a JPEG or PNG image")
        return _open_and_decode(io.BytesIO(source), label)
    path = Path(source)
    label = name or short_path(path)
    problem = path_problem(path)
    if problem:
        raise InputError(label, problem, "rename it or pass another path")
    try:
        if not path.is_file():
            problem = "is a directory, not an image file" if path.is_dir() else "no such file"
            raise InputError(label, problem, "check the path")
        empty = path.stat().st_size == 0
    except OSError as exc:
        raise InputError(label, f"cannot be read ({exc.strerror or exc})",
                         "check the path and its permissions") from None
    if empty:
        raise InputError(label, "the file is empty (0 bytes)", "re-export or re-download the image")
    return _open_and_decode(path, label)


def image_name(source: ImageSource) -> str:
    """The file name of an image given by path, else ``"image"``."""
    return Path(source).name if isinstance(source, (str, Path)) else "image"


def path_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot name a file (a NUL character, a name over ``MAX_NAME_BYTES``, a path over
    ``MAX_PATH_BYTES``), judged from the text alone; None when it can. Checked before the file system is asked:
    pathlib raises on an over-long name and answers "no such file" for a NUL."""
    text = str(path)
    if "\0" in text:
        return "the path contains a NUL character"
    if _nbytes(text) > MAX_PATH_BYTES:
        return f"the path is {_nbytes(text):,} bytes long; the limit is {MAX_PATH_BYTES:,}"
    longest = max((_nbytes(part) for part in text.split(os.sep)), default=0)
    if longest > MAX_NAME_BYTES:
        return f"a file or folder name in it is {longest:,} bytes long; the limit is {MAX_NAME_BYTES}"
    return None


def short_path(path: str | Path, limit: int = 200) -> str:
    """``path`` for a one-line message: control characters escaped, the middle of a long path cut."""
    text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(path))
    return text if len(text) <= limit else f"{text[:limit // 2]}…{text[-(limit // 2):]}"


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _open_and_decode(fp: Path | io.BytesIO, label: str) -> np.ndarray:
    """Open an encoded image (PIL's decompression-bomb warning turned into an error), then decode it fully."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fp)
    except Image.UnidentifiedImageError:
        raise InputError(label, "not a readable image file", "use a JPEG, PNG, BMP, TIFF or WebP image") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise _too_large(label, str(exc)) from None
    except _DECODE_ERRORS as exc:
        raise _decode_error(label, exc) from None
    with img:
        return _decode(img, label)


def _decode(img: Image.Image, label: str) -> np.ndarray:
    """Check the pixel count before decoding, force a full decode, orient, convert to RGB."""
    if img.width * img.height > MAX_PIXELS:
        raise _too_large(label, f"{img.width}×{img.height} = {img.width * img.height:,} pixels")
    try:
        img.load()
        oriented = ImageOps.exif_transpose(img)
    except _DECODE_ERRORS as exc:
        raise _decode_error(label, exc) from None
    return _to_rgb(oriented)


def _decode_error(label: str, exc: BaseException) -> InputError:
    """A metadata chunk over Pillow's limits (PNG text: 1 MB decompressed each, 64 MB in all), else corruption."""
    if isinstance(exc, ValueError) and "MAX_TEXT_" in str(exc):
        return InputError(label, "a PNG metadata (text) chunk is too large to read safely",
                          "re-save the image without its metadata, e.g. export it again as PNG or JPEG")
    return InputError(label, f"the image is truncated or corrupt ({exc})", "re-export or re-download it")


def _too_large(label: str, detail: str) -> InputError:
    return InputError(
        label,
        f"too many pixels ({detail}); the limit is {MAX_PIXELS:,} pixels to guard against decompression bombs",
        "downscale the image below the limit before loading it",
    )


def _array_to_pil(array: np.ndarray, label: str) -> Image.Image:
    """Wrap an ``H×W[×C]`` array (C in 1, 3, 4; any numeric dtype) as an 8-bit PIL image."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or 0 in array.shape:
        raise InputError(label, f"array of shape {array.shape} is not an image", "pass H×W, H×W×3 or H×W×4")
    return Image.fromarray(to_uint8(array))


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale pixel values to uint8 by their range, never by clipping.

    bool → 0/255; uint8 as is; unsigned 16-bit ÷ 257 (its full range); floats within 0‥1 × 255; other values
    within 0‥255 as is; other non-negative integers up to 65535 as 16-bit; anything else is min–max stretched.
    """
    if values.dtype == np.uint8:
        return values
    if values.dtype == bool:
        return values.astype(np.uint8) * 255
    data = np.nan_to_num(values.astype(np.float64))
    low, high = float(data.min()), float(data.max())
    is_float = values.dtype.kind == "f"
    is_uint16 = values.dtype.kind == "u" and values.dtype.itemsize == 2
    if is_float and low >= 0 and high <= 1:
        low, high = 0.0, 1.0
    elif not is_uint16 and low >= 0 and high <= 255:
        low, high = 0.0, 255.0
    elif not is_float and low >= 0 and high <= 65535:
        low, high = 0.0, 65535.0
    scaled = (data - low) * (255.0 / max(high - low, 1e-12))
    return np.round(scaled).clip(0, 255).astype(np.uint8)


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Any PIL mode → RGB uint8 array; transparency composited on white."""
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if img.mode.startswith("I") or img.mode == "F":
        gray = to_uint8(np.asarray(img))
        return np.repeat(gray[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"))


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a boolean ``H×W`` mask to ``size = (h, w)`` without losing thin structures.

    Per axis: downscaling partitions the input into ``h`` (or ``w``) contiguous bins and keeps a pixel if any
    input pixel in its bin is set (max-pool), so a 1-px line survives; upscaling is nearest-neighbour.
    """
    mask = np.asarray(mask).astype(bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H×W), got shape {mask.shape}")
    h, w = (int(s) for s in size)
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be positive (h, w), got {size}")
    return _resize_axis(_resize_axis(mask, h, axis=0), w, axis=1)


def _resize_axis(mask: np.ndarray, n: int, axis: int) -> np.ndarray:
    m = mask.shape[axis]
    if n >= m:
        centres = ((2 * np.arange(n) + 1) * m) // (2 * n)
        return np.take(mask, centres, axis=axis)
    starts = (np.arange(n) * m) // n
    return np.logical_or.reduceat(mask, starts, axis=axis)


def resize_probabilities(prob: np.ndarray | torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Bilinearly resize an ``h×w`` float map (array or tensor, any device) to ``size = (H, W)``, float32."""
    values = prob.detach().float().cpu().numpy() if hasattr(prob, "detach") else np.asarray(prob, np.float32)
    if values.ndim != 2:
        raise ValueError(f"probabilities must be 2-D (h×w), got shape {values.shape}")
    h, w = (int(s) for s in size)
    if (h, w) == values.shape:
        return values.astype(np.float32, copy=True)
    resized = Image.fromarray(values.astype(np.float32)).resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def write_png(path: Path, pixels: np.ndarray) -> None:
    """Save an RGB or grayscale uint8 array as a PNG with :func:`~drywall_qa.core.atomic.write_atomic`."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    write_atomic(path, buffer.getvalue())
