"""The fine-tuning loop on Accelerate: one device or many, CPU or GPU, resumable after a crash.

CLIPSeg: CLIP stays frozen and its activations come from the on-disk feature cache, so a step costs only the
decoder. drywall-qa-lite: the image encoder trains on augmented images (a new model's EfficientNet-Lite0 starts
from ImageNet weights, its stem and first blocks frozen); its text encoder stays frozen.

:func:`train` reads top to bottom: check the run, build the model, the data and the optimiser, resume, log a run
summary, then per epoch train one epoch and end it (validate, checkpoint, save the resumable state).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.scheduler import AcceleratedScheduler
from accelerate.utils import InitProcessGroupKwargs, set_seed
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from drywall_qa.core.backends import Backend, Features, load_backend, new_backend
from drywall_qa.core.errors import InputError
from drywall_qa.core.postprocess import PostprocessSettings
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.data.coco import DATASETS, CocoSplit, DatasetSpec, split_dir
from drywall_qa.training.augment import AugmentConfig
from drywall_qa.training.checkpoint import STATE_FILE, load_training_state, replace_directory, save_training_state
from drywall_qa.training.config import (
    ARGS_FILE,
    BEST_DIR,
    LAST_DIR,
    NEW_LITE_MODEL,
    TrainConfig,
    check_run,
    clear_run,
)
from drywall_qa.training.feature_cache import FeatureCache
from drywall_qa.training.history import append_history, plot_curves, read_history, truncate_history
from drywall_qa.training.losses import LOSSES
from drywall_qa.training.samples import EpochSampler, PromptedSegmentationSet, Source, balanced_weights, collate
from drywall_qa.training.validation import best_thresholds, mean_dice, validate

logger = logging.getLogger(__name__)
#: how long the other processes wait while the main one validates
BARRIER_TIMEOUT = timedelta(hours=3)


class TrainStep(nn.Module):
    """The differentiable part of a step, as one module so DDP sees a single forward."""

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.model = backend.model  # registers the parameters

    def forward(self, inputs: torch.Tensor | Features, embeddings: torch.Tensor) -> torch.Tensor:
        features = self.backend.encode_image(self.backend.normalize(inputs)) if torch.is_tensor(inputs) else inputs
        return self.backend.decode(features, embeddings)


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


@dataclass
class TrainingData:
    """What a run trains and validates on."""

    dataset: PromptedSegmentationSet
    loader: DataLoader  # prepared by Accelerate: this process's batches
    valid: dict[str, tuple[DatasetSpec, CocoSplit]]
    cache: FeatureCache | None  # the frozen image encoder's features, read in place of images; None: images
    samples_per_epoch: int


def train(config: TrainConfig) -> dict:
    """Run (or resume) training; returns the last validation report. Best checkpoint: ``OUT/best``."""
    accelerator = _accelerator(config)
    _prepare_output_dir(accelerator, config)
    set_seed(config.seed)
    backend = build_backend(config)
    data = build_data(accelerator, config, backend)
    # the prepared scheduler advances once per process at every optimizer step (one step per process batch)
    total_steps = config.epochs * len(data.loader) * accelerator.num_processes
    optimizer, scheduler = build_optimizer(config, backend, total_steps)
    start, best = _start_or_resume(accelerator, config, backend, optimizer, scheduler)
    step, optimizer, scheduler = accelerator.prepare(TrainStep(backend), optimizer, scheduler)
    _log_run_summary(accelerator, config, backend, data, start)
    prompts = PromptCache(backend)
    report = (read_history(config.output_dir) or [{}])[-1]  # what a run that is complete already returns
    for epoch in range(start, config.epochs):
        train_loss = train_one_epoch(accelerator, config, data, step, prompts, optimizer, scheduler, epoch)
        report = end_of_epoch(accelerator, config, backend, data.valid, epoch, train_loss, optimizer, scheduler, best)
        best = max(best, report.get("score", best))
    accelerator.end_training()
    return report


def _accelerator(config: TrainConfig) -> Accelerator:
    """One device or many. Without CUDA, Accelerate runs each process of a ``torchrun`` launch as a separate
    single-process run unless told to use the CPU, so a multi-process launch then gets ``cpu=True`` (gloo)."""
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return Accelerator(cpu=launched and not torch.cuda.is_available(), mixed_precision=config.mixed_precision,
                       kwargs_handlers=[InitProcessGroupKwargs(timeout=BARRIER_TIMEOUT)])


def _prepare_output_dir(accelerator: Accelerator, config: TrainConfig) -> None:
    """Check the run (:func:`check_run`), then create the output folder, emptied of an earlier run's files where
    ``--overwrite`` asks."""
    check_run(config)
    accelerator.wait_for_everyone()  # every process has checked the folder before the main one writes to it
    config.output_dir.mkdir(parents=True, exist_ok=True)
    if accelerator.is_main_process and config.overwrite:
        clear_run(config.output_dir)


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


def build_data(accelerator: Accelerator, config: TrainConfig, backend: Backend) -> TrainingData:
    """The training samples (augmented crops, or cached features where the image encoder is frozen), their
    per-epoch draw and loader, and the validation splits."""
    cached = backend.frozen_image_encoder
    train_sources = [Source(spec, split) for spec, split in _splits(config, "train").values()]
    valid = _splits(config, "valid")
    if cached and config.overlay:
        raise InputError("--overlay", "this model trains on cached image features, so nothing can be drawn into "
                         "the images", "drop --overlay, or pass --unfreeze-last N to train on images")
    dataset = PromptedSegmentationSet(
        sources=train_sources, size=backend.input_size if cached else config.train_size or backend.input_size,
        prompts=config.prompts, negatives=config.negatives, seed=config.seed,
        augmentation=AugmentConfig(config.augment and not cached, *config.crop_scale, log_scale=config.log_crop_scale),
        limit=config.limit,
        images=not cached, overlay=config.overlay)
    sampler = EpochSampler(len(dataset), config.seed, config.samples_per_epoch,
                           balanced_weights(dataset) if config.balance else None)
    loader = DataLoader(dataset, config.batch_size, sampler=sampler, collate_fn=collate, num_workers=config.workers,
                        drop_last=len(sampler) > config.batch_size)
    cache = FeatureCache(backend, config.cache_dir or config.output_dir / "feature_cache") if cached else None
    return TrainingData(dataset, accelerator.prepare(loader), valid, cache, len(sampler))


def _splits(config: TrainConfig, split: str) -> dict[str, tuple[DatasetSpec, CocoSplit]]:
    result = {}
    for name in config.datasets():
        loaded = CocoSplit(split_dir(config.data_root, name, split))
        if len(loaded) == 0:
            raise InputError(str(loaded.annotation_file), "the split lists no images", "check the export")
        result[name] = (DATASETS[name], loaded)
    return result


def build_optimizer(config: TrainConfig, backend: Backend,
                    total_steps: int) -> tuple[torch.optim.Optimizer, LRScheduler]:
    """AdamW over the trainable parameters, and a cosine schedule with linear warm-up over ``total_steps``."""
    optimizer = torch.optim.AdamW(list(backend.trainable_parameters()), lr=config.lr,
                                  weight_decay=config.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(config.warmup_fraction * total_steps), total_steps)
    return optimizer, scheduler


def _start_or_resume(accelerator: Accelerator, config: TrainConfig, backend: Backend,
                     optimizer: torch.optim.Optimizer, scheduler: LRScheduler) -> tuple[int, float]:
    """The first epoch to run and the best score so far (from the saved state when resuming); the run's settings
    are written, and history records past the last saved state dropped, before the first step."""
    start, best = 0, -1.0
    out = config.output_dir
    if config.resume and (out / STATE_FILE).exists():
        start, best = load_training_state(out, backend.model, optimizer, scheduler)
        logger.info("resumed after epoch %d (best mean Dice %.4f)", start, best)
    if accelerator.is_main_process:
        truncate_history(out, start)  # records of an epoch after the last checkpoint are redone
        (out / ARGS_FILE).write_text(config.to_json())
    accelerator.wait_for_everyone()
    return start, best


def _log_run_summary(accelerator: Accelerator, config: TrainConfig, backend: Backend, data: TrainingData,
                     start: int) -> None:
    """What is about to run: model, examples, batches, steps and devices."""
    if not accelerator.is_main_process:
        return
    trainable = sum(p.numel() for p in backend.trainable_parameters())
    inputs = "cached image features" if data.cache else f"{data.dataset.size} px crops"
    steps = len(data.loader)
    summary = {
        "model": f"{config.model} ({backend.family}), {trainable:,} trainable parameters",
        "examples": f"{len(data.dataset)} training images ({', '.join(config.datasets())}), "
                    f"{data.samples_per_epoch} samples per epoch as {inputs}",
        "batch size": f"{config.batch_size} per process, {accelerator.num_processes} process(es) on "
                      f"{accelerator.device} (mixed precision: {config.mixed_precision})",
        "steps": f"{steps} per epoch, {steps * config.epochs} in all over {config.epochs} epoch(s)"
                 + (f", from epoch {start + 1}" if start else ""),
    }
    logger.info("training run\n%s", "\n".join(f"  {key}: {value}" for key, value in summary.items()))


def train_one_epoch(accelerator: Accelerator, config: TrainConfig, data: TrainingData, step: nn.Module,
                    prompts: PromptCache, optimizer: torch.optim.Optimizer, scheduler: AcceleratedScheduler,
                    epoch: int) -> float:
    """One pass over the epoch's draw; returns the mean training loss over every process's batches."""
    data.loader.set_epoch(epoch)  # the prepared loader passes it on to sampler and dataset (else it counts from 0)
    step.train()
    loss_fn = LOSSES[config.loss]
    totals = torch.zeros(2, dtype=torch.float64, device=accelerator.device)  # loss sum, batches
    for batch in tqdm(data.loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not accelerator.is_main_process):
        if data.cache:
            inputs = data.cache.batch([data.dataset.image_file(i) for i in batch["index"].tolist()])
        else:
            inputs = batch["image"]
        with accelerator.autocast():
            logits = step(inputs, prompts(batch["prompt"]))
            loss = loss_fn(logits.float(), batch["target"].to(logits.device))
        accelerator.backward(loss)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        totals += torch.tensor([loss.item(), 1.0], dtype=torch.float64, device=accelerator.device)
    loss_sum, batches = accelerator.reduce(totals, "sum").tolist()
    return loss_sum / max(batches, 1)


def end_of_epoch(accelerator: Accelerator, config: TrainConfig, backend: Backend,
                 valid: dict[str, tuple[DatasetSpec, CocoSplit]], epoch: int,
                 train_loss: float, optimizer: torch.optim.Optimizer, scheduler: AcceleratedScheduler,
                 best: float) -> dict:
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
        (folder / ARGS_FILE).write_text(config.to_json())

    replace_directory(config.output_dir / name, write)
