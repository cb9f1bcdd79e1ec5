"""Post-processing settings: their own file beside the weights, checked at load, read from an older checkpoint's
config.json when there is none."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from drywall_qa.core.backends import BUNDLED_DIR, load_backend
from drywall_qa.core.errors import ModelLoadError
from drywall_qa.core.postprocess import DEFAULT_THRESHOLD, LEGACY_FIELDS, SETTINGS_FILE, PostprocessSettings
from drywall_qa.core.shapes import BOXES, PIXELS

SETTINGS = PostprocessSettings({"segment crack": 0.3}, {"segment crack": BOXES, "segment seam": PIXELS},
                               {"segment wall crack": (2.0, -1.0)})


def test_round_trip(tmp_path: Path) -> None:
    SETTINGS.save_pretrained(tmp_path)
    assert PostprocessSettings.from_pretrained(tmp_path) == SETTINGS
    assert json.loads((tmp_path / SETTINGS_FILE).read_text())["presence"] == {"segment wall crack": [2.0, -1.0]}


def test_lookup_and_calibrated_prompts() -> None:
    assert SETTINGS.calibrated_prompts() == ["segment crack", "segment seam", "segment wall crack"]
    assert SETTINGS.lookup("segment crack") == (0.3, BOXES, None)
    assert SETTINGS.lookup("segment crack", 0.6) == (0.6, BOXES, None)
    assert SETTINGS.lookup("segment wall crack") == (DEFAULT_THRESHOLD, PIXELS, (2.0, -1.0))
    assert SETTINGS.lookup(None) == (DEFAULT_THRESHOLD, PIXELS, None)


@pytest.mark.parametrize(("data", "expected"), [
    ({"thresholds": {"segment crack": 7.5}}, "thresholds['segment crack'] = 7.5 is not a probability in [0, 1]"),
    ({"thresholds": {"segment crack": math.nan}}, "thresholds['segment crack'] = nan"),
    ({"thresholds": {"segment crack": True}}, "thresholds['segment crack'] = True"),
    ({"shapes": ["boxes"]}, "field 'shapes' is ['boxes'], not an object"),
    ({"shapes": {"segment crack": "circles"}}, "'circles' is not one of pixels, boxes"),
    ({"presence": {"segment crack": [1.0]}}, "presence['segment crack'] = [1.0] is not a pair of finite numbers"),
    ({"presence": {"segment crack": [10 ** 400, 0]}}, "is not a pair of finite numbers"),
])
def test_bad_settings_name_the_file_and_field(tmp_path: Path, data: dict, expected: str) -> None:
    file = tmp_path / SETTINGS_FILE
    file.write_text(json.dumps(data))
    with pytest.raises(ModelLoadError) as info:
        PostprocessSettings.from_pretrained(tmp_path)
    assert str(info.value).startswith(f"{file}: ") and expected in str(info.value) and "calibrate" in str(info.value)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_a_damaged_settings_file_is_refused(tiny_lite_dir: Path, tmp_path: Path, text: str) -> None:
    model = shutil.copytree(tiny_lite_dir, tmp_path / "model")
    (model / SETTINGS_FILE).write_text(text)
    with pytest.raises(ModelLoadError, match=f"^{model / SETTINGS_FILE}: .*delete {SETTINGS_FILE}"):
        load_backend(model, device="cpu")


def test_legacy_config_fields_are_read_when_there_is_no_settings_file(tiny_lite_dir: Path, tmp_path: Path) -> None:
    model = shutil.copytree(tiny_lite_dir, tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    legacy = {key: SETTINGS.to_dict()[name] for name, key in LEGACY_FIELDS.items()}
    (model / "config.json").write_text(json.dumps({**config, **legacy}))
    backend = load_backend(model, device="cpu")
    assert backend.settings == SETTINGS
    assert not any(hasattr(backend.model.config, key) for key in LEGACY_FIELDS.values())  # saving writes none
    PostprocessSettings(thresholds={"segment crack": 0.8}).save_pretrained(model)
    assert load_backend(model, device="cpu").settings.thresholds == {"segment crack": 0.8}  # the file wins


def test_the_bundled_model_ships_the_new_layout() -> None:
    config = json.loads((BUNDLED_DIR / "config.json").read_text())
    assert not set(LEGACY_FIELDS.values()) & set(config)
    settings = PostprocessSettings.from_pretrained(BUNDLED_DIR)
    assert set(settings.shapes.values()) == {PIXELS, BOXES}
    assert set(settings.thresholds) == set(settings.shapes) == set(settings.presence)
