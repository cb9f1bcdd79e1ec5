"""Model selection: the bundled model, CLIPSeg from the hub or a local checkpoint folder, loaded once and shared.

Sessions share loaded models through :class:`ModelCache`. Every model's work goes through one
:class:`~drywall_qa.serving.service.ModelService`: units of model work take turns (a
:class:`~drywall_qa.core.segmenter.Segmenter`'s prompt-embedding cache is not made for concurrent use, and the CPU is
shared), fairly between clients and interactive requests first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from drywall_qa.app.messages import escape_md
from drywall_qa.core.backends import BUNDLED_DIR, BUNDLED_NAME, DEFAULT_CLIPSEG
from drywall_qa.core.backends.checks import reason
from drywall_qa.core.backends.feature_cache import FeatureCache
from drywall_qa.core.errors import InputError, ModelLoadError
from drywall_qa.core.imaging import path_problem
from drywall_qa.core.result import Result
from drywall_qa.core.segmenter import Condition, Segmenter, truncation_note
from drywall_qa.core.views import Progress
from drywall_qa.serving.service import ModelService

#: dropdown value meaning "use the folder typed in the text box"
FOLDER = "folder"
CHOICES: list[tuple[str, str]] = [
    (BUNDLED_NAME, "lite"),
    (f"CLIPSeg · {DEFAULT_CLIPSEG} (Hugging Face hub)", "clipseg"),
    ("Local checkpoint folder…", FOLDER),
]


def startup_choice(model: str | None) -> str | None:
    """The model box's value for ``--model``: an alias as given, the bundled folder as ``lite``, another folder
    as its absolute path."""
    if model is None or model in {"lite", "clipseg"}:
        return model
    folder = Path(model).expanduser().resolve()
    return "lite" if folder == BUNDLED_DIR else str(folder)


def checkpoint_folders(models_dirs: Sequence[Path]) -> list[Path]:
    """Checkpoint folders (holding a ``config.json``) in each models folder, itself or up to two levels below it
    (``runs/lite/best``), resolved."""
    found: list[Path] = []
    for root in models_dirs:
        for pattern in ("config.json", "*/config.json", "*/*/config.json"):
            found += [config.parent.resolve() for config in sorted(Path(root).glob(pattern))]
    return list(dict.fromkeys(found))


def short_name(folder: Path) -> str:
    """A checkpoint folder as shown to users: its name, with its parent for ``best`` / ``last`` (``lite/best``) —
    never the server's full path."""
    return "/".join(folder.parts[-2:]) if folder.name in {"best", "last"} else folder.name


def model_choices(startup: str | None, models_dirs: Sequence[Path] = ()) -> list[tuple[str, str]]:
    """The dropdown's choices: the ``--model`` folder given at startup when it is not an alias, the aliases, the
    checkpoint folders found in ``models_dirs``, and typing a folder of those."""
    choices = list(CHOICES)
    known = {value for _, value in choices}
    if startup is not None and startup not in known:
        choices.insert(0, (f"Local · {short_name(Path(startup))}", startup))
    found = [(f"Local · {short_name(folder)}", str(folder)) for folder in checkpoint_folders(models_dirs)
             if str(folder) != startup]
    return [*choices[:-1], *found, choices[-1]]


def model_key(choice: str | None, folder: str | None, models_dirs: Sequence[Path] = ()) -> str:
    """The cache key of a dropdown choice: an alias, or an absolute checkpoint folder. A typed folder must lie inside
    one of ``models_dirs`` (symlinks resolved), so a remote client cannot load, or probe for, other server folders."""
    if choice == FOLDER:
        if not folder or not folder.strip():
            raise InputError("checkpoint folder", "no folder given",
                             "type the folder written by `drywall-qa train` or save_pretrained")
        problem = path_problem(folder.strip())
        if problem:
            raise InputError("checkpoint folder", problem, "type the folder written by `drywall-qa train`")
        path = Path(folder.strip()).expanduser().resolve()
        if not any(path.is_relative_to(Path(root).resolve()) for root in models_dirs):
            offered = ", ".join(str(root) for root in models_dirs) or "none"
            raise InputError("checkpoint folder", f"is outside the model folders this server offers ({offered})",
                             "put the checkpoint in one of them (start the app with --models-dir DIR) or start "
                             "the app with --model DIR")
        return str(path)
    if not choice:
        raise InputError("model", "no model chosen", "pick one in the model box")
    return choice


