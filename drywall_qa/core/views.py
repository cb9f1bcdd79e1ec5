"""Run a backend over one photo's views (:mod:`drywall_qa.core.tiling`) and blend them into probability maps at the
photo's size.

The whole view is encoded once, at the model's input side, for all prompts that use it. Tiled prompts are grouped by
window side and the input side their windows are shrunk to; for each group the windows are encoded a few at a time,
every prompt is decoded per window, and the window probabilities are added into a band of rows one window high that is
finished and released as the windows move down the photo. Full-size maps are kept as float16, so a 50 MP photo with
8 prompts holds under a gigabyte of maps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from drywall_qa.core.backends import Backend, repeat_features
from drywall_qa.core.backends.feature_cache import FeatureCache, encoded
from drywall_qa.core.fusion import SELECT, Decidedness, PassFusion
from drywall_qa.core.imaging import resize_probabilities
from drywall_qa.core.presence import presence_logit
from drywall_qa.core.tiling import ScalePolicy, blend_weights, describe, passes, window_grid

#: windows encoded in one forward pass
WINDOW_BATCH = 4
#: called with (windows done, windows in all) as tiles are decoded
Progress = Callable[[int, int], None]
#: a turn on the model for one unit of work (:mod:`drywall_qa.serving.scheduler`): held around each backend call
#: sequence, released between them
Turn = Callable[[], AbstractContextManager]


@dataclass
class ViewResult:
    """One prompt's blended output on one photo."""

    #: ``H×W`` float16 in [0, 1]
    probabilities: np.ndarray
    #: logits at the model's scale: the whole view's (cropped to the photo), or for tiled predictions the logits of
    #: the blended float16 map sampled to at most ``input_size`` on its longer side (coarser: a loss on them is not
    #: comparable with the whole view's)
    logits: torch.Tensor
    #: raw presence (:func:`~drywall_qa.core.presence.presence_logit`), the highest over the views' windows
    presence_logit: float
    #: how the prediction was made (:func:`drywall_qa.core.tiling.describe`)
    view: str


def predict_views(backend: Backend, image: np.ndarray, embeddings: torch.Tensor, policies: Sequence[ScalePolicy],
                  progress: Progress | None = None, features: FeatureCache | None = None,
                  turn: Turn = nullcontext) -> list[ViewResult]:
    """Per prompt (row of ``embeddings`` ``[P, D]``), its probabilities under its policy: the maps of the views the
    policy runs (:func:`~drywall_qa.core.tiling.passes`) combined by its ``fusion`` (:mod:`drywall_qa.core.fusion`);
    ``features``: the photo's encoded views, reused and filled (:mod:`drywall_qa.core.backends.feature_cache`). Each
    unit of model work (the whole view, one batch of ``WINDOW_BATCH`` windows) runs inside its own ``turn()``.

    A tiled policy whose windows would hold the whole photo in one runs as the whole view (the same pixels, shown
    at the model input's size); its result says "whole image".
    """
    height, width = image.shape[:2]
    views = [passes(policy, height, width) for policy in policies]
    state = _Maps(len(policies))
    whole = [i for i, runs in enumerate(views) if None in runs]
    if whole:
        decided = Decidedness(len(whole), tuple(policies[i].fusion == SELECT for i in whole))
        results = _whole_view(backend, image, embeddings[whole], decided, (features, turn))
        for k, (i, (prob, logit)) in enumerate(zip(whole, results)):
            state.logits[i] = logit
            state.take(i, prob, presence_logit(logit), (decided.cost(k), None), policies[i].fusion)
    tiled: dict[tuple[int, int], list[int]] = {}
    for i, (policy, runs) in enumerate(zip(policies, views)):
        for window in runs:
            if window is not None:
                tiled.setdefault((window, backend.check_input_side(policy.input)), []).append(i)
    grids = {window: window_grid(height, width, window) for window, _ in tiled}
    total, done = sum(len(grids[window]) for window, _ in tiled), 0
    for (window, side), group in tiled.items():
        modes = [policies[i].fusion for i in group]
        maps = [state.target(i, mode, (height, width)) for i, mode in zip(group, modes)]
        fusion = PassFusion([state.passes[i] for i in group], modes)
        decided = Decidedness(len(group), tuple(m == SELECT for m in modes))
        window_presence = _tiled_view(backend, image, embeddings[group], (window, side), grids[window], maps,
                                      (fusion, decided), lambda n: progress and progress(done + n, total),
                                      (features, turn))
        done += len(grids[window])
        for k, (i, prob, raw) in enumerate(zip(group, maps, window_presence)):
            state.take(i, prob, raw, (decided.cost(k), window), modes[k])
    logits = [lg if views[i] == [None] else _overview_logits(state.maps[i], backend.input_size)
              for i, lg in enumerate(state.logits)]
    return [ViewResult(p, lg, float(z), describe(policy, height, width, chosen))
            for p, lg, z, policy, chosen in zip(state.maps, logits, state.presence, policies, state.chosen)]


