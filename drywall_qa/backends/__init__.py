"""Model families behind one contract, and the one function that picks and loads the right one."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from drywall_qa.backends.base import Backend, Features, repeat_features
from drywall_qa.errors import ModelLoadError

DEFAULT_CLIPSEG = "CIDAS/clipseg-rd64-refined"
BUNDLED_DIR = Path(__file__).resolve().parents[1] / "weights" / "drywall-qa-lite"
#: names a user may type instead of a path or hub id
ALIASES = {"lite": BUNDLED_DIR, "default": BUNDLED_DIR, "clipseg": DEFAULT_CLIPSEG}

BUNDLED_NAME = "drywall-qa-lite (bundled)"

__all__ = ["Backend", "Features", "repeat_features", "load_backend", "display_name", "DEFAULT_CLIPSEG", "BUNDLED_DIR",
           "BUNDLED_NAME"]


def display_name(name_or_path: str | Path) -> str:
    """How a model is named to users and in reports: the bundled model by name, not by this machine's path."""
    path = Path(name_or_path)
    return BUNDLED_NAME if path.is_dir() and path.resolve() == BUNDLED_DIR else str(name_or_path)


def _model_type(directory: Path) -> str:
    config = directory / "config.json"
    try:
        return json.loads(config.read_text())["model_type"]
    except FileNotFoundError as err:
        raise ModelLoadError(f"{directory}: no config.json — pass a checkpoint directory written by "
                             "save_pretrained (e.g. the output of `python -m train`) or a hub id") from err
    except (json.JSONDecodeError, KeyError) as err:
        raise ModelLoadError(f"{config}: not a valid model config (field 'model_type' missing or file malformed)") from err


def load_backend(model: str | Path | None = None, device: str | torch.device | None = None) -> Backend:
    """Load a backend from a local checkpoint directory, an alias (``lite``, ``clipseg``) or a hub id.

    ``None`` loads the bundled drywall-qa-lite model.
    """
    source = ALIASES.get(str(model), model) if model is not None else BUNDLED_DIR
    path = Path(source)
    if path.is_dir():
        kind = _model_type(path)
    elif path.is_absolute() or str(source).startswith("."):
        raise ModelLoadError(f"{source}: checkpoint directory not found — pass an existing directory or a hub id")
    else:
        kind = "clipseg"  # a hub id: only CLIPSeg checkpoints are published there
    if kind == "clipseg":
        from drywall_qa.backends.clipseg import ClipSegBackend

        return ClipSegBackend.from_pretrained(str(source), device=device)
    if kind == "drywall-qa-lite":
        from drywall_qa.backends.lite import LiteBackend

        return LiteBackend.from_pretrained(str(source), device=device)
    raise ModelLoadError(f"{path / 'config.json'}: model_type '{kind}' is not supported (use clipseg or drywall-qa-lite)")
