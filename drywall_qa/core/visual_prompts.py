"""One-shot visual prompts: "segment things like this" from an example image and a mask of the object.

The example is turned into a prompt image with the visual prompt engineering of the CLIPSeg paper (Lüddecke &
Ecker, CVPR 2022, Table 5): **crop** to the object (its box plus 10 % context per side, padded to a square),
**blur** the background (Gaussian, σ = 3/224 of the image's shorter side, the paper's σ 3 at CLIP's 224 px) and
**darken** the background (to 10 % intensity). Any ``+``-joined subset works; ``crop+blur+darken`` — the paper's
best — is the default. A backend with ``supports_visual_prompts`` (CLIPSeg) maps the prompt image to a
conditioning vector c_image; with ``alpha < 1`` it is mixed with the text prompt's vector:
``c = alpha · c_image + (1 − alpha) · c_text``.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, ImageFilter

from drywall_qa.core.errors import InputError
from drywall_qa.core.imaging import MAX_PIXELS, ImageSource, load_image

STEPS = ("crop", "blur", "darken")
DEFAULT_ENGINEERING = "crop+blur+darken"
#: context added around the object's box on each side, as a fraction of the box size
CROP_CONTEXT = 0.1
#: Gaussian σ of the background blur, as a fraction of the image's shorter side
BLUR_FRACTION = 3 / 224
#: intensity the background keeps when darkened
DARKEN_FACTOR = 0.1


def parse_engineering(text: str) -> str:
    """``"blur+crop"`` → ``"crop+blur"`` (canonical order); :class:`InputError` for unknown or repeated steps."""
    steps = [s.strip() for s in text.split("+")]
    unknown = [s for s in steps if s not in STEPS]
    if unknown or len(set(steps)) != len(steps):
        raise InputError("visual prompt engineering", f"{text!r} is not a '+'-joined set of {', '.join(STEPS)}",
                         f"use e.g. {DEFAULT_ENGINEERING} (the paper's best) or crop")
    return "+".join(s for s in STEPS if s in steps)


def mask_from_array(array: np.ndarray) -> np.ndarray:
    """A drawn or stored mask as bool ``H×W``: an RGBA layer with transparency → its opaque pixels; otherwise pixels
    above half range in any colour channel (0/1 and 0/255 masks, white object on black)."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 4 and array[..., 3].min() < 255:
        return array[..., 3] > 0
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[..., :3].max(axis=2)
    if array.ndim != 2 or 0 in array.shape:
        raise InputError("support mask", f"array of shape {array.shape} is not a mask", "pass an H×W mask image")
    if array.dtype == bool:
        return array
    return array > (127.5 if array.max() > 1 else 0.5)