class SharedModel:
    """A loaded :class:`Segmenter` shared by every session; its model work is scheduled by ``service``."""

    def __init__(self, key: str, segmenter: Segmenter, service: ModelService | None = None) -> None:
        self.key, self.segmenter = key, segmenter
        self.service = service or ModelService()

    @property
    def name(self) -> str:
        """The model's name for status lines: a local checkpoint by its short name, not the server's path."""
        name = self.segmenter.name
        return short_name(Path(name)) if Path(name).is_absolute() else name

    def model_size(self) -> dict[str, float]:
        return self.segmenter.model_size()

    @property
    def supports_visual_prompts(self) -> bool:
        """Whether example images can condition this model (the CLIPSeg backend)."""
        return self.segmenter.supports_visual_prompts

    @property
    def family(self) -> str:
        return self.segmenter.backend.family

    def predict(self, image: np.ndarray, prompts: Sequence[Condition], threshold: float | None = None,
                tiling: str = "auto", progress: Progress | None = None,
                features: FeatureCache | None = None) -> Result:
        return self.service.predict(self.segmenter, image, prompts, threshold, tiling, progress, features)

    def prompt_notes(self, prompts: Sequence[str]) -> list[str]:
        """A note for each text prompt longer than the model's token limit (it reads only the start). Under the
        model: a fast tokenizer must not be used by two threads at once."""
        with self.service.scheduler.turn():
            truncated = self.segmenter.truncated(prompts)
        limit = self.segmenter.backend.max_prompt_tokens
        return [truncation_note(prompt, limit) for prompt, cut in zip(prompts, truncated) if cut]

    def describe(self) -> str:
        """One Markdown line: name, family, size, device and the engine that runs it."""
        size = self.model_size()
        backend = self.segmenter.backend
        return (f"**{escape_md(backend.family)}** · {escape_md(self.name)} · "
                f"{size['parameters'] / 1e6:.2f} M parameters · {size['megabytes']:.1f} MB · {backend.device} · "
                f"engine {backend.engine}")


class ModelCache:
    """Loads models on first use and keeps the ``capacity`` most recently used, plus the :attr:`pinned` ones. Failed
    loads are not cached, so a fixed folder can be retried; two sessions asking for the same model wait for one
    load."""

    def __init__(self, device: str | None = None, capacity: int = 2,
                 loader: Callable[[str, str | None], Segmenter] | None = None, engine: str = "torch",
                 service: ModelService | None = None) -> None:
        """``loader`` (key, device) → Segmenter; the default is :meth:`Segmenter.load` with ``engine``. ``service``
        runs every model's predictions (one scheduler for the whole server)."""
        self.device, self.capacity = device, capacity
        self.service = service or ModelService()
        self._loader = loader or partial(Segmenter.load, engine=engine)
        #: keys never evicted (the startup model: other sessions' choices must not unload it for everyone)
        self.pinned: set[str] = set()
        self._models: OrderedDict[str, SharedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def get(self, key: str | None) -> SharedModel:
        """The model for ``key`` (see :func:`model_key`), loading it if needed; :class:`ModelLoadError` when it cannot
        be loaded."""
        if not key:
            raise ModelLoadError("no model is loaded — choose a model in the model box at the top and press Load")
        with self._lock:
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._models:
                    self._models.move_to_end(key)
                    return self._models[key]
            try:
                model = SharedModel(key, self._load(key), self.service)
            except BaseException:
                with self._lock:                      # a failed key keeps no lock behind (keys come from clients)
                    self._loading.pop(key, None)
                raise
            with self._lock:
                self._models[key] = model
                evictable = [k for k in self._models if k not in self.pinned and k != key]
                for old in evictable[:max(0, len(self._models) - self.capacity)]:
                    del self._models[old]
            return model

    def _load(self, key: str) -> Segmenter:
        try:
            return self._loader(key, self.device)
        except ModelLoadError as err:
            if key in {"lite", "default"} and not BUNDLED_DIR.is_dir():
                raise ModelLoadError(f"the bundled model is not installed ({BUNDLED_DIR} is missing) — start the app "
                                     "with --model DIR (a checkpoint folder from `drywall-qa train`) or choose "
                                     "another model") from err
            raise
        except (OSError, ValueError, RuntimeError) as err:  # transformers' and torch's own (e.g. out of memory)
            raise ModelLoadError(f"{key}: could not load the model ({reason(err)})") from err
