"""Model families behind one contract, and the two factories: :func:`load_backend` picks the family of a checkpoint
and loads it, :func:`new_backend` builds a new model to train."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from drywall_qa.core.backends import checks
from drywall_qa.core.backends.base import Backend, Features, repeat_features
from drywall_qa.core.errors import ModelLoadError
from drywall_qa.core.postprocess import PostprocessSettings, strip_legacy_fields

DEFAULT_CLIPSEG = "CIDAS/clipseg-rd64-refined"
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "weights" / "drywall-qa-lite"
#: names a user may type instead of a path or hub id
ALIASES = {"lite": BUNDLED_DIR, "default": BUNDLED_DIR, "clipseg": DEFAULT_CLIPSEG}

BUNDLED_NAME = "drywall-qa-lite (bundled)"
#: the model_type values of the families this package can load → the module and class of their backend, imported on
#: first use
FAMILIES = {"clipseg": ("drywall_qa.core.backends.clipseg", "ClipSegBackend"),
            "drywall-qa-lite": ("drywall_qa.core.backends.lite", "LiteBackend")}

__all__ = ["Backend", "Features", "repeat_features", "load_backend", "new_backend", "display_name", "DEFAULT_CLIPSEG",
           "BUNDLED_DIR", "BUNDLED_NAME"]


def display_name(name_or_path: str | Path) -> str:
    """How a model is named to users and in reports: the bundled model by name, not by this machine's path."""
    path = Path(name_or_path)
    return BUNDLED_NAME if path.is_dir() and path.resolve() == BUNDLED_DIR else str(name_or_path)


def _model_type(config: dict, file: Path) -> str:
    """The checkpoint's family, one of :data:`FAMILIES`."""
    kind = config.get("model_type")
    if kind is None:
        raise ModelLoadError(f"{file}: field 'model_type' is missing. pass a checkpoint directory written by "
                             "save_pretrained (e.g. the output of `drywall-qa train`)")
    if kind not in FAMILIES:
        raise ModelLoadError(f"{file}: model_type {kind!r:.60} is not supported. use a clipseg or drywall-qa-lite "
                             "checkpoint")
    return kind


def load_backend(model: str | Path | None = None, device: str | torch.device | None = None,
                 engine: str = "torch") -> Backend:
    """Load a backend from a local checkpoint directory, an alias (``lite``, ``clipseg``) or a hub id.

    ``None`` loads the bundled drywall-qa-lite model. The checkpoint's post-processing settings are loaded into
    ``backend.settings`` (:meth:`PostprocessSettings.from_pretrained`). A damaged or hand-edited checkpoint
    (unreadable config.json, settings out of range, corrupt or non-finite weights, a smoke prediction that is not
    finite) raises :class:`ModelLoadError` naming the file and field (:mod:`drywall_qa.core.backends.checks`).
    ``engine`` (``auto``, ``torch``, ``onnxruntime``) runs inference (:meth:`Backend.use_engine`); the library's
    default is eager PyTorch, the reference, and the commands default to ``auto``.
    """
    source = ALIASES.get(str(model), model) if model is not None else BUNDLED_DIR
    path = Path(source)
    local = checks.is_directory(path)
    if local:
        config = checks.read_config(path)
        kind = _model_type(config, path / "config.json")
        settings = PostprocessSettings.from_pretrained(path, config)
        checks.check_weight_files(path)
    elif path.is_absolute() or str(source).startswith("."):
        raise ModelLoadError(f"{source}: checkpoint directory not found — pass an existing directory or a hub id")
    else:
        kind = "clipseg"  # a hub id: only CLIPSeg checkpoints are published there
    backend = backend_class(kind).from_pretrained(str(source), device=device)
    if not local:  # a hub checkpoint's settings are seen only once it is downloaded
        settings = PostprocessSettings.from_config(backend.model.config.to_dict(), str(source))
    strip_legacy_fields(backend.model.config)  # saving the model must not write stale settings
    backend.settings = settings
    checks.check_loaded(backend, str(source))
    backend.use_engine(engine)
    return backend


def new_backend(family: str, device: str | torch.device | None = None, **options) -> Backend:
    """A new, untrained model of ``family`` (one of :data:`FAMILIES`; ``options``: fields of its config), where the
    family builds new models (:meth:`Backend.new`)."""
    return backend_class(family).new(device, **options)


def backend_class(family: str) -> type[Backend]:
    """The backend class of a family in :data:`FAMILIES`."""
    module, name = FAMILIES[family]
    return getattr(importlib.import_module(module), name)
