"""A training run's settings (:class:`TrainConfig`, written to ``training_args.json``) and the checks of its data
root and output folder that run before anything is written."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from drywall_qa.core.backends import DEFAULT_CLIPSEG
from drywall_qa.core.errors import InputError
from drywall_qa.data.coco import split_dir
from drywall_qa.training.augment import AugmentConfig
from drywall_qa.training.checkpoint import STATE_FILE
from drywall_qa.training.history import CURVES_FILE, HISTORY_FILE

BEST_DIR = "best"
LAST_DIR = "last"
ARGS_FILE = "training_args.json"
#: files of a run that ``--overwrite`` removes (the feature cache stays: its entries are keyed by content)
RUN_FILES = (BEST_DIR, LAST_DIR, STATE_FILE, HISTORY_FILE, CURVES_FILE, ARGS_FILE)
#: settings a resumed run may change without changing its result
RESUME_MAY_CHANGE = {"data_root", "output_dir", "resume", "overwrite", "workers", "cache_dir", "mixed_precision"}
#: the ``--model`` value that trains a new drywall-qa-lite model (elsewhere "lite" names the bundled one)
NEW_LITE_MODEL = "lite"


@dataclass
class TrainConfig:
    """Everything a run depends on; written to ``training_args.json`` beside the best checkpoint."""

    dataset: str
    data_root: Path
    output_dir: Path
    model: str = DEFAULT_CLIPSEG  # hub id, checkpoint dir, or NEW_LITE_MODEL
    epochs: int = 50
    batch_size: int = 4
    lr: float = 1e-5
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    image_size: int | None = None  # another model input side, for the families that take one (drywall-qa-lite)
    train_size: int | None = None  # side of the augmented training crops (default: the model input size)
    balance: bool = False  # give each dataset the same share of an epoch
    seed: int = 0
    loss: str = "bce"
    prompts: str = "canonical"
    negatives: float = 0.1
    overlay: float = 0.0  # probability of darkening a thin mask of another dataset into a training image
    limit: int | None = None
    samples_per_epoch: int | None = None
    augment: bool = True
    crop_scale: tuple[float, float] = (AugmentConfig.min_scale, AugmentConfig.max_scale)  # crop side / image side
    log_crop_scale: bool = False  # draw the crop fraction log-uniformly (scale jitter)
    resume: bool = False
    overwrite: bool = False
    unfreeze_last: int = 0
    mixed_precision: str = "no"
    workers: int = 0
    cache_dir: Path | None = None
    lite_options: dict = field(default_factory=dict)  # LiteConfig fields of a new drywall-qa-lite model

    def __post_init__(self) -> None:
        """Refuse a learning rate or weight decay that would train to NaN, or not at all, without a word."""
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError("lr", f"{self.lr} is not a finite number above 0", "pass e.g. 1e-5")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise InputError("weight_decay", f"{self.weight_decay} is not a finite number of at least 0",
                             "pass e.g. 1e-4")

    def datasets(self) -> list[str]:
        return ["taping", "cracks"] if self.dataset == "both" else [self.dataset]

    def to_json(self) -> str:
        """The settings as ``training_args.json`` holds them (paths as strings)."""
        return json.dumps(asdict(self), indent=2, default=str)


def check_run(config: TrainConfig) -> None:
    """The data root holds every split the run reads, and the output folder is new, or resumed or overwritten on
    purpose with settings that keep the result."""
    if not config.data_root.is_dir():
        raise InputError(str(config.data_root), "data root not found",
                         "pass --data-root DIR holding one folder per dataset (e.g. ../shared/data)")
    for name in config.datasets():
        for split in ("train", "valid"):
            folder = split_dir(config.data_root, name, split)
            if not (folder / "_annotations.coco.json").is_file():
                raise InputError(str(folder), f"no _annotations.coco.json for dataset '{name}' ({split} split)",
                                 "check --data-root: it must hold the Roboflow COCO export folders")
    out = config.output_dir
    if out.exists() and not out.is_dir():
        raise InputError(str(out), "--output-dir is a file", "pass a folder")
    if out.exists() and any(out.iterdir()) and not (config.resume or config.overwrite):
        raise InputError(str(out), "output directory already holds files (another run?)",
                         "pass --resume to continue that run, --overwrite to start afresh, or another --output-dir")
    if config.resume:
        _check_resumable(config)


def _check_resumable(config: TrainConfig) -> None:
    """Refuse to resume a run with settings that would change its result."""
    path = config.output_dir / ARGS_FILE
    if not path.is_file():
        return
    try:
        stored = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(str(path), f"unreadable run settings ({err})", "start afresh with --overwrite") from err
    current = json.loads(config.to_json())
    changed = sorted(k for k in (stored.keys() & current.keys()) - RESUME_MAY_CHANGE if stored[k] != current[k])
    if changed:
        differences = ", ".join(f"{k}: {stored[k]!r} → {current[k]!r}" for k in changed)
        raise InputError(str(path), f"--resume with settings that differ from the run's ({differences})",
                         "resume with the original settings, or start afresh with --overwrite or another --output-dir")


def clear_run(out: Path) -> None:
    """Remove the files of an earlier run in ``out`` (``--overwrite``)."""
    for name in RUN_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
