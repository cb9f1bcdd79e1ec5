"""Single-image CLI: text + visual prompts, masks, presence and the semantic map on the tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drywall_qa.cli.predict import main
from drywall_qa.core.visual_prompts import DEFAULT_ENGINEERING


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(5)
    paths = {"image": tmp_path / "wall.png", "support": tmp_path / "example.png", "mask": tmp_path / "mask.png"}
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(paths["image"])
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(paths["support"])
    mask = np.zeros((40, 40), np.uint8)
    mask[10:20, 5:35] = 255
    Image.fromarray(mask).save(paths["mask"])
    return paths


def test_text_and_visual_prompts_with_semantic_map(files: dict[str, Path], tiny_clipseg_dir: Path,
                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main([str(files["image"]), "--prompts", "segment crack", "segment taping area", "--support",
               str(files["support"]), "--support-mask", str(files["mask"]), "--alpha", "0.5", "--semantic",
               "--model", str(tiny_clipseg_dir), "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "predictions.json").read_text())
    prompts = [p["prompt"] for p in report["predictions"]]
    assert prompts[:2] == ["segment crack", "segment taping area"]
    assert prompts[2] == f"segment crack + example.png [{DEFAULT_ENGINEERING}] alpha=0.5"
    assert report["semantic"]["labels"] == ["background", *prompts]
    for entry in report["predictions"]:
        mask = np.asarray(Image.open(out / entry["mask"]).convert("L")) > 0
        assert mask.shape == (48, 64) and mask.mean() == pytest.approx(entry["coverage"])
        assert 0.0 <= entry["presence"] <= 1.0
    labels = np.asarray(Image.open(out / "labels.png"))[..., 0]
    assert labels.shape == (48, 64) and set(np.unique(labels)) <= {0, 1, 2, 3}
    for index, entry in enumerate(report["predictions"], start=1):     # a label only where its mask is set
        assert not (labels == index)[~(np.asarray(Image.open(out / entry["mask"]).convert("L")) > 0)].any()
    support = np.asarray(Image.open(out / "support.png"))
    assert support.shape[0] == support.shape[1]
    assert "uncalibrated" in capsys.readouterr().out             # the tiny checkpoint has no calibration
    assert not any(entry["presence_calibrated"] for entry in report["predictions"])


def test_visual_prompt_on_lite_is_refused(files: dict[str, Path], tiny_lite_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rc = main([str(files["image"]), "--support", str(files["support"]), "--support-mask", str(files["mask"]),
               "--model", str(tiny_lite_dir), "--out", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "CLIPSeg" in err and "Traceback" not in err


@pytest.mark.parametrize(("extra", "message"), [
    (["--support", "{support}"], "--support-mask"),
    (["--support", "{support}", "--support-mask", "{mask}", "--alpha", "0.5"], "alpha"),   # no text to mix in
    (["--support", "{support}", "--support-mask", "{mask}", "--engineering", "sharpen"], "engineering"),
])
def test_usage_errors(files: dict[str, Path], tiny_clipseg_dir: Path, tmp_path: Path, extra: list[str],
                      message: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(support=files["support"], mask=files["mask"]) for a in extra]
    rc = main([str(files["image"]), *argv, "--model", str(tiny_clipseg_dir), "--out", str(tmp_path / "o")])
    assert rc == 2 and message in capsys.readouterr().err


def test_support_from_real_split(data_root: Path, tiny_clipseg_dir: Path, tmp_path: Path) -> None:
    image = data_root / "cracks" / "valid"
    query = next(p for p in sorted(image.iterdir()) if p.suffix.lower() in {".jpg", ".png"})
    out = tmp_path / "out"
    rc = main([str(query), "--support-split", str(data_root / "cracks" / "train"), "--support-index", "1",
               "--engineering", "crop", "--model", str(tiny_clipseg_dir), "--out", str(out)])
    assert rc == 0
    entry, = json.loads((out / "predictions.json").read_text())["predictions"]
    assert entry["prompt"].endswith("[crop]")


@pytest.mark.parametrize("tiling, view", [("on", "tiled: 6 windows at 640 px"), ("off", "whole image")])
def test_tiling_option_picks_the_view(tiny_lite_dir: Path, tmp_path: Path, tiling: str, view: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "wide.png"
    Image.fromarray(np.random.default_rng(6).integers(0, 256, (1000, 1200, 3), dtype=np.uint8)).save(photo)
    rc = main([str(photo), "--prompts", "segment crack", "--model", str(tiny_lite_dir), "--tiling", tiling,
               "--out", str(tmp_path / "out")])
    assert rc == 0 and f"({view})" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert report["predictions"][0]["view"] == view
    assert Image.open(tmp_path / "out" / report["predictions"][0]["mask"]).size == (1200, 1000)
