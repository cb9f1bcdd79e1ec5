"""The fine-tuning loop on Accelerate: one device or many, CPU or GPU, resumable after a crash.

CLIPSeg: CLIP stays frozen and its activations come from the on-disk feature cache, so a step costs only the
decoder. drywall-qa-lite: the image encoder trains on augmented images (a new model's EfficientNet-Lite0 starts
from ImageNet weights, its stem and first blocks frozen); its text encoder stays frozen.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import InitProcessGroupKwargs, set_seed
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from drywall_qa.backends import DEFAULT_CLIPSEG, Backend, Features, load_backend, new_backend
from drywall_qa.data import DATASETS, CocoSplit, split_dir
from drywall_qa.errors import InputError
from drywall_qa.postprocess import PostprocessSettings
from drywall_qa.segmenter import Segmenter
from drywall_qa.training.augment import AugmentConfig
from drywall_qa.training.checkpoint import STATE_FILE, load_training_state, replace_directory, save_training_state
from drywall_qa.training.feature_cache import FeatureCache
from drywall_qa.training.history import (
    CURVES_FILE,
    HISTORY_FILE,
    append_history,
    plot_curves,
    read_history,
    truncate_history,
)
from drywall_qa.training.losses import LOSSES
from drywall_qa.training.samples import EpochSampler, PromptedSegmentationSet, Source, balanced_weights, collate
from drywall_qa.training.validation import best_thresholds, mean_dice, validate

logger = logging.getLogger(__name__)
BEST_DIR = "best"
LAST_DIR = "last"
ARGS_FILE = "training_args.json"
#: the ``--model`` value that trains a new drywall-qa-lite model (elsewhere "lite" names the bundled one)
NEW_LITE_MODEL = "lite"
#: files of a run that ``--overwrite`` removes (the feature cache stays: its entries are keyed by content)
RUN_FILES = (BEST_DIR, LAST_DIR, STATE_FILE, HISTORY_FILE, CURVES_FILE, ARGS_FILE)
#: settings a resumed run may change without changing its result
RESUME_MAY_CHANGE = {"data_root", "output_dir", "resume", "overwrite", "workers", "cache_dir", "mixed_precision"}
#: how long the other processes wait while the main one validates
BARRIER_TIMEOUT = timedelta(hours=3)


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


class TrainStep(nn.Module):
    """The differentiable part of a step, as one module so DDP sees a single forward."""

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.model = backend.model  # registers the parameters

    def forward(self, inputs: torch.Tensor | Features, embeddings: torch.Tensor) -> torch.Tensor:
        features = self.backend.encode_image(self.backend.normalize(inputs)) if torch.is_tensor(inputs) else inputs
        return self.backend.decode(features, embeddings)


def _check_paths(config: TrainConfig) -> None:
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
    current = json.loads(json.dumps(asdict(config), default=str))
    changed = sorted(k for k in (stored.keys() & current.keys()) - RESUME_MAY_CHANGE if stored[k] != current[k])
    if changed:
        differences = ", ".join(f"{k}: {stored[k]!r} → {current[k]!r}" for k in changed)
        raise InputError(str(path), f"--resume with settings that differ from the run's ({differences})",
                         "resume with the original settings, or start afresh with --overwrite or another --output-dir")


def _clear_run(out: Path) -> None:
    """Remove the files of an earlier run in ``out`` (``--overwrite``)."""
    for name in RUN_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _splits(config: TrainConfig, split: str) -> dict[str, tuple]:
    result = {}
    for name in config.datasets():
        loaded = CocoSplit(split_dir(config.data_root, name, split))
        if len(loaded) == 0:
            raise InputError(str(loaded.annotation_file), "the split lists no images", "check the export")
        result[name] = (DATASETS[name], loaded)
    return result


def build_backend(config: TrainConfig) -> Backend:
    """A new drywall-qa-lite model for :data:`NEW_LITE_MODEL`, else a checkpoint, with its frozen parts frozen.

    Post-processing settings stored with a checkpoint belong to its old weights: training starts from empty ones, so
    validation scores plain pixels at 0.5 (and sweeps the threshold), and the checkpoints it writes carry only the
    thresholds it chose.
    """
    if config.model == NEW_LITE_MODEL:
        backend = new_backend("drywall-qa-lite", **config.lite_options)
    else:
        backend = load_backend(config.model)
    if config.image_size not in (None, backend.input_size):
        backend.resize_input(config.image_size)
    if config.unfreeze_last:
        backend.unfreeze_last(config.unfreeze_last)
    backend.settings = PostprocessSettings()
    return backend


class PromptCache:
    """Frozen prompt embeddings, computed once per distinct prompt and one prompt at a time: batching with other
    prompts pads the tokens, which changes the result in the last bits, so a resumed run would drift."""

    def __init__(self, backend: Backend) -> None:
        self.backend, self.vectors = backend, {}

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        for prompt in prompts:
            if prompt not in self.vectors:
                self.vectors[prompt] = self.backend.encode_prompts([prompt])[0]
        return torch.stack([self.vectors[p] for p in prompts])


def _accelerator(config: TrainConfig) -> Accelerator:
    """One device or many. Without CUDA, Accelerate runs each process of a ``torchrun`` launch as a separate
    single-process run unless told to use the CPU, so a multi-process launch then gets ``cpu=True`` (gloo)."""
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return Accelerator(cpu=launched and not torch.cuda.is_available(), mixed_precision=config.mixed_precision,
                       kwargs_handlers=[InitProcessGroupKwargs(timeout=BARRIER_TIMEOUT)])


def train(config: TrainConfig) -> dict:
    """Run (or resume) training; returns the last validation report. Best checkpoint: ``OUT/best``."""
    accelerator = _accelerator(config)
    _check_paths(config)
    accelerator.wait_for_everyone()  # every process has checked the folder before the main one writes to it
    out = config.output_dir
    out.mkdir(parents=True, exist_ok=True)
    if accelerator.is_main_process and config.overwrite:
        _clear_run(out)
    set_seed(config.seed)
    backend = build_backend(config)
    cached = backend.frozen_image_encoder
    size = backend.input_size if cached else config.train_size or backend.input_size
    train_sources = [Source(spec, split) for spec, split in _splits(config, "train").values()]
    valid = _splits(config, "valid")
    if cached and config.overlay:
        raise InputError("--overlay", "this model trains on cached image features, so nothing can be drawn into "
                         "the images", "drop --overlay, or pass --unfreeze-last N to train on images")
    dataset = PromptedSegmentationSet(train_sources, size, config.prompts, config.negatives, config.seed,
                                      AugmentConfig(config.augment and not cached, *config.crop_scale), config.limit,
                                      images=not cached, overlay=config.overlay)
    sampler = EpochSampler(len(dataset), config.seed, config.samples_per_epoch,
                           balanced_weights(dataset) if config.balance else None)
    loader = accelerator.prepare(DataLoader(dataset, config.batch_size, sampler=sampler, collate_fn=collate,
                                            num_workers=config.workers, drop_last=len(sampler) > config.batch_size))
    optimizer = torch.optim.AdamW(list(backend.trainable_parameters()), lr=config.lr,
                                  weight_decay=config.weight_decay)
    # the prepared scheduler advances once per process at every optimizer step (one step per process batch)
    steps = config.epochs * len(loader) * accelerator.num_processes
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(config.warmup_fraction * steps), steps)
    start, best = 0, -1.0
    if config.resume and (out / STATE_FILE).exists():
        start, best = load_training_state(out, backend.model, optimizer, scheduler)
        logger.info("resumed after epoch %d (best mean Dice %.4f)", start, best)
    if accelerator.is_main_process:
        truncate_history(out, start)  # records of an epoch after the last checkpoint are redone
        (out / ARGS_FILE).write_text(json.dumps(asdict(config), indent=2, default=str))
    accelerator.wait_for_everyone()
    step_module, optimizer, scheduler = accelerator.prepare(TrainStep(backend), optimizer, scheduler)
    cache = FeatureCache(backend, config.cache_dir or out / "feature_cache") if cached else None
    prompt_cache, loss_fn = PromptCache(backend), LOSSES[config.loss]
    report = (read_history(out) or [{}])[-1]  # what a run that is complete already returns
    for epoch in range(start, config.epochs):
        loader.set_epoch(epoch)  # the prepared loader passes it on to sampler and dataset (else it counts from 0)
        step_module.train()
        totals = torch.zeros(2, dtype=torch.float64, device=accelerator.device)  # loss sum, batches
        for batch in tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not accelerator.is_main_process):
            inputs = cache.batch([dataset.image_file(i) for i in batch["index"].tolist()]) if cached else batch["image"]
            with accelerator.autocast():
                logits = step_module(inputs, prompt_cache(batch["prompt"]))
                loss = loss_fn(logits.float(), batch["target"].to(logits.device))
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            totals += torch.tensor([loss.item(), 1.0], dtype=torch.float64, device=accelerator.device)
        loss_sum, batches = accelerator.reduce(totals, "sum").tolist()
        report = _end_of_epoch(accelerator, config, backend, valid, epoch, loss_sum / max(batches, 1), scheduler,
                               optimizer, best)
        best = max(best, report.get("score", best))
    accelerator.end_training()
    return report


def _end_of_epoch(accelerator: Accelerator, config: TrainConfig, backend: Backend, valid: dict, epoch: int,
                  train_loss: float, scheduler, optimizer, best: float) -> dict:
    """Validate, log, keep the best checkpoint and the last one and write the resumable state (main process only).

    ``OUT/last`` holds the latest epoch's weights: a model chosen without looking at validation scores, so those
    scores stay honest. Order matters for crash safety: the history record and the checkpoints come before the
    training state, so a kill in between only makes the resumed run redo (and rewrite) this epoch.
    """
    accelerator.wait_for_everyone()
    report: dict = {}
    if accelerator.is_main_process:
        out = config.output_dir
        backend.model.eval()
        report = {"epoch": epoch, "train_loss": train_loss, "lr": scheduler.get_last_lr()[0],
                  "valid": validate(Segmenter(backend), valid, config.limit)}
        report["score"] = mean_dice(report["valid"])
        append_history(out, report)
        plot_curves(out)
        thresholds = best_thresholds(report["valid"])
        if report["score"] > best:
            _save_checkpoint(backend, config, thresholds, BEST_DIR)
        _save_checkpoint(backend, config, thresholds, LAST_DIR)
        save_training_state(out, backend.model, optimizer, scheduler, epoch + 1, max(best, report["score"]))
        logger.info("epoch %d: train loss %.4f, mean valid Dice %.4f", epoch + 1, train_loss, report["score"])
    accelerator.wait_for_everyone()
    return report


def _save_checkpoint(backend: Backend, config: TrainConfig, thresholds: dict[str, float], name: str) -> None:
    """``OUT/name``: checkpoint (safetensors + processor), settings holding only its per-prompt thresholds
    (``postprocess.json``) and ``training_args.json``, swapped in whole."""
    def write(folder: Path) -> None:
        backend.save_pretrained(folder)
        PostprocessSettings(thresholds=thresholds).save_pretrained(folder)
        (folder / ARGS_FILE).write_text(json.dumps(asdict(config), indent=2, default=str))

    replace_directory(config.output_dir / name, write)
