"""The fine-tuning loop on tiny random models and a tiny generated data root (both datasets, Roboflow layout):
resume equivalence, reproducibility, the frozen-feature cache, negative prompts, clear errors, and one end-to-end
run on the real data when it is present. Multi-process tests (SIGKILL, torchrun) are in test_training_processes.py.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate.state import AcceleratorState
from PIL import Image
from safetensors.torch import load_file

import drywall_qa.training.loop as loop
from drywall_qa.cli.train import main
from drywall_qa.core.backends import load_backend
from drywall_qa.core.postprocess import LEGACY_FIELDS, SETTINGS_FILE, PostprocessSettings
from drywall_qa.data.coco import DATASETS, CocoSplit, split_dir
from drywall_qa.training.augment import AugmentConfig
from drywall_qa.training.feature_cache import FeatureCache
from drywall_qa.training.history import read_history
from drywall_qa.training.loop import TrainConfig, TrainStep, train
from drywall_qa.training.losses import LOSSES
from drywall_qa.training.samples import (
    DISTRACTOR_PROMPTS,
    EpochSampler,
    PromptedSegmentationSet,
    Source,
    balanced_weights,
    can_overlay,
)
from drywall_qa.training.validation import UNRELATED_PROMPTS
from tests.helpers import make_data_root, state_of, tiny_config, write_training_split

PROMPTS = [p for spec in DATASETS.values() for p in spec.prompts]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data_root(tmp_path_factory.mktemp("data"))


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


class Interrupted(Exception):
    """Stands in for a crash right after an epoch's checkpoint."""


def interrupt_after_epochs(monkeypatch: pytest.MonkeyPatch, epochs: int) -> None:
    real = loop.save_training_state

    def save_then_crash(directory, model, optimizer, scheduler, epoch, best):
        real(directory, model, optimizer, scheduler, epoch, best)
        if epoch == epochs:
            raise Interrupted

    monkeypatch.setattr(loop, "save_training_state", save_then_crash)


# --- resume and reproducibility -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lite_run(tiny_lite_dir: Path, data: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainConfig:
    """One uninterrupted 2-epoch run of the tiny lite model (shared by several tests)."""
    config = tiny_config(tiny_lite_dir, data, tmp_path_factory.mktemp("lite") / "run", train_size=32)
    train(config)
    return config


