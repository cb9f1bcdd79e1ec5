"""drywall-qa-lite's EfficientNet-Lite encoder: ImageNet weights that match the reference implementation, frozen
early blocks, scaled-down sizes, save/load, retired encoders and the training command's options for a new model."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import torch
from efficientnet_lite_pytorch import EfficientNet

from drywall_qa.cli.train import parse_args
from drywall_qa.core.backends import load_backend, new_backend
from drywall_qa.core.backends.lite import LiteBackend, LiteConfig, LiteModel
from drywall_qa.core.backends.lite.encoder import ARCHITECTURES, EfficientNetLiteEncoder
from drywall_qa.core.errors import ModelLoadError
from drywall_qa.core.segmenter import Segmenter

SMALL = dict(image_size=64, decoder_sizes=(8, 8, 8, 16, 16), prompt_hidden=32)


def imagenet_reference(architecture: str) -> EfficientNet:
    package, file_class = ARCHITECTURES[architecture]
    path = getattr(importlib.import_module(package), file_class).get_model_file_path()
    return EfficientNet.from_pretrained(architecture, weights_path=path).eval()


@pytest.fixture(scope="module")
def reference() -> EfficientNet:
    return imagenet_reference("efficientnet-lite0")


@pytest.mark.parametrize(("architecture", "taps"), [("efficientnet-lite0", (0, 2, 4, 10, 15)),
                                                    ("efficientnet-lite1", (0, 3, 6, 14, 20)),
                                                    ("efficientnet-lite2", (0, 3, 6, 14, 20))])
def test_imagenet_weights_reproduce_the_reference_features(architecture: str, taps: tuple[int, ...]) -> None:
    reference = imagenet_reference(architecture)
    encoder = EfficientNetLiteEncoder(architecture=architecture)
    encoder.load_imagenet_weights()
    pixels = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        x, expected = reference._swish(reference._bn0(reference._conv_stem(pixels))), []
        for index, block in enumerate(reference._blocks):
            x = block(x)
            if index in encoder.taps:
                expected.append(x)
        features = encoder.eval()(pixels)
    assert encoder.taps == taps
    assert [f.shape[-1] for f in features] == [64, 32, 16, 8, 4]  # strides 2, 4, 8, 16, 32
    for got, want in zip(features, expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())


def test_new_models_start_from_the_imagenet_encoder(reference: EfficientNet) -> None:
    backend = new_backend("drywall-qa-lite", **SMALL)
    assert isinstance(backend, LiteBackend) and backend.input_size == 64 and backend.model.config.frozen_blocks == 3
    torch.testing.assert_close(backend.model.backbone.stem[0].weight, reference._conv_stem.weight)
    torch.testing.assert_close(backend.model.backbone.blocks[15]._project_conv.weight,
                               reference._blocks[15]._project_conv.weight)


def test_frozen_blocks_keep_their_weights_and_batch_statistics_while_the_rest_trains() -> None:
    model = LiteModel(LiteConfig(**SMALL, frozen_blocks=3))
    model.backbone.load_imagenet_weights()
    frozen = [model.backbone.stem, *model.backbone.blocks[:3]]
    before = {name: t.clone() for name, t in model.state_dict().items()}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert not any(id(p) in trainable for m in frozen for p in m.parameters())
    model.train()
    assert not any(m.training for f in frozen for m in f.modules()) and model.backbone.blocks[3].training
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(torch.randn(2, 3, 64, 64), torch.randn(2, 384)).mean().backward()
    optimizer.step()
    after = model.state_dict()
    frozen_prefixes = ("backbone.stem.", *(f"backbone.blocks.{i}." for i in range(3)))
    frozen_names = [name for name in after if name.startswith(frozen_prefixes)]
    assert any("running_mean" in name for name in frozen_names)
    assert all(torch.equal(before[name], after[name]) for name in frozen_names)
    trained = "backbone.blocks.3._project_conv.weight"
    assert not torch.equal(before[trained], after[trained])


def test_loaded_checkpoints_keep_the_stem_and_first_blocks_frozen(tiny_lite_dir, tmp_path) -> None:
    """transformers 5 loads every weight as a new trainable parameter; fine-tuning a loaded checkpoint must still
    leave the stem and the first ``frozen_blocks`` blocks alone."""
    text_encoder = load_backend(tiny_lite_dir).text_encoder
    LiteBackend(LiteModel(LiteConfig(**SMALL, frozen_blocks=3)), text_encoder).save_pretrained(tmp_path)
    for model in (load_backend(tmp_path).model, LiteModel.from_pretrained(tmp_path),
                  LiteModel.from_pretrained(tmp_path, output_loading_info=True)[0]):
        encoder = model.backbone
        assert encoder.frozen_blocks == 3
        assert not any(p.requires_grad for m in (encoder.stem, *encoder.blocks[:3]) for p in m.parameters())
        assert all(p.requires_grad for m in encoder.blocks[3:] for p in m.parameters())
        assert all(p.requires_grad for m in (model.blocks, model.prompt_mlp, model.head) for p in m.parameters())
    size = Segmenter.load(device="cpu").model_size()  # the bundled model: frozen_blocks 3
    assert 0 < size["trainable_parameters"] < size["parameters"]


def test_save_and_load_keeps_encoder_and_predictions(tiny_lite_dir, tmp_path) -> None:
    text_encoder = load_backend(tiny_lite_dir).text_encoder
    model = LiteModel(LiteConfig(**SMALL, frozen_blocks=2)).eval()
    LiteBackend(model, text_encoder).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["encoder"] == "efficientnet-lite0"
    reloaded = load_backend(tmp_path)
    assert reloaded.image_std == (0.5, 0.5, 0.5)
    image = np.random.default_rng(2).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    before = Segmenter(LiteBackend(model, text_encoder)).predict(image, ["segment crack"])[0]
    after = Segmenter(reloaded).predict(image, ["segment crack"])[0]
    torch.testing.assert_close(before.logits, after.logits)


def test_a_larger_encoder_is_saved_with_its_own_scaling_and_loads_back(tiny_lite_dir, tmp_path) -> None:
    text_encoder = load_backend(tiny_lite_dir).text_encoder
    model = LiteModel(LiteConfig(**SMALL, encoder="efficientnet-lite2")).eval()
    LiteBackend(model, text_encoder).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["encoder"], config["width_coefficient"], config["depth_coefficient"]) == ("efficientnet-lite2",
                                                                                             1.1, 1.2)
    reloaded = load_backend(tmp_path).model
    lite0_blocks = len(LiteModel(LiteConfig(**SMALL)).backbone.blocks)
    assert len(reloaded.backbone.blocks) == len(model.backbone.blocks) > lite0_blocks
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(image), reloaded.encode_image(image))


def test_scaled_down_encoder_keeps_the_strides_and_narrows_the_features() -> None:
    encoder = EfficientNetLiteEncoder(width_coefficient=0.1, depth_coefficient=0.1).eval()
    assert len(encoder.blocks) == 7 and encoder.taps == (0, 1, 2, 4, 6)
    with torch.no_grad():
        features = encoder(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in features] == [(c, 32 // s, 48 // s) for c, s in
                                                       zip(encoder.out_channels, (1, 2, 4, 8, 16))]


@pytest.mark.parametrize(("edit", "expected"), [
    ({"encoder": "vgg"}, "encoder 'vgg' is not one of efficientnet-lite0, efficientnet-lite1, efficientnet-lite2"),
    ({"encoder": ["efficientnet-lite0"]}, "encoder ['efficientnet-lite0'] is not one of efficientnet-lite0"),
    ({"encoder": "resnet"}, "encoder 'resnet' is no longer supported, only efficientnet-lite0, efficientnet-lite1, "
                            "efficientnet-lite2. retrain with"),
    ({"encoder": None}, "encoder 'resnet' is no longer supported"),  # checkpoints that name no encoder
])
def test_unknown_or_retired_encoder_in_a_checkpoint_is_one_clear_line(tiny_lite_dir, tmp_path, edit: dict,
                                                                       expected: str) -> None:
    config = {key: value for key, value in {**json.loads((tiny_lite_dir / "config.json").read_text()), **edit}.items()
              if value is not None}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError) as info:
        load_backend(tmp_path)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_fields_of_the_retired_encoder_are_read_and_not_written_again(tmp_path) -> None:
    config = LiteConfig(**SMALL, hidden_sizes=[32, 64, 128, 256], depths=[1, 2, 2, 1], embedding_size=32)
    config.save_pretrained(tmp_path)
    assert not {"hidden_sizes", "depths", "embedding_size"} & set(json.loads((tmp_path / "config.json").read_text()))


def test_training_command_builds_new_lite_models_on_the_pretrained_encoder(tmp_path) -> None:
    common = ["--dataset", "cracks", "--data-root", str(tmp_path), "--output-dir", str(tmp_path / "run")]
    assert parse_args([*common, "--model", "lite"]).lite_options == {"frozen_blocks": 3,
                                                                     "encoder": "efficientnet-lite0"}
    assert parse_args([*common, "--model", "lite", "--lite-frozen-blocks", "5", "--lite-encoder",
                       "efficientnet-lite2"]).lite_options == {"frozen_blocks": 5, "encoder": "efficientnet-lite2"}
    assert parse_args([*common, "--model", str(tmp_path)]).lite_options == {}