def load_mask(source: str | Path | bytes | np.ndarray, name: str | None = None) -> np.ndarray:
    """Read a mask (white object on black, or a transparent layer) as bool ``H×W`` from a file, encoded bytes or an
    array; a file over :data:`~drywall_qa.core.imaging.MAX_PIXELS` is refused before it is decoded."""
    if isinstance(source, np.ndarray):
        return mask_from_array(source)
    label = name or (str(source) if isinstance(source, (str, Path)) else "mask image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else Path(source))
        with image:
            if image.width * image.height > MAX_PIXELS:
                raise InputError(label, f"too many pixels ({image.width}×{image.height}); the limit is "
                                 f"{MAX_PIXELS:,} pixels", "use a smaller mask image")
            array = np.asarray(image.convert("RGBA" if image.mode in ("P", "PA", "LA", "RGBA") else "L"))
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(label, "no such mask file", "check the path of --support-mask") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise InputError(label, f"too many pixels ({err})", "use a smaller mask image") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise InputError(label, f"not a readable mask image ({err})", "pass a PNG mask") from None
    return mask_from_array(array)


def engineer(image: np.ndarray, mask: np.ndarray, engineering: str = DEFAULT_ENGINEERING) -> np.ndarray:
    """The prompt image for ``image`` (RGB uint8) and its object ``mask`` (bool, same size, not empty)."""
    steps = parse_engineering(engineering).split("+")
    background = Image.fromarray(image)
    if "blur" in steps:
        background = background.filter(ImageFilter.GaussianBlur(BLUR_FRACTION * min(image.shape[:2])))
    background = np.asarray(background, dtype=np.float32)
    if "darken" in steps:
        background = background * DARKEN_FACTOR
    out = np.where(mask[..., None], image, np.rint(background).astype(np.uint8))
    return _crop_square(out, mask) if "crop" in steps else out


def _crop_square(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The object's box plus :data:`CROP_CONTEXT`, clipped to the image, centred on a black square."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    (top, bottom), (left, right) = (rows[0], rows[-1] + 1), (cols[0], cols[-1] + 1)
    dy, dx = round(CROP_CONTEXT * (bottom - top)), round(CROP_CONTEXT * (right - left))
    crop = image[max(0, top - dy): bottom + dy, max(0, left - dx): right + dx]
    side = max(crop.shape[:2])
    square = np.zeros((side, side, 3), np.uint8)
    y, x = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    square[y: y + crop.shape[0], x: x + crop.shape[1]] = crop
    return square


class AnnotatedImages(Protocol):
    """What an example image is taken from: a COCO split (:class:`drywall_qa.data.coco.CocoSplit`) or the like."""

    annotation_file: Path

    def __len__(self) -> int: ...

    def file_name(self, index: int) -> str: ...

    def load_image(self, index: int) -> np.ndarray: ...

    def mask(self, index: int) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class VisualPrompt:
    """An example image and the mask of the object to look for, usable wherever a text prompt is.

    ``image`` is anything :func:`~drywall_qa.core.imaging.load_image` reads and ``mask`` any array
    :func:`mask_from_array` reads (same size); after construction they are an RGB uint8 array and a bool mask.
    ``alpha`` weighs the example against ``text`` (1: the example alone, 0: the text alone; below 1 ``text`` is
    required). ``name`` describes the example in labels (default: "example image").
    """

    image: ImageSource
    mask: np.ndarray
    engineering: str = DEFAULT_ENGINEERING
    text: str | None = None
    alpha: float = 1.0
    name: str | None = None
    key: tuple = field(init=False, repr=False)

    def __post_init__(self) -> None:
        image = load_image(self.image, None if isinstance(self.image, (str, Path)) else "support image")
        mask = mask_from_array(self.mask)
        if mask.shape != image.shape[:2]:
            raise InputError("support mask", f"mask is {mask.shape[1]}×{mask.shape[0]} but the support image is "
                             f"{image.shape[1]}×{image.shape[0]}", "draw the mask on the support image itself")
        if not mask.any():
            raise InputError("support mask", "the mask is empty", "mark the object to look for on the support image")
        if not 0.0 <= self.alpha <= 1.0:
            raise InputError("alpha", f"{self.alpha} is outside [0, 1]", "1 = example only, 0 = text only")
        text = (self.text or "").strip() or None
        if self.alpha < 1.0 and text is None:
            raise InputError("alpha", f"alpha {self.alpha} mixes in a text prompt but none was given",
                             "give a text prompt or use alpha 1")
        engineering = parse_engineering(self.engineering)
        digest = hashlib.sha1(image.tobytes() + np.packbits(mask).tobytes() + str(image.shape).encode())
        for name, value in {"image": image, "mask": mask, "engineering": engineering, "text": text,
                            "key": ("visual", digest.hexdigest(), engineering)}.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_source(cls, image: ImageSource, mask: np.ndarray | str | Path, **options) -> VisualPrompt:
        """From an image (path, bytes, array…) and a mask array or mask image file."""
        return cls(image, load_mask(mask), **options)

    @classmethod
    def from_split(cls, split: AnnotatedImages, index: int, **options) -> VisualPrompt:
        """From image ``index`` of a COCO split and its annotated mask (named after the image's file)."""
        if not 0 <= index < len(split):
            raise InputError("--support-index", f"{index} is outside 0…{len(split) - 1} ({split.annotation_file})",
                             "pick an image of the support split")
        options.setdefault("name", split.file_name(index))
        return cls(split.load_image(index), split.mask(index), **options)

    @property
    def text_only(self) -> bool:
        return self.alpha == 0.0

    @property
    def label(self) -> str:
        """What predictions of this prompt are called (the text alone when ``alpha`` is 0)."""
        if self.text_only:
            return self.text
        example = f"{self.name or 'example image'} [{self.engineering}]"
        return example if self.alpha == 1.0 else f"{self.text} + {example} alpha={self.alpha:g}"

    def support(self) -> np.ndarray:
        """The engineered prompt image the backend encodes."""
        return engineer(self.image, self.mask, self.engineering)