class _Maps:
    """Each prompt's map so far, the passes in it, its presence logit and, under ``select``, the cost of the pass
    it holds (:class:`~drywall_qa.core.fusion.Decidedness`) and that pass's window side (None: the whole view)."""

    def __init__(self, prompts: int) -> None:
        self.maps: list[np.ndarray | None] = [None] * prompts
        self.logits: list[torch.Tensor | None] = [None] * prompts
        self.presence, self.passes, self.cost = [-np.inf] * prompts, [0] * prompts, [np.inf] * prompts
        self.chosen: list[int | None] = [None] * prompts

    def target(self, prompt: int, mode: str, shape: tuple[int, int]) -> np.ndarray:
        """The float16 map a pass writes into: the prompt's own, or a new one for its first pass or under
        ``select``."""
        existing = self.maps[prompt]
        return np.empty(shape, np.float16) if existing is None or mode == SELECT else existing

    def take(self, prompt: int, probabilities: np.ndarray, presence: float, decided: tuple[float, int | None],
             mode: str) -> None:
        """Record a finished pass, ``decided``: its cost and window side; its map becomes the prompt's unless
        ``select`` keeps a more decided one. Presence is the highest over the passes, or under ``select`` the kept
        pass's own."""
        self.passes[prompt] += 1
        if mode != SELECT:
            self.maps[prompt], self.presence[prompt] = probabilities, max(self.presence[prompt], presence)
        elif self.maps[prompt] is None or decided[0] < self.cost[prompt]:
            self.maps[prompt], self.presence[prompt] = probabilities, presence
            self.cost[prompt], self.chosen[prompt] = decided


def _padded(backend: Backend, part: np.ndarray, side: int) -> np.ndarray:
    """``part`` (RGB uint8) at the top left of a ``side×side`` square of the colour that normalises to zero (the
    model's mean); ``part`` itself when it already fills the square."""
    if part.shape[:2] == (side, side):
        return part
    square = np.empty((side, side, 3), np.uint8)
    square[:] = np.round(255 * np.asarray(backend.image_mean)).astype(np.uint8)
    square[:part.shape[0], :part.shape[1]] = part
    return square


def _whole_view(backend: Backend, image: np.ndarray, embeddings: torch.Tensor, decided: Decidedness,
                model: tuple[FeatureCache | None, Turn]) -> list[tuple[np.ndarray, torch.Tensor]]:
    """``(probabilities H×W float16, logits over the photo)`` per prompt from the photo padded to a square and
    shrunk to the model input (a square photo goes to ``preprocess`` as it is); counted into ``decided``.
    ``model``: the photo's feature cache and the turn the encoder and decoder run in."""
    cache, turn = model
    height, width = image.shape[:2]
    side = backend.input_size
    if height == width:
        pixels, (rows, cols) = backend.preprocess([image]), (side, side)
    else:
        scale = side / max(height, width)
        rows, cols = max(1, round(height * scale)), max(1, round(width * scale))
        shrunk = np.asarray(Image.fromarray(image).resize((cols, rows), Image.Resampling.BILINEAR))
        pixels = backend.preprocess([_padded(backend, shrunk, side)])
    with turn(), torch.inference_mode():
        features = encoded(cache, ("whole", side), lambda: backend.encode_image(pixels))
        out = backend.decode(repeat_features(features, len(embeddings)), embeddings)
    results = []
    for prompt, logit in enumerate(_inside(out.float().cpu(), side, rows, cols)):
        logit = logit.clone()
        if decided.wants(prompt):
            decided.add(prompt, torch.sigmoid(logit))
        full = np.require(resize_probabilities(torch.sigmoid(logit), (height, width)), requirements="W")
        results.append((torch.from_numpy(full).half().numpy(), logit))
    return results


