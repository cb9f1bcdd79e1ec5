"""Checks that a checkpoint is whole and sane before it serves a request, so a damaged or hand-edited one fails at
load with one line naming the file and the field — not later with empty masks, "nan%" or an unexpected error.

Before loading: ``config.json`` is a readable JSON object (post-processing settings are checked where they are read,
:mod:`drywall_qa.core.postprocess`); every ``*.safetensors`` header parses and covers its file. After loading: every
weight is finite, every scale policy names an input side the backend takes, and one smoke prediction (a small grey
ramp, one prompt) gives finite logits: about 30 ms in all for the bundled model on one CPU thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from drywall_qa.core.backends.base import Backend
from drywall_qa.core.errors import InputError, ModelLoadError, shown
from drywall_qa.core.imaging import path_problem, short_path
from drywall_qa.core.postprocess import SETTINGS_FILE, read_json_object
from drywall_qa.core.tiling import MAX_INPUT

#: largest model input side accepted from a checkpoint (the bundled model uses 480, CLIPSeg 352)
MAX_INPUT_SIZE = MAX_INPUT
#: the smoke prediction: a model input of this side (a multiple of the largest stride, 32) and this prompt
SMOKE_SIZE, SMOKE_PROMPT = 64, "segment crack"
#: what to do about damaged files
RESTORE = "the checkpoint is damaged: copy it again from its source, or retrain"


def is_directory(path: Path) -> bool:
    """Whether ``path`` is a directory; a path the file system cannot hold (NUL, over-long name) is refused."""
    problem = path_problem(path)
    if problem:
        raise ModelLoadError(f"{short_path(path)}: {problem}. pass a checkpoint directory, alias or hub id")
    try:
        return path.is_dir()
    except OSError as err:
        raise ModelLoadError(f"{short_path(path)}: cannot be read ({err.strerror or err}). check the path and its "
                             "permissions") from None


def read_config(directory: Path) -> dict[str, Any]:
    """``directory/config.json`` as a dict; ModelLoadError when it is missing, unreadable or not a JSON object."""
    file = directory / "config.json"
    try:
        return read_json_object(file, RESTORE)
    except FileNotFoundError:
        raise ModelLoadError(f"{directory}: no config.json. pass a checkpoint directory written by save_pretrained "
                             "(e.g. the output of `drywall-qa train`) or a hub id") from None


def check_positive_ints(config: Mapping[str, Any], limits: Mapping[str, tuple[int, int, int]],
                        where: str | Path) -> None:
    """Each ``field`` present in ``config`` with ``limits[field] = (count, low, high)``: an int (count 0) or a list
    of ``count`` ints, each from ``low`` to ``high``."""
    for field, (count, low, high) in limits.items():
        if field not in config:
            continue
        value = config[field]
        values = [value] if count == 0 else value if isinstance(value, list) and len(value) == count else None
        if values is None or not all(_int(v) and low <= v <= high for v in values):
            wanted = "a whole number" if count == 0 else f"a list of {count} whole numbers"
            raise ModelLoadError(f"{where}: field '{field}' is {shown(value)}, not {wanted} from {low} to {high}. "
                                 f"{RESTORE}")


def check_weight_files(directory: Path) -> None:
    """Every ``*.safetensors`` file's header parses and covers its file (random bytes and truncated copies fail)."""
    for file in sorted(directory.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt"):
                pass
        except (SafetensorError, OSError) as err:
            raise ModelLoadError(f"{file}: not a readable safetensors file ({reason(err)}). {RESTORE}") from None


def check_loaded(backend: Backend, source: str) -> None:
    """A loaded :class:`~drywall_qa.core.backends.Backend`: finite weights, scale policies it can run, and a finite
    smoke prediction."""
    weights = Path(source) / "model.safetensors"
    where = weights if weights.is_file() else source
    for name, tensor in backend.model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelLoadError(f"{where}: weight '{name}' holds NaN or infinite values. {RESTORE}")
    for prompt, policy in backend.settings.scales.items():
        try:
            backend.check_input_side(policy.input)
        except InputError as err:
            raise ModelLoadError(f"{Path(source) / SETTINGS_FILE}: scales[{shown(prompt)}] = {err.problem}. "
                                 "delete its \"input\" field, or the entry") from None
    _smoke_prediction(backend, source)


@torch.inference_mode()
def _smoke_prediction(backend: Backend, source: str) -> None:
    """A ``SMOKE_SIZE``² grey ramp (normalised as preprocessing does; both families are fully convolutional or
    interpolate their position embeddings) and one prompt: the config must fit the weights, the logits be finite.
    A ramp, not one grey: a constant input at the normalisation mean is all zeros and hides overflowing weights."""
    ramp = torch.linspace(0, 1, SMOKE_SIZE, device=backend.device).expand(1, 3, SMOKE_SIZE, SMOKE_SIZE)
    try:
        features = backend.encode_image(backend.normalize(ramp))
        logits = backend.decode(features, backend.encode_prompts([SMOKE_PROMPT]))
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        raise ModelLoadError(f"{source}: a test prediction failed ({reason(err)}), so the checkpoint's settings do "
                             f"not fit its weights. {RESTORE}") from None
    if logits.ndim != 3 or logits.numel() == 0 or not bool(torch.isfinite(logits).all()):
        raise ModelLoadError(f"{source}: a test prediction on a grey ramp gave NaN or infinite scores, so every "
                             f"prediction would. {RESTORE}")


def reason(err: BaseException, limit: int = 200) -> str:
    """The first line of an error's message, at most ``limit`` characters (transformers' are tables)."""
    lines = str(err).strip().splitlines() or [type(err).__name__]
    return lines[0] if len(lines[0]) <= limit else lines[0][:limit] + "…"


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
