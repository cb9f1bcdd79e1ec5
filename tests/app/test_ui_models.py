"""Model selection: cached loads, readable load failures, the model box keeping a working model."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from drywall_qa.app import models as models_module
from drywall_qa.app.models import FOLDER, ModelCache, model_choices, model_key, startup_choice
from drywall_qa.app.server import ModelBox
from drywall_qa.core.backends import BUNDLED_DIR
from drywall_qa.core.errors import InputError, ModelLoadError
from drywall_qa.core.segmenter import Segmenter


@pytest.fixture
def counted() -> tuple[list[str], callable]:
    loads: list[str] = []

    def loader(key: str, device: str | None) -> Segmenter:
        loads.append(key)
        return Segmenter.load(key, device)

    return loads, loader


def test_loaded_models_are_cached_and_evicted(tiny_lite_dir: Path, tiny_clipseg_dir: Path, counted) -> None:
    loads, loader = counted
    cache = ModelCache(device="cpu", capacity=1, loader=loader)
    first = cache.get(str(tiny_lite_dir))
    assert cache.get(str(tiny_lite_dir)) is first and loads == [str(tiny_lite_dir)]
    cache.get(str(tiny_clipseg_dir))                     # capacity 1: the lite model is dropped
    assert cache.get(str(tiny_lite_dir)) is not first and len(loads) == 3


def test_concurrent_first_requests_load_once(tiny_lite_dir: Path, counted) -> None:
    loads, loader = counted
    cache = ModelCache(device="cpu", loader=loader)
    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get(str(tiny_lite_dir)))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1 and len({id(model) for model in got}) == 1


def test_failed_loads_are_not_cached(tmp_path: Path, counted) -> None:
    loads, loader = counted
    cache = ModelCache(device="cpu", loader=loader)
    for _ in range(2):
        with pytest.raises(ModelLoadError, match="not found"):
            cache.get(str(tmp_path / "missing"))
    assert len(loads) == 2


def test_missing_bundled_model_says_how_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models_module, "BUNDLED_DIR", tmp_path / "weights" / "drywall-qa-lite")

    def loader(key: str, device: str | None) -> Segmenter:
        raise ModelLoadError(f"{key}: checkpoint directory not found")

    with pytest.raises(ModelLoadError, match="bundled model is not installed.*--model DIR"):
        ModelCache(loader=loader).get("lite")


def test_model_box_reports_failures_and_keeps_the_working_model(tiny_lite_dir: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    box = ModelBox(ModelCache(device="cpu"), str(tiny_lite_dir), [tmp_path])
    status, key = box.load(str(tiny_lite_dir), None, None)
    assert key == str(tiny_lite_dir) and "drywall-qa-lite" in status and "parameters" in status
    status, kept = box.load("clipseg", None, key)             # no network here: a message, not a crash
    assert kept == key and "Error" in status and "CLIPSeg" in status and "Still using" in status
    status, kept = box.load(FOLDER, str(tmp_path / "nothing"), key)
    assert kept == key and "not found" in status
    status, kept = box.load(FOLDER, "  ", None)
    assert kept is None and "no folder given" in status


def test_model_key_and_choices(tmp_path: Path) -> None:
    assert model_key("lite", None) == "lite"
    assert model_key(FOLDER, f"{tmp_path}/a/../b ", [tmp_path]) == str(tmp_path / "b")
    with pytest.raises(InputError):
        model_key(None, None)
    assert model_choices("lite")[0][1] == "lite"
    assert model_choices(str(tmp_path))[0] == (f"Local · {tmp_path.name}", str(tmp_path))
    (tmp_path / "runs" / "v1" / "best").mkdir(parents=True)
    (tmp_path / "runs" / "v1" / "best" / "config.json").write_text("{}")
    choices = model_choices("lite", [tmp_path / "runs"])
    assert ("Local · v1/best", str(tmp_path / "runs" / "v1" / "best")) in choices and choices[-1][1] == FOLDER
    assert startup_choice(str(BUNDLED_DIR / ".." / BUNDLED_DIR.name)) == "lite"  # shown as the bundled model
    assert startup_choice(f"{tmp_path}/a/..") == str(tmp_path) and startup_choice(None) is None


def test_clients_load_only_offered_models(tiny_lite_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    box = ModelBox(ModelCache(device="cpu"), "lite", [tiny_lite_dir])
    for choice, folder in [(str(outside), None), ("/etc", None)]:
        status, kept = box.load(choice, folder, "lite")
        assert kept == "lite" and "is not offered by this server" in status
    for folder in [str(outside), str(tmp_path / "no-such-folder"), f"{tiny_lite_dir}/../outside"]:
        status, kept = box.load(FOLDER, folder, "lite")          # the same answer whether it exists or not
        assert kept == "lite" and "outside the model folders this server offers" in status
    status, key = box.load(FOLDER, str(tiny_lite_dir), "lite")
    assert key == str(tiny_lite_dir.resolve()) and "parameters" in status


def test_pinned_model_survives_other_loads() -> None:
    loads: list[str] = []

    def loader(key: str, device: str | None) -> Segmenter:
        loads.append(key)
        return SimpleNamespace(name=key)

    cache = ModelCache(capacity=1, loader=loader)
    cache.pinned.add("lite")
    cache.get("lite")
    for key in ["a", "b", "c"]:
        cache.get(key)
    cache.get("lite")
    assert loads == ["lite", "a", "b", "c"]


def test_a_failed_choice_puts_the_dropdown_back_on_the_model_in_use(tiny_lite_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    box = ModelBox(ModelCache(device="cpu"), str(tiny_lite_dir))
    _, key = box.load(str(tiny_lite_dir), None, None)
    dropdown, folder, status, kept = box.choose("clipseg", key)          # no network: CLIPSeg cannot load
    assert kept == key and dropdown["value"] == str(tiny_lite_dir) and "Still using Local · tiny" in status
    assert str(tiny_lite_dir.parent) not in status
    dropdown, *_ , kept = box.choose(str(tiny_lite_dir), key)
    assert dropdown["value"] == str(tiny_lite_dir) and kept == key


def test_messages_to_clients_name_files_relative_to_server_folders(tmp_path: Path) -> None:
    from drywall_qa.app import messages

    root = tmp_path / "data"
    try:
        messages.hide_server_paths([root, "data"])       # a relative root is hidden by its absolute path only
        text = messages.error_message(InputError(str(root / "cracks" / "valid" / "_annotations.coco.json"), "bad"))
        assert str(tmp_path) not in text and "…/cracks/valid/" in text
        assert messages.without_server_paths(f"no data folder under {root}base") == f"no data folder under {root}base"
    finally:
        messages.hide_server_paths([])


def test_failed_loads_leave_nothing_behind() -> None:
    def loader(key: str, device: str | None) -> Segmenter:
        raise ModelLoadError(f"{key}: no such checkpoint")

    cache = ModelCache(loader=loader)
    for index in range(50):
        with pytest.raises(ModelLoadError):
            cache.get(f"/runs/missing-{index}")
    assert cache._loading == {} and len(cache._models) == 0