def _tiled_view(backend: Backend, image: np.ndarray, embeddings: torch.Tensor, scale: tuple[int, int],
                grid: list[tuple[int, int]], maps: list[np.ndarray], fusion: tuple[PassFusion, Decidedness],
                progress: Callable[[int], None], model: tuple[FeatureCache | None, Turn]) -> list[float]:
    """Blend every window's probabilities into ``maps`` (combined with what they already hold by ``fusion``'s
    first part, counted into its second), one window at a time; ``scale``: the window side and the model input side
    it is shrunk to; ``model``: the feature cache and the turn each batch of windows runs in. Returns each prompt's
    highest presence logit over the windows' parts inside the photo."""
    height, width = image.shape[:2]
    window = scale[0]
    weights = torch.from_numpy(blend_weights(window))
    band = _Band(len(embeddings), window, width)
    presence = [-np.inf] * len(embeddings)
    for start in range(0, len(grid), WINDOW_BATCH):
        chunk = grid[start:start + WINDOW_BATCH]
        for (top, left), logits in zip(chunk, _decode_windows(backend, image, embeddings, scale, chunk, model)):
            inside = _inside(logits, window, min(window, height - top), min(window, width - left))
            presence = [max(z, presence_logit(lg)) for z, lg in zip(presence, inside)]
            for prompt, part in enumerate(inside):
                if fusion[1].wants(prompt):
                    fusion[1].add(prompt, torch.sigmoid(part))
            prob = F.interpolate(torch.sigmoid(logits)[None], size=(window, window), mode="bilinear",
                                 align_corners=False, antialias=window < logits.shape[-1])[0]
            band.finish_above(top, maps, fusion[0])
            band.add(top, left, prob, weights, height, width)
        progress(start + len(chunk))
    band.finish_above(height, maps, fusion[0])
    return presence


def _inside(logits: torch.Tensor, window: int, rows: int, cols: int) -> torch.Tensor:
    """The part of a view's logits ``[P, s, s]`` over photo pixels: its first ``rows × cols`` of ``window`` input
    pixels, at whatever resolution ``s`` the backend decodes."""
    side = logits.shape[-1]
    return logits[:, :math.ceil(rows * side / window), :math.ceil(cols * side / window)]


def _decode_windows(backend: Backend, image: np.ndarray, embeddings: torch.Tensor, scale: tuple[int, int],
                    chunk: list[tuple[int, int]], model: tuple[FeatureCache | None, Turn]) -> torch.Tensor:
    """Logits ``[N, P, S, S]`` of the ``N`` windows at ``chunk`` (padded with the mean colour past the photo), each
    shown to the model at ``scale``'s input side; the encoder and decoder run in one turn (``model``'s second)."""
    window, input_side = scale
    cache, turn = model
    crops = []
    for top, left in chunk:
        crops.append(_padded(backend, image[top:top + window, left:left + window], window))
    with turn(), torch.inference_mode():
        features = encoded(cache, (scale, tuple(chunk)),
                           lambda: backend.encode_image(backend.preprocess(crops, input_side)))
        logits = backend.decode(repeat_features(features, len(embeddings)), embeddings.repeat(len(crops), 1))
    return logits.float().cpu().reshape(len(crops), len(embeddings), *logits.shape[-2:])


class _Band:
    """Weighted sums of window probabilities over the rows ``[top, top + window)``, full width."""

    def __init__(self, prompts: int, window: int, width: int) -> None:
        self.top, self.window = 0, window
        self.sums = torch.zeros(prompts, window, width)
        self.weights = torch.zeros(window, width)

    def add(self, top: int, left: int, prob: torch.Tensor, weights: torch.Tensor, height: int, width: int) -> None:
        """Add one window's ``[P, window, window]`` probabilities (the part inside the photo)."""
        rows, cols = min(self.window, height - top), min(self.window, width - left)
        offset = top - self.top
        self.sums[:, offset:offset + rows, left:left + cols] += prob[:, :rows, :cols] * weights[:rows, :cols]
        self.weights[offset:offset + rows, left:left + cols] += weights[:rows, :cols]

    def finish_above(self, row: int, maps: list[np.ndarray], fusion: PassFusion) -> None:
        """Write the rows above ``row`` (no later window reaches them) into ``maps`` and move the band down."""
        count = min(row, maps[0].shape[0]) - self.top if maps else 0
        if count <= 0:
            return
        weights = self.weights[:count].clamp(min=1e-12)
        for prompt, out in enumerate(maps):                 # one prompt at a time: small temporaries
            rows = torch.from_numpy(out[self.top:self.top + count])
            rows.copy_(fusion.combine(prompt, self.sums[prompt, :count] / weights, rows.float()))
        self.sums[:, :-count] = self.sums[:, count:].clone()
        self.sums[:, -count:] = 0
        self.weights[:-count] = self.weights[count:].clone()
        self.weights[-count:] = 0
        self.top += count


def _overview_logits(probabilities: np.ndarray, side: int) -> torch.Tensor:
    """Logits of ``probabilities`` sampled every k-th pixel so the longer side is at most ``side``."""
    step = max(1, -(-max(probabilities.shape) // side))
    sampled = torch.from_numpy(probabilities[::step, ::step].astype(np.float32)).clamp(1e-6, 1 - 1e-6)
    return torch.logit(sampled)
