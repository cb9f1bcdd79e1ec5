"""Choose each prompt's scale policy (:mod:`drywall_qa.core.tiling`) by measurement, for ``drywall-qa calibrate``.

Every candidate view is scored on a dataset's photos as they are and on the wide shots they make
(:func:`drywall_qa.calibration.wide_shots.calibration_shots`: for cracks mosaics of close-ups and the close-ups enlarged
×2 and ×4, for taping the whole-wall photos enlarged): per threshold the mean of the sets' mIoUs of the raw masks, at
its best (output shapes are chosen afterwards, with the policy). Candidates include pyramids (training-scale windows
plus zoomed-out passes, :mod:`drywall_qa.core.tiling`), so one policy can serve photos whose structures are smaller and
larger than in training. Candidates are listed cheapest first, and the first within ``COST_TOLERANCE`` of the best score
wins: a smaller model input or one view instead of many windows is worth a difference the split cannot resolve. The
policy is chosen on validation photos and wide shots built from them, so the score it reaches there is an upper
estimate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from drywall_qa.calibration.wide_shots import calibration_shots
from drywall_qa.core.backends import Backend
from drywall_qa.core.fusion import SELECT
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.core.shapes import PIXELS
from drywall_qa.core.tiling import BOTH, TILES, WHOLE, ScalePolicy, passes
from drywall_qa.data.coco import DATASETS
from drywall_qa.evaluation import Split
from drywall_qa.evaluation.metrics import ThresholdSweep

#: the side of the dataset photos, which the models are trained on: windows of it show a photo at training scale
TRAINING_WINDOW = 640
#: a smaller model input side also tried where the backend runs at any side and its own is larger (drywall-qa-lite
#: trained at it before its last stage); a window shrunk to it costs about (384 / 480)² of one at 480 px
SMALLER_INPUT = 384
#: how far below the best score (mean mIoU) a cheaper candidate may be and still be chosen
COST_TOLERANCE = 0.005
#: the zoom-out factors of the pyramid candidates, cheapest first; they select one pass per photo (per-pixel means
#: and maxima blend a wrong scale's misplaced answer into the right one's)
PYRAMIDS = ((4,), (2, 4))
#: most wide shots of each kind scored per candidate without a ``limit`` (zooms ×4 cost 16 photos' windows each)
WIDE_SHOTS = 24


def input_sides(backend: Backend) -> list[int | None]:
    """The model input sides to try, smaller first: ``SMALLER_INPUT`` where the backend can take it, then its own
    (None)."""
    smaller = backend.resizable_input and SMALLER_INPUT < backend.input_size
    return [SMALLER_INPUT, None] if smaller else [None]


def candidates(tile_window: int, inputs: Sequence[int | None] = (None,)) -> list[ScalePolicy]:
    """Cheapest first: the whole view, then windows of the training scale and of the backend's own (larger windows
    first: fewer of them), each at every input side of ``inputs`` (smaller first; None: the backend's own), tiles
    before both (both adds the whole view); last the pyramids over training-scale windows (:data:`PYRAMIDS`) that
    select the most decided pass (:mod:`drywall_qa.core.fusion`)."""
    windows = sorted({TRAINING_WINDOW, tile_window}, reverse=True)
    tiled = [ScalePolicy(view, w, side) for w in windows for side in inputs for view in (TILES, BOTH)]
    pyramids = [ScalePolicy(TILES, TRAINING_WINDOW, side, zoom_out, SELECT) for zoom_out in PYRAMIDS for side in inputs]
    return [ScalePolicy(WHOLE, TRAINING_WINDOW), *tiled, *pyramids]


def score_candidates(segmenter: Segmenter, dataset: str, split: Split, policies: Sequence[ScalePolicy],
                     limit: int | None = None) -> dict[str, dict[ScalePolicy, float]]:
    """Per prompt of ``dataset`` and candidate: the best over thresholds of the mean mIoU of the raw (``pixels``)
    masks on the first ``limit`` photos of ``split`` and on each kind of wide shot they make (at most
    :data:`WIDE_SHOTS`, or ``limit // 4``, of each; the photos alone when they make none)."""
    prompts = list(DATASETS[dataset].prompts)
    sets = {"photos": split, **calibration_shots(dataset, split)}
    curves = {}
    for name, shots in sets.items():
        wide = WIDE_SHOTS if limit is None else max(1, limit // 4)
        count = min(len(shots), (limit or len(shots)) if name == "photos" else wide)
        if count:
            curves[name] = _curves(segmenter, shots, prompts, policies, count, f"{dataset} {name}")
    return {prompt: {policy: float(np.max(np.mean([c[(prompt, policy)] for c in curves.values()], axis=0)))
                     for policy in policies} for prompt in prompts}


def choose(scores: dict[str, dict[ScalePolicy, float]],
           tolerance: float = COST_TOLERANCE) -> dict[str, ScalePolicy]:
    """Per prompt the first listed (cheapest) policy that scores within ``tolerance`` of the best."""
    return {prompt: next(p for p, score in by_policy.items() if score >= max(by_policy.values()) - tolerance)
            for prompt, by_policy in scores.items()}


def _curves(segmenter: Segmenter, shots: Split, prompts: list[str], policies: Sequence[ScalePolicy], count: int,
            desc: str) -> dict[tuple[str, ScalePolicy], np.ndarray]:
    """mIoU per threshold of every prompt and policy on the first ``count`` shots; a policy that runs the same views
    of a shot as one already run (e.g. windows that hold the whole photo) reuses its answer."""
    sweeps = {(prompt, policy): ThresholdSweep(shape=PIXELS) for prompt in prompts for policy in policies}
    for index in tqdm(range(count), desc=desc, unit="image", disable=None):
        sample = shots[index]
        answers: dict[tuple, list] = {}
        for policy in policies:
            views = tuple(passes(policy, *sample.mask.shape))
            same = (views, policy.input if any(views) else None, policy.fusion if len(views) > 1 else None)
            if same not in answers:
                answers[same] = segmenter.predict(sample.image, prompts, scale=policy)
            for prediction in answers[same]:
                sweeps[(prediction.prompt, policy)].add(prediction.probabilities, sample.mask)
    return {key: np.asarray(sweep.result()["miou"]) for key, sweep in sweeps.items()}
