"""Image + prompts → masks, with the work shared across prompts: each view of the image is encoded once per call
(:mod:`drywall_qa.core.views`), prompt embeddings are cached, and all prompts are decoded in one batch. A prompt is
text or a :class:`~drywall_qa.core.visual_prompts.VisualPrompt` (an example image, optionally mixed with text)."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

from drywall_qa.core.backends import Backend, display_name, load_backend
from drywall_qa.core.backends.feature_cache import FeatureCache
from drywall_qa.core.errors import InputError
from drywall_qa.core.imaging import ImageSource, image_name, load_image
from drywall_qa.core.postprocess import PostprocessSettings
from drywall_qa.core.prediction import (
    Concept,
    Prediction,
    borrowed_settings_note,
    clean_prompt,
    truncation_note,
    unknown_concept_note,
)
from drywall_qa.core.presence import presence_probability
from drywall_qa.core.result import Result
from drywall_qa.core.shapes import threshold_mask
from drywall_qa.core.tiling import TILING_MODES, WHOLE, ScalePolicy, passes
from drywall_qa.core.views import Progress, Turn, ViewResult, predict_views
from drywall_qa.core.visual_prompts import VisualPrompt

__all__ = ["Segmenter", "Prediction", "Result", "Concept", "Condition", "MAX_PROMPTS", "clean_prompt", "select_device",
           "truncation_note", "borrowed_settings_note", "unknown_concept_note"]

#: most prompts one call runs: they are decoded in one batch, so memory grows with each (the app allows 8)
MAX_PROMPTS = 32
#: what a prompt may be: text, or an example image with its mask
Condition = str | VisualPrompt


def select_device(preferred: str | torch.device | None = None) -> torch.device:
    """``preferred`` when it is available, else the best present: CUDA, then Apple MPS, then CPU."""
    if preferred is None or str(preferred) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        device = torch.device(preferred)
    except RuntimeError as err:
        raise InputError("device", f"unknown device '{preferred}'", "use cuda, mps, cpu or leave it out") from err
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    if not available.get(device.type, lambda: True)():
        raise InputError("device", f"{device.type} is not available on this machine", "use cpu or leave it out")
    return device


class Segmenter:
    """Promptable segmentation with any :class:`Backend`."""

    def __init__(self, backend: Backend, cache_size: int = 256) -> None:
        self.backend = backend
        self.cache_size = cache_size
        #: text prompt or visual-prompt key → conditioning vector
        self._embeddings: OrderedDict[str | tuple, torch.Tensor] = OrderedDict()

    @classmethod
    def load(cls, model: str | Path | None = None, device: str | None = None, engine: str = "torch") -> Segmenter:
        """Load a checkpoint directory, alias or hub id (``None``: the bundled model) on the best device, run by
        ``engine`` (:func:`~drywall_qa.core.backends.load_backend`)."""
        return cls(load_backend(model, select_device(device), engine))

    def with_settings(self, settings: PostprocessSettings) -> Segmenter:
        """A segmenter of the same loaded model (shared, not copied) whose post-processing is ``settings``; this one
        is left as it is."""
        backend = copy.copy(self.backend)
        backend.settings = settings
        return Segmenter(backend, self.cache_size)

    @property
    def name(self) -> str:
        """The model id or directory shown to users ("drywall-qa-lite (bundled)" for the bundled model)."""
        return display_name(self.backend.model.config.name_or_path or self.backend.family)

    @property
    def supports_visual_prompts(self) -> bool:
        """Whether example images (``VisualPrompt`` with alpha > 0) can be used as prompts."""
        return self.backend.supports_visual_prompts

    def model_size(self) -> dict[str, float]:
        """Parameter counts and the size of parameters + buffers in MiB."""
        model = self.backend.model
        tensors = [*model.parameters(), *model.buffers()]
        return {"parameters": sum(p.numel() for p in model.parameters()),
                "trainable_parameters": sum(p.numel() for p in self.backend.trainable_parameters()),
                "megabytes": sum(t.numel() * t.element_size() for t in tensors) / 2**20}

    def predict(self, image: ImageSource, prompts: Sequence[Condition] | Condition, threshold: float | None = None,
                tiling: str = "auto", scale: ScalePolicy | None = None, progress: Progress | None = None,
                features: FeatureCache | None = None, turn: Turn = nullcontext) -> Result:
        """One prediction per prompt, at the image's size ``H×W``, as a :class:`~drywall_qa.core.result.Result`.

        ``threshold`` None uses the checkpoint's per-prompt threshold or 0.5. Each prompt is predicted from the
        views its scale policy names (:mod:`drywall_qa.core.tiling`): the checkpoint's, else the whole image; ``tiling``
        ``off`` / ``on`` forces the whole view / tiles, and ``scale`` replaces every prompt's policy. ``progress``
        is called with (windows done, windows in all) while tiles run. Text prompts are cleaned
        (:func:`clean_prompt`); at most ``MAX_PROMPTS`` per call. A prompt longer than the text encoder's token limit
        is truncated to it and its prediction says so (``truncated``). ``features``: this photo's encoded views
        from an earlier call with the same model and ``tiling``/``scale``
        (:mod:`drywall_qa.core.backends.feature_cache`), reused and filled, so another prompt on the photo only runs
        the decoder. ``turn``: entered around each unit of model work (the prompts' embeddings, then each view or
        batch of windows), so a scheduler can let other requests' units run between them
        (:mod:`drywall_qa.serving.scheduler`).
        """
        prompts = self._check_prompts(prompts)
        _check_threshold(threshold)
        _check_tiling(tiling)
        array = load_image(image)
        labels = [p if isinstance(p, str) else p.label for p in prompts]
        with turn(), torch.inference_mode():
            sources = self._sources(prompts)
            embeddings = self._prompt_embeddings(prompts)
            truncated, concepts = self.truncated(prompts), self.concepts(prompts)
        policies = [(scale or self.scale_policy(source)).forced(tiling) for source in sources]
        views = predict_views(self.backend, array, embeddings, policies, progress, features, turn)
        settings = [(source, *self.backend.settings.lookup(source, threshold)) for source in sources]
        predictions = tuple(_prediction(*args) for args in zip(labels, views, policies, settings, truncated, concepts))
        return Result(image=array, predictions=predictions, model=self.name, family=self.backend.family,
                      name=image_name(image), token_limit=self.backend.max_prompt_tokens)

    def views(self, size: tuple[int, int], prompts: Sequence[Condition] | Condition, tiling: str = "auto") -> int:
        """How many views :meth:`predict` runs for ``prompts`` on a photo of ``size`` (height, width), summed over
        the prompts (:func:`~drywall_qa.core.tiling.passes`): the model work of a request is its pixels times this."""
        checked = self._check_prompts(prompts)
        _check_tiling(tiling)
        policies = [self.scale_policy(source).forced(tiling) for source in self._sources(checked)]
        return sum(len(passes(policy, *size)) for policy in policies)

    def _sources(self, prompts: Sequence[Condition]) -> list[str | None]:
        """Per checked prompt, the calibrated prompt whose settings it uses (:meth:`settings_source`; None for an
        example image)."""
        return [self.settings_source(p if isinstance(p, str) else p.label) if isinstance(p, str) or p.text_only
                else None for p in prompts]

    def scale_policy(self, prompt: str | None) -> ScalePolicy:
        """The checkpoint's scale policy of a calibrated prompt, else the whole view (tiles of the backend's
        ``tile_window`` when forced on)."""
        return self.backend.settings.scales.get(prompt) or ScalePolicy(WHOLE, self.backend.tile_window)

    def calibrated_prompts(self) -> list[str]:
        """The prompts the checkpoint has tuned settings for (threshold, shape or presence calibration): those it was
        trained and calibrated on, and the concepts it knows."""
        return self.backend.settings.calibrated_prompts()

    def closest_concepts(self, prompts: Sequence[str]) -> list[tuple[str, float] | None]:
        """Per text prompt: the calibrated prompt whose text embedding is most similar and their cosine similarity
        (the prompt itself and 1.0 when it is calibrated); None when the checkpoint has no calibrated prompts."""
        calibrated = self.calibrated_prompts()
        if not calibrated or not prompts:
            return [None] * len(prompts)
        with torch.inference_mode():
            vectors = F.normalize(self._prompt_embeddings([*calibrated, *prompts]).float(), dim=-1)
        similarity = vectors[len(calibrated):] @ vectors[:len(calibrated)].T
        best = similarity.argmax(dim=1).tolist()
        return [(prompt, 1.0) if prompt in calibrated else (calibrated[b], float(row[b]))
                for prompt, b, row in zip(prompts, best, similarity)]

    def settings_source(self, prompt: str) -> str | None:
        """The calibrated prompt whose threshold, output shape and presence calibration ``prompt`` uses: itself when
        the checkpoint has settings for it, else the calibrated prompt with the most similar embedding if at least
        the backend's ``paraphrase_similarity`` close ("segment joint tape" → "segment joint/tape"), else None."""
        if prompt in self.calibrated_prompts():
            return prompt
        bar = self.backend.paraphrase_similarity
        match = self.closest_concepts([prompt])[0] if bar is not None else None
        return match[0] if match is not None and match[1] >= bar else None

    def concepts(self, prompts: Sequence[Condition]) -> list[Concept]:
        """Per prompt: its closest calibrated prompt (:meth:`closest_concepts`) and whether that is below the
        backend's ``known_concept_similarity``; measured for text prompts of backends that declare that bar (not
        CLIPSeg)."""
        bar = self.backend.known_concept_similarity
        texts = [p if isinstance(p, str) else p.text if p.text_only else None for p in prompts]
        measured = [text for text in texts if text is not None] if bar is not None else []
        matches = dict(zip(measured, self.closest_concepts(measured)))
        labels = [p if isinstance(p, str) else p.label for p in prompts]
        return [Concept(label) if matches.get(text) is None else Concept(label, *matches[text], matches[text][1] < bar)
                for label, text in zip(labels, texts)]

    def truncated(self, prompts: Sequence[Condition]) -> list[bool]:
        """Per prompt: whether the text it is encoded from is longer than the text encoder's token limit."""
        texts = [[key for key, _ in _weighted_keys(p) if isinstance(key, str)] for p in prompts]
        unique = list(dict.fromkeys(text for keys in texts for text in keys))
        cut = dict(zip(unique, self.backend.truncated_prompts(unique)))
        return [any(cut[text] for text in keys) for keys in texts]

    def clear_prompt_cache(self) -> None:
        """Forget cached prompt embeddings (e.g. after the text encoder's weights changed)."""
        self._embeddings.clear()

    def _prompt_embeddings(self, prompts: Sequence[Condition]) -> torch.Tensor:
        """``[P, D]`` embeddings, a visual prompt's mixed with its text by ``alpha``; texts and example images not
        in the LRU cache are encoded together, one call per kind."""
        parts = [_weighted_keys(p) for p in prompts]
        examples = {p.key: p for p in prompts if isinstance(p, VisualPrompt)}
        needed = list(dict.fromkeys(key for weighted in parts for key, _ in weighted))
        missing = [key for key in needed if key not in self._embeddings]
        texts = [key for key in missing if isinstance(key, str)]
        images = [examples[key] for key in missing if not isinstance(key, str)]
        if texts:
            self._embeddings.update(zip(texts, self.backend.encode_prompts(texts)))
        if images:
            vectors = self.backend.encode_visual_prompts([example.support() for example in images])
            self._embeddings.update(zip([example.key for example in images], vectors))
        for key in needed:
            self._embeddings.move_to_end(key)
        while len(self._embeddings) > max(self.cache_size, len(needed)):
            self._embeddings.popitem(last=False)
        return torch.stack([sum(weight * self._embeddings[key] for key, weight in weighted) for weighted in parts])

    def _check_prompts(self, prompts: Sequence[Condition] | Condition) -> list[Condition]:
        """A bare string or visual prompt is one prompt; text is cleaned and must not be blank; at most
        ``MAX_PROMPTS``; example images need a backend that can encode them."""
        prompts = [prompts] if isinstance(prompts, (str, VisualPrompt)) else list(prompts)
        if not prompts:
            raise InputError("prompts", "no prompt given", "give at least one, e.g. 'segment crack'")
        if len(prompts) > MAX_PROMPTS:
            raise InputError("prompts", f"{len(prompts)} prompts given, at most {MAX_PROMPTS} run in one call",
                             "split them over several calls")
        for index, prompt in enumerate(prompts):
            if isinstance(prompt, VisualPrompt):
                if not (prompt.text_only or self.supports_visual_prompts):
                    raise InputError(f"prompts[{index}]", f"visual prompts need the CLIPSeg backend; the "
                                     f"{self.backend.family} model has no image-prompt encoder",
                                     "load a CLIPSeg model (alias 'clipseg' or a fine-tuned CLIPSeg checkpoint) "
                                     "or use alpha 0 (text only)")
            elif not isinstance(prompt, str) or not clean_prompt(prompt):
                raise InputError(f"prompts[{index}]", f"empty prompt {prompt!r}",
                                 "type what to segment, e.g. 'segment crack'")
        return [clean_prompt(p) if isinstance(p, str) else p for p in prompts]


