"""The fine-tuning loop on Accelerate: one device or many, CPU or GPU, resumable after a crash.

CLIPSeg: CLIP stays frozen and its activations come from the on-disk feature cache, so a step costs only the
decoder. drywall-qa-lite: the whole image encoder trains on augmented images; its text encoder stays frozen.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from drywall_qa.backends import DEFAULT_CLIPSEG, Backend, Features, load_backend
from drywall_qa.data import DATASETS, CocoSplit, split_dir
from drywall_qa.errors import InputError
from drywall_qa.segmenter import Segmenter
from drywall_qa.training.augment import AugmentConfig
from drywall_qa.training.checkpoint import STATE_FILE, load_training_state, save_training_state
from drywall_qa.training.feature_cache import FeatureCache
from drywall_qa.training.history import append_history, plot_curves, truncate_history
from drywall_qa.training.losses import LOSSES
from drywall_qa.training.samples import EpochSampler, PromptedSegmentationSet, Source, balanced_weights, collate
from drywall_qa.training.validation import choose_thresholds, mean_dice, validate

logger = logging.getLogger(__name__)
BEST_DIR = "best"
ARGS_FILE = "training_args.json"


@dataclass
class TrainConfig:
    """Everything a run depends on; written to ``training_args.json`` beside the best checkpoint."""

    dataset: str
    data_root: Path
    output_dir: Path
    model: str = DEFAULT_CLIPSEG  # hub id, checkpoint dir, or "lite" for a new drywall-qa-lite model
    epochs: int = 50
    batch_size: int = 4
    lr: float = 1e-5
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    image_size: int = 352
    train_size: int | None = None  # side of the augmented training crops (default: the model input size)
    balance: bool = False  # give each dataset the same share of an epoch
    seed: int = 0
    loss: str = "bce"
    prompts: str = "canonical"
    negatives: float = 0.1
    limit: int | None = None
    samples_per_epoch: int | None = None
    augment: bool = True
    resume: bool = False
    overwrite: bool = False
    unfreeze_last: int = 0
    mixed_precision: str = "no"
    workers: int = 0
    cache_dir: Path | None = None
    lite_options: dict = field(default_factory=dict)

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
    if out.exists() and any(out.iterdir()) and not (config.resume or config.overwrite):
        raise InputError(str(out), "output directory already holds files (another run?)",
                         "pass --resume to continue that run, --overwrite to start afresh, or another --output-dir")


def _splits(config: TrainConfig, split: str) -> dict[str, tuple]:
    result = {}
    for name in config.datasets():
        loaded = CocoSplit(split_dir(config.data_root, name, split))
        if len(loaded) == 0:
            raise InputError(str(loaded.annotation_file), "the split lists no images", "check the export")
        result[name] = (DATASETS[name], loaded)
    return result


def build_backend(config: TrainConfig) -> Backend:
    """A fresh drywall-qa-lite model for ``lite``, else a checkpoint, with its frozen parts frozen."""
    if config.model == "lite":
        from drywall_qa.backends.lite import LiteBackend, LiteConfig, LiteModel

        return LiteBackend(LiteModel(LiteConfig(image_size=config.image_size, **config.lite_options)))
    backend = load_backend(config.model)
    if config.unfreeze_last:
        backend.unfreeze_last(config.unfreeze_last)
    return backend


class PromptCache:
    """Frozen prompt embeddings, computed once per distinct prompt."""

    def __init__(self, backend: Backend) -> None:
        self.backend, self.vectors = backend, {}

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        missing = sorted({p for p in prompts if p not in self.vectors})
        if missing:
            self.vectors.update(zip(missing, self.backend.encode_prompts(missing)))
        return torch.stack([self.vectors[p] for p in prompts])


def train(config: TrainConfig) -> dict:
    """Run (or resume) training; returns the last validation report. Best checkpoint: ``OUT/best``."""
    _check_paths(config)
    out = config.output_dir
    out.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    set_seed(config.seed)
    backend = build_backend(config)
    cached = backend.frozen_image_encoder and not config.unfreeze_last
    size = backend.input_size if cached else config.train_size or backend.input_size
    train_sources = [Source(spec, split) for spec, split in _splits(config, "train").values()]
    valid = _splits(config, "valid")
    dataset = PromptedSegmentationSet(train_sources, size, config.prompts, config.negatives, config.seed,
                                      AugmentConfig(enabled=config.augment and not cached), config.limit,
                                      images=not cached)
    sampler = EpochSampler(len(dataset), config.seed, config.samples_per_epoch,
                           balanced_weights(dataset) if config.balance else None)
    loader = DataLoader(dataset, config.batch_size, sampler=sampler, collate_fn=collate,
                        num_workers=config.workers, drop_last=len(sampler) > config.batch_size)
    step_module = TrainStep(backend)
    optimizer = torch.optim.AdamW(list(backend.trainable_parameters()), lr=config.lr,
                                  weight_decay=config.weight_decay)
    steps = config.epochs * math.ceil(len(loader) / accelerator.num_processes)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(config.warmup_fraction * steps), steps)
    start, best = 0, -1.0
    if config.resume and (out / STATE_FILE).exists():
        start, best = load_training_state(out, backend.model, optimizer, scheduler)
        truncate_history(out, start) if accelerator.is_main_process else None
        logger.info("resumed after epoch %d (best mean Dice %.4f)", start, best)
    step_module, optimizer, loader, scheduler = accelerator.prepare(step_module, optimizer, loader, scheduler)
    cache = FeatureCache(backend, config.cache_dir or out / "feature_cache") if cached else None
    prompt_cache, loss_fn = PromptCache(backend), LOSSES[config.loss]
    if accelerator.is_main_process:
        (out / ARGS_FILE).write_text(json.dumps(asdict(config), indent=2, default=str))
    report: dict = {}
    for epoch in range(start, config.epochs):
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        step_module.train()
        total, count = 0.0, 0
        for batch in tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not accelerator.is_main_process):
            inputs = cache.batch([dataset.image_file(i) for i in batch["index"].tolist()]) if cached else batch["image"]
            with accelerator.autocast():
                logits = step_module(inputs, prompt_cache(batch["prompt"]))
                loss = loss_fn(logits.float(), batch["target"].to(logits.device))
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            total, count = total + loss.item(), count + 1
        report = _end_of_epoch(accelerator, config, backend, valid, epoch, total / max(count, 1), optimizer,
                               scheduler, best)
        best = max(best, report.get("score", best))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _store_thresholds(config, valid)
    accelerator.end_training()
    return report


def _end_of_epoch(accelerator: Accelerator, config: TrainConfig, backend: Backend, valid: dict, epoch: int,
                  train_loss: float, optimizer, scheduler, best: float) -> dict:
    """Validate, log, keep the best checkpoint and write the resumable state (main process only)."""
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
        if report["score"] > best:
            backend.save_pretrained(out / BEST_DIR)
            (out / BEST_DIR / ARGS_FILE).write_text(json.dumps(asdict(config), indent=2, default=str))
        save_training_state(out, backend.model, optimizer, scheduler, epoch + 1, max(best, report["score"]))
        logger.info("epoch %d: train loss %.4f, mean valid Dice %.4f", epoch + 1, train_loss, report["score"])
    accelerator.wait_for_everyone()
    return report


def _store_thresholds(config: TrainConfig, valid: dict) -> None:
    """Pick per-prompt thresholds for the best checkpoint on the validation split and save them in its config."""
    best_dir = config.output_dir / BEST_DIR
    backend = load_backend(best_dir)
    thresholds = choose_thresholds(Segmenter(backend), valid, config.limit)
    backend.model.config.prompt_thresholds = thresholds
    backend.save_pretrained(best_dir)
    logger.info("per-prompt thresholds: %s", thresholds)
