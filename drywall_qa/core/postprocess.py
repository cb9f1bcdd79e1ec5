"""Post-processing settings of a checkpoint, kept beside its weights (as transformers keeps ``GenerationConfig`` beside
the model config): per prompt the threshold, the output shape (:mod:`drywall_qa.core.shapes`), the Platt parameters of
the presence score (:mod:`drywall_qa.core.presence`) and the scale policy (:mod:`drywall_qa.core.tiling`).

They belong to one set of weights: training starts from empty settings and stores the thresholds it chose;
``drywall-qa calibrate`` writes them all. File: ``postprocess.json`` in the checkpoint directory.
Checkpoints written before it kept them in ``config.json`` as ``prompt_thresholds``, ``prompt_shapes`` and
``presence_calibration``; those are read when there is no ``postprocess.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drywall_qa.core.atomic import write_atomic
from drywall_qa.core.errors import ModelLoadError, shown
from drywall_qa.core.shapes import PIXELS, SHAPES
from drywall_qa.core.tiling import ScalePolicy

SETTINGS_FILE = "postprocess.json"
#: the threshold of a prompt without a tuned one
DEFAULT_THRESHOLD = 0.5
#: the fields as ``config.json`` held them before ``postprocess.json``
LEGACY_FIELDS = {"thresholds": "prompt_thresholds", "shapes": "prompt_shapes", "presence": "presence_calibration"}
#: what to do about settings out of range
RECALIBRATE = "run `drywall-qa calibrate --model DIR` again, or delete the entry"
#: what to do about a damaged settings file
DAMAGED = f"delete {SETTINGS_FILE} (default settings) or run `drywall-qa calibrate --model DIR` again"


@dataclass
class PostprocessSettings:
    """Per-prompt post-processing; a prompt not listed uses :data:`DEFAULT_THRESHOLD`, ``pixels`` and no presence
    calibration."""

    thresholds: dict[str, float] = field(default_factory=dict)
    shapes: dict[str, str] = field(default_factory=dict)
    #: Platt parameters ``(a, b)`` of the image-level presence score
    presence: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: which views of a photo the prompt is predicted from
    scales: dict[str, ScalePolicy] = field(default_factory=dict)

    def calibrated_prompts(self) -> list[str]:
        """The prompts with any tuned setting, in the order first listed."""
        return list(dict.fromkeys([*self.thresholds, *self.shapes, *self.presence, *self.scales]))

    def lookup(self, prompt: str | None,
               threshold: float | None = None) -> tuple[float, str, tuple[float, float] | None]:
        """Threshold (``threshold`` when given), output shape and presence calibration of ``prompt`` (None: the
        defaults)."""
        tuned = self.thresholds.get(prompt, DEFAULT_THRESHOLD) if threshold is None else threshold
        return tuned, self.shapes.get(prompt, PIXELS), self.presence.get(prompt)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {"thresholds": dict(self.thresholds), "shapes": dict(self.shapes),
                "presence": {p: list(pair) for p, pair in self.presence.items()},
                "scales": {p: policy.to_dict() for p, policy in self.scales.items()}}

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``directory/postprocess.json`` atomically."""
        write_atomic(Path(directory) / SETTINGS_FILE, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str | Path,
                  names: Mapping[str, str] | None = None) -> PostprocessSettings:
        """Checked settings from ``data``; ``names`` maps each field to its key in ``data`` (default: the field's
        name). ModelLoadError names ``where`` and the key: thresholds not in [0, 1], unknown shapes, Platt pairs
        that are not two finite numbers, scale policies :class:`ScalePolicy` refuses (``scales``, read only from
        ``postprocess.json``)."""
        names = names or {name: name for name in [*LEGACY_FIELDS, "scales"]}
        maps = {name: _prompt_map(data, key, where) for name, key in names.items()}
        for prompt, value in maps["thresholds"].items():
            if not (_finite(value) and 0 <= value <= 1):
                raise _bad(where, names["thresholds"], prompt, f"{shown(value)} is not a probability in [0, 1]")
        for prompt, shape in maps["shapes"].items():
            if shape not in SHAPES:
                raise _bad(where, names["shapes"], prompt, f"{shown(shape)} is not one of {', '.join(SHAPES)}")
        for prompt, pair in maps["presence"].items():
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(_finite(v) for v in pair)):
                raise _bad(where, names["presence"], prompt, f"{shown(pair)} is not a pair of finite numbers")
        return cls({p: float(t) for p, t in maps["thresholds"].items()}, dict(maps["shapes"]),
                   {p: (float(a), float(b)) for p, (a, b) in maps["presence"].items()},
                   {p: _scale_policy(value, where, p) for p, value in maps.get("scales", {}).items()})

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str | Path) -> PostprocessSettings:
        """The settings an older checkpoint kept in its ``config.json`` (:data:`LEGACY_FIELDS`)."""
        return cls.from_dict(config, where, LEGACY_FIELDS)

    @classmethod
    def from_pretrained(cls, directory: str | Path, config: Mapping[str, Any] | None = None) -> PostprocessSettings:
        """``directory/postprocess.json``; without one, the legacy fields of ``config`` (the directory's parsed
        ``config.json``), else empty settings."""
        file = Path(directory) / SETTINGS_FILE
        if file.is_file():
            return cls.from_dict(read_json_object(file, DAMAGED), file)
        return cls.from_config(config or {}, Path(directory) / "config.json")


def read_json_object(file: Path, hint: str) -> dict[str, Any]:
    """``file`` parsed as a JSON object; ModelLoadError (ending in ``hint``) when it is unreadable, not JSON or not
    an object. A missing file raises FileNotFoundError."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except OSError as err:
        raise ModelLoadError(f"{file}: cannot be read ({err.strerror or err}). {hint}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{file}: not valid JSON ({err}). {hint}") from None
    except RecursionError:
        raise ModelLoadError(f"{file}: JSON nested too deeply to read. {hint}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{file}: holds a JSON {type(data).__name__}, not an object of settings. {hint}")
    return data


def strip_legacy_fields(config: Any) -> None:
    """Remove the :data:`LEGACY_FIELDS` from a loaded model config, so saving it writes none of them."""
    for key in LEGACY_FIELDS.values():
        if key in vars(config):
            delattr(config, key)


def _prompt_map(data: Mapping[str, Any], key: str, where: str | Path) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ModelLoadError(f"{where}: field '{key}' is {shown(value)}, not an object {{prompt: value}}. "
                             f"{RECALIBRATE}")
    return value


def _scale_policy(value: Any, where: str | Path, prompt: str) -> ScalePolicy:
    if not isinstance(value, dict) or set(value) - {"view", "window", "input", "zoom_out", "fusion"}:
        raise _bad(where, "scales", prompt, f"{shown(value)} is not an object {{view, window[, input, zoom_out, "
                                                     "fusion]}}")
    if not isinstance(value.get("zoom_out", []), list):
        raise _bad(where, "scales", prompt, f"zoom_out {shown(value['zoom_out'])} is not a list of factors")
    try:
        return ScalePolicy(**{**value, "zoom_out": tuple(value.get("zoom_out", []))})
    except (TypeError, ValueError) as err:
        raise _bad(where, "scales", prompt, str(err)) from None


def _bad(where: str | Path, key: str, prompt: str, problem: str) -> ModelLoadError:
    return ModelLoadError(f"{where}: {key}[{shown(prompt)}] = {problem}. {RECALIBRATE}")


def _finite(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:                             # an integer too large for a float (JSON allows 400 digits)
        return False
