"""How a photo is shown to a model whose input is a small square: whole or in overlapping windows.

* ``whole``: the photo, its aspect ratio kept by padding it to a square, shrunk to the model input. Right for
  structures as large as the photo (taping areas: the training photos are whole walls shrunk to 640 px).
* ``tiles``: overlapping square windows of ``window`` photo pixels, each shrunk to the model input — the scale the
  model was trained at, whatever the photo's size. Right for thin structures (cracks) in wide shots.
* ``both``: the mean of the two probability maps.

A tiled policy may add a **pyramid** (``zoom_out``): passes over windows 2×, 4×, … larger, each shrunk to the same model
input, i.e. the photo seen zoomed out. A photo of a wall taken closer or at more pixels shows every structure larger
than the training photos did; a zoomed-out pass brings them back to trained sizes, while the training-scale windows
keep thin structures of a wide shot. A pass whose window holds the whole photo is the whole view, and the same view is
never run twice, so on a photo no larger than one window every pyramid is the whole view. :mod:`drywall_qa.core.fusion`
says how the maps combine: per pixel, or the one pass the model is most decided on.

A policy may also name the model ``input`` side its windows are shrunk to (default: the backend's): a smaller one
costs less per window where the prompt's score allows it. The whole view always runs at the backend's input, so a
photo inside one window, and every prompt on it, shares one encoding.

Window probabilities are blended with weights that fall linearly to the window edges over the overlap, normalised
so they sum to one at every pixel. A :class:`ScalePolicy` per prompt says which view runs; it is stored with the
checkpoint's post-processing settings (:mod:`drywall_qa.core.postprocess`) and chosen by ``drywall-qa calibrate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from drywall_qa.core.fusion import FUSIONS, MEAN, SELECT

WHOLE, TILES, BOTH = "whole", "tiles", "both"
VIEWS = (WHOLE, TILES, BOTH)
#: largest zoom-out factor of a pyramid pass
MAX_ZOOM_OUT = 16
#: what ``--tiling`` may say: the checkpoint's per-prompt policy, never tile, always tile
TILING_MODES = ("auto", "off", "on")
#: windows overlap by this fraction of their side
OVERLAP = 0.25
#: smallest and largest window side a policy may name, in photo pixels
MIN_WINDOW, MAX_WINDOW = 32, 4096
#: smallest and largest model input side a policy may name
MIN_INPUT, MAX_INPUT = 32, 2048


@dataclass(frozen=True)
class ScalePolicy:
    """Which view of a photo a prompt is predicted from; ``window``: the tile side in photo pixels (the scale the
    model was trained at), and ``input``: the model input side each window is shrunk to (None: the backend's own),
    both used by ``tiles`` and ``both``; ``zoom_out``: the factors of the pyramid's further passes (windows that many
    times larger, shown at the same input), and ``fusion`` how all passes' maps are combined (:data:`FUSIONS`)."""

    view: str = WHOLE
    window: int = 640
    input: int | None = None
    zoom_out: tuple[int, ...] = ()
    fusion: str = MEAN

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise ValueError(f"view {self.view!r} is not one of {', '.join(VIEWS)}")
        if not (type(self.window) is int and MIN_WINDOW <= self.window <= MAX_WINDOW):
            raise ValueError(f"window {self.window!r} is not a whole number from {MIN_WINDOW} to {MAX_WINDOW}")
        if self.input is not None and not (type(self.input) is int and MIN_INPUT <= self.input <= MAX_INPUT):
            raise ValueError(f"input {self.input!r} is not a whole number from {MIN_INPUT} to {MAX_INPUT}")
        factors = list(self.zoom_out)
        if not all(type(f) is int and 2 <= f <= MAX_ZOOM_OUT for f in factors) or factors != sorted(set(factors)):
            raise ValueError(f"zoom_out {factors!r} is not increasing whole numbers from 2 to {MAX_ZOOM_OUT}")
        if factors and not self.tiled:
            raise ValueError("zoom_out needs a tiled view (tiles or both)")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion {self.fusion!r} is not one of {', '.join(FUSIONS)}")

    @property
    def tiled(self) -> bool:
        return self.view != WHOLE

    @property
    def needs_whole(self) -> bool:
        return self.view != TILES

    @property
    def windows(self) -> list[int]:
        """The window side of every tiled pass, training scale first (none for the whole view)."""
        return [self.window * f for f in (1, *self.zoom_out)] if self.tiled else []

    def to_dict(self) -> dict[str, str | int | list[int]]:
        return {"view": self.view, "window": self.window, **({} if self.input is None else {"input": self.input}),
                **({"zoom_out": list(self.zoom_out)} if self.zoom_out else {}),
                **({"fusion": self.fusion} if self.zoom_out or self.fusion != MEAN else {})}

    def forced(self, mode: str) -> ScalePolicy:
        """This policy under ``--tiling``: ``auto`` keeps it, ``off`` is the whole view, ``on`` tiles (``both``
        stays ``both``)."""
        if mode not in TILING_MODES:
            raise ValueError(f"tiling {mode!r} is not one of {', '.join(TILING_MODES)}")
        if mode == "off":
            return replace(self, view=WHOLE, zoom_out=())
        if mode == "on" and self.view == WHOLE:
            return replace(self, view=TILES)
        return self