def _prediction(prompt: str, view: ViewResult, policy: ScalePolicy,
                settings: tuple[str | None, float, str, tuple[float, float] | None], truncated: bool,
                concept: Concept) -> Prediction:
    """One prompt's prediction; ``settings``: the source prompt (see ``Segmenter.settings_source``) resolved to a
    threshold, a shape and a presence calibration."""
    source, threshold, shape, calibration = settings
    return Prediction(prompt=prompt, probabilities=view.probabilities,
                      mask=threshold_mask(view.probabilities, threshold, shape), logits=view.logits,
                      threshold=float(threshold), presence=presence_probability(view.presence_logit, calibration),
                      truncated=truncated, shape=shape, settings_from=source, closest_concept=concept.closest_concept,
                      concept_similarity=concept.concept_similarity, unknown_concept=concept.unknown_concept,
                      policy=policy, view=view.view, presence_logit=view.presence_logit,
                      presence_calibrated=calibration is not None)


def _weighted_keys(prompt: Condition) -> list[tuple[str | tuple, float]]:
    """Cache keys whose vectors, weighted, make the prompt's conditioning vector."""
    if isinstance(prompt, str):
        return [(prompt, 1.0)]
    if prompt.text_only:
        return [(prompt.text, 1.0)]
    if prompt.alpha == 1.0:
        return [(prompt.key, 1.0)]
    return [(prompt.key, prompt.alpha), (prompt.text, 1.0 - prompt.alpha)]


def _check_threshold(threshold: float | None) -> None:
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise InputError("threshold", f"{threshold} is outside [0, 1]", "use a probability such as 0.5")


def _check_tiling(tiling: str) -> None:
    if tiling not in TILING_MODES:
        raise InputError("tiling", f"{tiling!r:.40} is not one of {', '.join(TILING_MODES)}", "use auto, off or on")