@pytest.fixture(scope="module")
def clipseg_run(tiny_clipseg_dir: Path, data: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainConfig:
    """One uninterrupted 2-epoch run of the tiny CLIPSeg decoder on cached features."""
    config = tiny_config(tiny_clipseg_dir, data, tmp_path_factory.mktemp("clipseg") / "run")
    train(config)
    return config


@pytest.mark.parametrize("run", ["lite_run", "clipseg_run"])
def test_resume_after_interruption_matches_uninterrupted_run(run: str, request: pytest.FixtureRequest,
                                                            monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    reference: TrainConfig = request.getfixturevalue(run)
    config = replace(reference, output_dir=tmp_path / "run")
    interrupt_after_epochs(monkeypatch, 1)
    with pytest.raises(Interrupted):
        train(config)
    assert len(read_history(config.output_dir)) == 1
    monkeypatch.undo()
    train(replace(config, resume=True))
    assert read_history(config.output_dir) == read_history(reference.output_dir)
    resumed, uninterrupted = state_of(config.output_dir), state_of(reference.output_dir)
    assert resumed["epoch"] == uninterrupted["epoch"] == 2
    assert_same_weights(resumed["model"], uninterrupted["model"])
    for name in ("best", "last"):
        assert_same_weights(load_file(config.output_dir / name / "model.safetensors"),
                            load_file(reference.output_dir / name / "model.safetensors"))


def test_last_checkpoint_holds_the_final_weights(lite_run: TrainConfig) -> None:
    last = lite_run.output_dir / "last"
    assert_same_weights(load_file(last / "model.safetensors"), state_of(lite_run.output_dir)["model"])
    thresholds = json.loads((last / SETTINGS_FILE).read_text())["thresholds"]
    assert set(thresholds) == set(PROMPTS)


@pytest.mark.parametrize("stored_in", ["postprocess.json", "config.json"])
def test_fine_tuning_a_calibrated_checkpoint_starts_from_empty_settings(tiny_lite_dir: Path, data: Path,
                                                                        tmp_path: Path, stored_in: str) -> None:
    """The old weights' boxes, thresholds and presence calibration neither shape validation nor reach OUT/best and
    OUT/last (they did when they lived in config.json and training reset only the thresholds)."""
    model = shutil.copytree(tiny_lite_dir, tmp_path / "calibrated")
    stale = PostprocessSettings({p: 0.9 for p in PROMPTS}, {p: "boxes" for p in PROMPTS},
                                {p: (2.0, 1.0) for p in PROMPTS})
    if stored_in == "postprocess.json":
        stale.save_pretrained(model)
    else:
        config = json.loads((model / "config.json").read_text())
        legacy = {"prompt_thresholds": stale.thresholds, "prompt_shapes": stale.shapes,
                  "presence_calibration": stale.presence}
        (model / "config.json").write_text(json.dumps({**config, **legacy}))
    assert load_backend(model).settings == stale
    config = tiny_config(model, data, tmp_path / "run", epochs=1, train_size=32)
    train(config)
    record, = read_history(config.output_dir)
    scored = [m for block in record["valid"].values() for m in block["prompts"].values()]
    assert {(m["shape"], m["threshold"]) for m in scored} == {("pixels", 0.5)}
    chosen = {p: t for block in record["valid"].values() for p, t in block["thresholds"].items()}
    for name in ("best", "last"):
        folder = config.output_dir / name
        assert json.loads((folder / SETTINGS_FILE).read_text()) == PostprocessSettings(thresholds=chosen).to_dict()
        assert not set(LEGACY_FIELDS.values()) & set(json.loads((folder / "config.json").read_text()))
        assert load_backend(folder).settings == PostprocessSettings(thresholds=chosen)


def test_same_seed_same_metrics_other_seed_differs(lite_run: TrainConfig, tmp_path: Path) -> None:
    again = replace(lite_run, output_dir=tmp_path / "again")
    train(again)
    assert read_history(again.output_dir) == read_history(lite_run.output_dir)
    other = replace(lite_run, output_dir=tmp_path / "other", seed=1, epochs=1)
    train(other)
    first, changed = read_history(lite_run.output_dir)[0], read_history(other.output_dir)[0]
    assert first["train_loss"] != changed["train_loss"]
    assert first["valid"] != changed["valid"]


@pytest.fixture
def fresh_precision() -> Iterator[None]:
    """Accelerate keeps one precision per process; a run in another one needs its state reset, before and after."""
    AcceleratorState._reset_state()
    yield
    AcceleratorState._reset_state()


@pytest.mark.usefixtures("fresh_precision")
def test_bf16_mixed_precision_trains_a_comparable_float32_model(lite_run: TrainConfig, tmp_path: Path) -> None:
    """``--mixed-precision bf16`` (autocast on this CPU as on a GPU) really runs in reduced precision, yet each
    epoch's loss stays close to full precision's and the checkpoint keeps float32 weights."""
    mixed = replace(lite_run, output_dir=tmp_path / "bf16", mixed_precision="bf16")
    train(mixed)
    for full, reduced in zip(read_history(lite_run.output_dir), read_history(mixed.output_dir), strict=True):
        assert reduced["train_loss"] != full["train_loss"]
        assert reduced["train_loss"] == pytest.approx(full["train_loss"], rel=0.05)
    weights = load_file(mixed.output_dir / "last" / "model.safetensors")
    assert {w.dtype for w in weights.values() if w.is_floating_point()} == {torch.float32}


def test_training_changes_the_trainable_weights_only(clipseg_run: TrainConfig, tiny_clipseg_dir: Path) -> None:
    start = load_file(tiny_clipseg_dir / "model.safetensors")
    trained = state_of(clipseg_run.output_dir)["model"]
    changed = {name for name in start if not torch.equal(start[name], trained[name])}
    assert changed and all(name.startswith("decoder.") for name in changed)
    assert any(name.startswith("decoder.transposed_convolution") for name in changed)


def test_unfreeze_last_trains_that_vision_layer_without_the_cache(tiny_clipseg_dir: Path, data: Path,
                                                                  tmp_path: Path) -> None:
    config = tiny_config(tiny_clipseg_dir, data, tmp_path / "run", epochs=1, unfreeze_last=1, train_size=32)
    train(config)
    start = load_file(tiny_clipseg_dir / "model.safetensors")
    trained = state_of(config.output_dir)["model"]
    changed = {name for name in start if not torch.equal(start[name], trained[name])}
    vision_changed = {name.split(".")[4] for name in changed if name.startswith("clip.vision_model.encoder.layers.")}
    assert vision_changed == {"2"}  # the last extract layer of the tiny model; layer 3 is never run
    assert not (config.output_dir / "feature_cache").exists()


# --- frozen-feature cache -------------------------------------------------------------------------------------------

def image_files(data: Path, dataset: str = "cracks") -> list[Path]:
    split = CocoSplit(split_dir(data, dataset, "train"))
    return [split.image_path(i) for i in range(len(split))]


def count_encoder_passes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every image the cache sends through the encoder."""
    passes: list[str] = []
    real = FeatureCache._compute

    def counted(self, key, image_file):
        passes.append(str(image_file))
        return real(self, key, image_file)

    monkeypatch.setattr(FeatureCache, "_compute", counted)
    return passes


def test_features_computed_once_across_epochs_and_restarts(tiny_clipseg_dir: Path, data: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    config = tiny_config(tiny_clipseg_dir, data, tmp_path / "run", limit=2, batch_size=2, epochs=3)
    passes = count_encoder_passes(monkeypatch)
    interrupt_after_epochs(monkeypatch, 2)
    with pytest.raises(Interrupted):
        train(config)
    train_images = {str(f) for name in ("taping", "cracks") for f in image_files(data, name)[:2]}
    assert sorted(passes) == sorted(train_images)  # each once, over 2 epochs
    passes.clear()
    train(replace(config, resume=True))
    assert passes == []  # the restarted process reads them from disk
    cached = list((config.output_dir / "feature_cache").iterdir())
    assert len(cached) == len(train_images) and all(p.suffix == ".safetensors" for p in cached)


@pytest.fixture()
def clipseg(tiny_clipseg_dir: Path):
    return load_backend(tiny_clipseg_dir)


def test_cache_key_follows_content_encoder_weights_and_size(clipseg, data: Path, tmp_path: Path) -> None:
    image = tmp_path / "image.png"
    image.write_bytes(image_files(data)[0].read_bytes())
    cache = FeatureCache(clipseg, tmp_path / "cache")
    key = cache.key(image)
    assert FeatureCache(clipseg, tmp_path / "cache").key(image) == key
    before = cache.get(image)

    decoder_weight = clipseg.model.decoder.film_mul.weight
    with torch.no_grad():
        decoder_weight += 1  # the decoder is not part of the image features
    unused_layer = clipseg.model.clip.vision_model.encoder.layers[3].mlp.fc1.weight
    with torch.no_grad():
        unused_layer += 1  # after the last extract layer: never run
    assert FeatureCache(clipseg, tmp_path / "cache").key(image) == key

    used_layer = clipseg.model.clip.vision_model.encoder.layers[1].mlp.fc1.weight
    with torch.no_grad():
        used_layer.mul_(-1)
    changed = FeatureCache(clipseg, tmp_path / "cache")
    assert changed.key(image) != key
    after = changed.get(image)
    assert changed.computed == 1 and not torch.equal(after[0], before[0])

    old_content = changed.key(image)
    image.write_bytes(image_files(data)[1].read_bytes())  # same path, other content
    assert changed.key(image) != old_content

    clipseg.processor.image_processor.size = {"height": 32, "width": 32}
    assert FeatureCache(clipseg, tmp_path / "cache").key(image) != changed.key(image)


def test_cache_writes_atomically_and_recomputes_damaged_entries(clipseg, data: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import drywall_qa.core.atomic as atomic

    image, directory = image_files(data)[0], tmp_path / "cache"

    def crash_before_rename(source, target):
        assert Path(source).stat().st_size > 0           # the temp file was written in full
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", crash_before_rename)
    with pytest.raises(KeyboardInterrupt):
        FeatureCache(clipseg, directory).get(image)
    assert list(directory.iterdir()) == []
    monkeypatch.undo()

    expected = FeatureCache(clipseg, directory).get(image)
    (entry,) = directory.iterdir()
    entry.write_bytes(entry.read_bytes()[:100])  # e.g. a power cut after the rename
    fresh = FeatureCache(clipseg, directory)
    features = fresh.get(image)
    assert fresh.computed == 1
    assert all(torch.equal(a, b) for a, b in zip(features, expected))
    assert FeatureCache(clipseg, directory).get(image) is not None and len(list(directory.iterdir())) == 1


@pytest.mark.parametrize("dtype, tolerance, grad_tolerance", [(torch.float32, 1e-5, 1e-4), (torch.float16, 1e-3, 5e-2)])
def test_cached_step_loss_equals_full_forward_loss(clipseg, data: Path, tmp_path: Path, dtype: torch.dtype,
                                                   tolerance: float, grad_tolerance: float) -> None:
    """Same loss and decoder gradients as the stock forward (float16 features: close, not exact)."""
    files = [image_files(data, "cracks")[0], image_files(data, "taping")[0]]
    prompts = ["segment crack", "segment taping area"]
    target = torch.zeros(2, clipseg.input_size, clipseg.input_size)
    target[:, 10:30, 20:25] = 1
    loss_fn = LOSSES["bce+dice"]

    inputs = clipseg.processor(text=prompts, images=[np.asarray(Image.open(f).convert("RGB")) for f in files],
                               padding=True, return_tensors="pt")
    naive = loss_fn(clipseg.model(**inputs).logits, target)
    naive.backward()
    naive_grads = torch.cat([p.grad.flatten() for p in clipseg.trainable_parameters()])
    clipseg.model.zero_grad(set_to_none=True)

    features = FeatureCache(clipseg, tmp_path, dtype=dtype).batch([str(f) for f in files])
    embeddings = torch.cat([clipseg.encode_prompts([p]) for p in prompts])
    cached = loss_fn(TrainStep(clipseg)(features, embeddings), target)
    cached.backward()
    assert abs(cached.item() - naive.item()) <= tolerance * naive.item()
    cached_grads = torch.cat([p.grad.flatten() for p in clipseg.trainable_parameters()])
    assert (cached_grads - naive_grads).norm() <= grad_tolerance * naive_grads.norm()


# --- negative prompts -----------------------------------------------------------------------------------------------

def sources(data: Path, names: tuple[str, ...] = ("taping", "cracks")) -> list[Source]:
    return [Source(DATASETS[n], CocoSplit(split_dir(data, n, "train"))) for n in names]


@pytest.mark.parametrize("images", [True, False], ids=["augmented", "cached"])
def test_negatives_have_empty_targets_and_foreign_prompts(data: Path, images: bool) -> None:
    dataset = PromptedSegmentationSet(sources(data), 32, prompts="all", negatives=1.0, images=images)
    seen = set()
    for epoch in range(4):
        dataset.set_epoch(epoch)
        for item in range(len(dataset)):
            sample = dataset[item]
            own = dataset.sources[dataset.index[item][0]].spec
            other = next(s.spec for s in dataset.sources if s.spec is not own)
            assert sample["negative"] and sample["target"].max() == 0
            assert sample["prompt"] in other.prompts + DISTRACTOR_PROMPTS
            seen.add("other" if sample["prompt"] in other.prompts else "distractor")
    assert seen == {"other", "distractor"}


def test_without_negatives_targets_and_prompts_are_the_images_own(data: Path) -> None:
    dataset = PromptedSegmentationSet(sources(data), 32, prompts="canonical", negatives=0.0, images=False)
    for item in range(len(dataset)):
        sample = dataset[item]
        assert not sample["negative"] and sample["target"].max() > 0
        assert sample["prompt"] == dataset.sources[dataset.index[item][0]].spec.canonical


def test_single_dataset_negatives_use_distractors(data: Path) -> None:
    dataset = PromptedSegmentationSet(sources(data, ("cracks",)), 32, negatives=1.0, images=False)
    assert {dataset[i]["prompt"] for i in range(len(dataset))} <= set(DISTRACTOR_PROMPTS)


# --- overlays -------------------------------------------------------------------------------------------------------

def test_overlay_draws_a_crack_into_taping_images_and_crack_prompts_then_target_it(data: Path) -> None:
    """Augmentation off, so the overlay is the only difference from the same dataset without overlays."""
    plain, overlaid = (PromptedSegmentationSet(sources(data), 32, prompts="all", negatives=0.6, overlay=p,
                                               augmentation=AugmentConfig(enabled=False)) for p in (0.0, 1.0))
    targeted = 0
    for epoch in range(6):
        plain.set_epoch(epoch)
        overlaid.set_epoch(epoch)
        for item in (i for i, (source, _) in enumerate(plain.index) if source == 0):      # the taping images
            before, after = plain[item], overlaid[item]
            assert after["prompt"] == before["prompt"]
            darker = after["image"] < before["image"]
            assert (after["image"] <= before["image"]).all() and darker.any()
            if after["prompt"] in DATASETS["cracks"].prompts:
                assert not after["negative"] and after["target"].max() > 0
                assert darker.any(0)[after["target"] > 0.5].float().mean() > 0.8          # the target is drawn in
                targeted += 1
            else:                                                                        # own or distractor prompt
                assert torch.equal(after["target"], before["target"])
    assert targeted > 0


def test_only_thin_masks_are_overlaid() -> None:
    line, box = np.zeros((40, 40), bool), np.zeros((40, 40), bool)
    line[10:13, 2:38] = True
    box[5:30, 5:30] = True
    assert can_overlay(line) and not can_overlay(box) and not can_overlay(np.zeros((40, 40), bool))


def test_overlay_needs_images(data: Path, capsys, tiny_clipseg_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="overlays need images"):
        PromptedSegmentationSet(sources(data), 32, overlay=0.5, images=False)
    code, err = run_main(capsys, tiny_clipseg_dir, data, tmp_path / "out", "--overlay", "0.5")
    assert code == 2 and "--overlay" in err and "cached image features" in err


# --- epoch sampling -------------------------------------------------------------------------------------------------

def test_unweighted_epoch_is_a_seeded_draw_without_repeats() -> None:
    sampler = EpochSampler(10, seed=3, per_epoch=25)
    first = list(sampler)
    assert sorted(first) == list(range(10)) and first == list(EpochSampler(10, seed=3, per_epoch=25))
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert len(set(EpochSampler(10, seed=3, per_epoch=4))) == 4


def test_balanced_epoch_gives_each_dataset_an_equal_share_even_past_the_smaller_one(tmp_path: Path) -> None:
    for number, (name, count) in enumerate({"taping": 3, "cracks": 12}.items()):
        write_training_split(split_dir(tmp_path, name, "train"), name, count, seed=number)
    dataset = PromptedSegmentationSet(sources(tmp_path), 32, images=False)
    per_epoch = 4 * len(dataset)  # more draws than either dataset holds
    draws = list(EpochSampler(len(dataset), seed=0, per_epoch=per_epoch, weights=balanced_weights(dataset)))
    taping_share = np.mean([dataset.sources[dataset.index[i][0]].spec.name == "taping" for i in draws])
    assert len(draws) == per_epoch and abs(taping_share - 0.5) < 0.1


def test_validation_reports_cross_prompt_false_positives(clipseg_run: TrainConfig) -> None:
    for record in read_history(clipseg_run.output_dir):
        for name, block in record["valid"].items():
            others = [p for other in DATASETS if other != name for p in DATASETS[other].prompts]
            assert list(block["cross"]) == others + list(UNRELATED_PROMPTS)
            for scores in block["cross"].values():
                assert 0.0 <= scores["mean_area"] <= 1.0 and 0.0 <= scores["false_positive_rate"] <= 1.0
                assert scores["false_positive_rate"] > 0 or scores["mean_area"] < 0.005
            assert list(block["prompts"]) == list(DATASETS[name].prompts)


# --- clear errors ---------------------------------------------------------------------------------------------------

def run_main(capsys: pytest.CaptureFixture, model: Path, data: Path, out: Path, *extra: str) -> tuple[int, str]:
    code = main(["--model", str(model), "--dataset", "both", "--data-root", str(data), "--output-dir", str(out),
                 "--epochs", "1", "--limit", "1", "--batch-size", "2", *extra])
    return code, capsys.readouterr().err


def test_bad_data_root_is_named(capsys, tiny_lite_dir: Path, tmp_path: Path) -> None:
    code, err = run_main(capsys, tiny_lite_dir, tmp_path / "nowhere", tmp_path / "out")
    assert code == 2 and str(tmp_path / "nowhere") in err and "--data-root" in err
    code, err = run_main(capsys, tiny_lite_dir, tmp_path, tmp_path / "out")  # exists, but no dataset folders
    assert code == 2 and str(split_dir(tmp_path, "taping", "train")) in err


def test_dataset_without_images_is_named(capsys, tiny_lite_dir: Path, data: Path, tmp_path: Path) -> None:
    import shutil

    root = shutil.copytree(data, tmp_path / "data")
    annotations = split_dir(root, "cracks", "train") / "_annotations.coco.json"
    annotations.write_text(json.dumps({**json.loads(annotations.read_text()), "images": [], "annotations": []}))
    code, err = run_main(capsys, tiny_lite_dir, root, tmp_path / "out")
    assert code == 2 and str(annotations) in err and "no images" in err


def test_output_dir_of_another_run_is_refused_unless_resume_or_overwrite(capsys, tiny_lite_dir: Path, data: Path,
                                                                         tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "history.jsonl").write_text(json.dumps({"epoch": 0, "from": "an earlier run"}) + "\n")
    code, err = run_main(capsys, tiny_lite_dir, data, out)
    assert code == 2 and str(out) in err and "--overwrite" in err
    assert run_main(capsys, tiny_lite_dir, data, out, "--overwrite")[0] == 0
    (record,) = read_history(out)  # the earlier run's history is gone
    assert "from" not in record and set(record["valid"]) == {"taping", "cracks"}
    code, err = run_main(capsys, tiny_lite_dir, data, out, "--resume", "--lr", "0.5")
    assert code == 2 and str(out / "training_args.json") in err and "lr" in err
    assert run_main(capsys, tiny_lite_dir, data, out, "--resume")[0] == 0  # complete already: nothing to redo
    assert len(read_history(out)) == 1


def test_unfreeze_last_is_refused_for_the_lite_model(capsys, tiny_lite_dir: Path, data: Path, tmp_path: Path) -> None:
    code, err = run_main(capsys, tiny_lite_dir, data, tmp_path / "out", "--unfreeze-last", "1")
    assert code == 2 and "--unfreeze-last" in err


def test_another_input_size_is_refused_for_clipseg(capsys, tiny_clipseg_dir: Path, data: Path, tmp_path: Path) -> None:
    code, err = run_main(capsys, tiny_clipseg_dir, data, tmp_path / "out", "--image-size", "96")
    assert code == 2 and "--image-size: the clipseg backend keeps its input size (64)" in err


# --- end to end on the real data ------------------------------------------------------------------------------------

def test_end_to_end_on_real_data(capsys, data_root: Path, tiny_lite_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(["--model", str(tiny_lite_dir), "--dataset", "both", "--data-root", str(data_root),
                 "--output-dir", str(out), "--limit", "4", "--epochs", "2", "--batch-size", "4", "--train-size", "32",
                 "--prompts", "all", "--lr", "1e-3"])
    assert code == 0, capsys.readouterr().err
    history = read_history(out)
    assert [r["epoch"] for r in history] == [0, 1]
    for record in history:
        assert {p for block in record["valid"].values() for p in block["prompts"]} == set(PROMPTS)
    assert (out / "curves.png").stat().st_size > 0
    best = out / "best"
    assert {"config.json", "model.safetensors", "training_args.json"} <= {p.name for p in best.iterdir()}
    assert json.loads((best / "training_args.json").read_text())["limit"] == 4
    thresholds = json.loads((best / SETTINGS_FILE).read_text())["thresholds"]
    assert set(thresholds) == set(PROMPTS) and all(0 < t < 1 for t in thresholds.values())
    assert load_backend(best).settings.thresholds == thresholds