def window_starts(length: int, window: int, overlap: int) -> list[int]:
    """Starts of windows of side ``window`` covering ``0..length`` with at least ``overlap`` in common, spread
    evenly; one window at 0 when the length fits in it."""
    if length <= window:
        return [0]
    count = math.ceil((length - overlap) / (window - overlap))
    return [round(i * (length - window) / (count - 1)) for i in range(count)]


def window_grid(height: int, width: int, window: int, overlap: int | None = None) -> list[tuple[int, int]]:
    """``(top, left)`` of every window, row by row; windows may reach past the photo's bottom and right edges
    (the model sees padding there)."""
    overlap = round(OVERLAP * window) if overlap is None else overlap
    return [(top, left) for top in window_starts(height, window, overlap)
            for left in window_starts(width, window, overlap)]


def blend_ramp(window: int, overlap: int) -> np.ndarray:
    """1-D weights of a window: rising linearly over ``overlap`` pixels from each edge, 1 in the middle, never 0."""
    position = np.arange(window, dtype=np.float32) + 0.5
    ramp = np.minimum(position, window - position) / max(overlap, 1)
    return np.clip(ramp, 1.0 / max(overlap, 1), 1.0)


def blend_weights(window: int, overlap: int | None = None) -> np.ndarray:
    """``window×window`` weights of one window (outer product of :func:`blend_ramp`)."""
    overlap = round(OVERLAP * window) if overlap is None else overlap
    ramp = blend_ramp(window, overlap)
    return np.outer(ramp, ramp)


def passes(policy: ScalePolicy, height: int, width: int) -> list[int | None]:
    """The views ``policy`` runs on a ``height×width`` photo, each once: None for the whole view, else a window side.
    A window holding the whole photo is the whole view."""
    views = [None] if policy.needs_whole else []
    views += [w if len(window_grid(height, width, w)) > 1 else None for w in policy.windows]
    return list(dict.fromkeys(views))


def describe(policy: ScalePolicy, height: int, width: int, chosen: int | None = None) -> str:
    """How a prediction on a ``height×width`` photo is made, for users: "whole image", "tiled: 35 windows at 640 px"
    ("… shown at 384 px" where the policy names the windows' model input side), "whole image + …" for both, and for
    a pyramid every pass and how they are fused ("tiled: 35 windows at 640 px, 12 at 1280 px + whole image (mean)");
    under ``select``, the pass ``chosen`` (its window side, None: the whole view): "(select: 1280 px)"."""
    views = passes(policy, height, width)
    tiled = [w for w in views if w is not None]
    if not tiled:
        return "whole image"
    counts = [len(window_grid(height, width, w)) for w in tiled]
    shrunk = "" if policy.input is None else f" shown at {policy.input} px"
    tiles = ", ".join(f"{n}{' window' + 's' * (n != 1) if i == 0 else ''} at {w} px"
                      for i, (n, w) in enumerate(zip(counts, tiled))) + shrunk
    if len(views) == 1:
        return f"tiled: {tiles}"
    if not policy.zoom_out and policy.fusion == MEAN:
        return f"whole image + {tiles}"
    whole = " + whole image" if None in views else ""
    if policy.fusion == SELECT:
        return f"tiled: {tiles}{whole} (select: {'whole image' if chosen is None else f'{chosen} px'})"
    return f"tiled: {tiles}{whole} ({policy.fusion})"
