"""Inspect tab callbacks: bad uploads and prompts give messages, re-rendering never re-runs the model, downloads
are named ``{image}__{prompt}.png`` (0/255, input size) plus a JSON with coverage and COCO RLE."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from drywall_qa.app.inspect.downloads import mask_file_names
from drywall_qa.app.inspect.tab import InspectForm, InspectTab, ViewForm, raw_upload
from drywall_qa.app.inspect.views import InspectResult, legend_html, render
from drywall_qa.app.models import ModelCache
from drywall_qa.app.prompts import MAX_PROMPT_CHARS, MAX_PROMPTS, parse_prompts
from drywall_qa.core.visualisation import palette
from drywall_qa.serving.result_store import ResultStore

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "seam_and_crack.png"
PROMPTS = ["segment crack", "segment taping area"]


@pytest.fixture(scope="module")
def tab() -> InspectTab:
    return InspectTab(ModelCache(device="cpu"), [])


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "wall photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)).save(path)
    return path


def segment(tab: InspectTab, key: Path, image, prompts=PROMPTS, typed: str = "", tuned: bool = False,
            threshold: float = 0.5) -> tuple:
    *outputs, run_key = tab.run(InspectForm(model=str(key), image=None if image is None else str(image),
                                            selected=prompts, typed=typed, tuned=tuned, threshold=threshold))
    return (*outputs, tab.results.get(run_key))


def read_downloads(files: list[str]) -> tuple[dict[str, np.ndarray], dict]:
    pngs = {Path(f).name: np.asarray(Image.open(f)) for f in files if f.endswith(".png")}
    [summary] = [json.loads(Path(f).read_text()) for f in files if f.endswith(".json")]
    return pngs, summary


@pytest.mark.parametrize("content, problem", [
    (b"", "empty"),
    (b"this is a text file, renamed", "not a readable image"),
    (EXAMPLE.read_bytes()[:2000], "truncated or corrupt"),
])
def test_bad_uploads_give_a_message_naming_the_file(tab: InspectTab, tiny_lite_dir: Path, tmp_path: Path,
                                                    content: bytes, problem: str) -> None:
    upload = tmp_path / "upload.jpg"
    upload.write_bytes(content)
    status, *outputs = segment(tab, tiny_lite_dir, upload)
    assert "upload.jpg" in status and problem in status
    assert outputs == [None] * 5


def test_upload_component_passes_a_broken_file_through_undecoded(tmp_path: Path) -> None:
    from gradio.data_classes import ImageData

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    component = raw_upload(gr.Image(type="filepath", render=False))
    assert component.preprocess(ImageData(path=str(broken), orig_name="broken.jpg")) == str(broken)
    assert component.preprocess(None) is None


def test_missing_image_prompts_or_model_give_messages(tab: InspectTab, tiny_lite_dir: Path, photo: Path,
                                                       tmp_path: Path) -> None:
    assert "Upload a photo" in segment(tab, tiny_lite_dir, None)[0]
    assert "no prompt given" in segment(tab, tiny_lite_dir, photo, prompts=[], typed=" , \n")[0]
    many = ", ".join(f"segment thing {i}" for i in range(MAX_PROMPTS + 1))
    assert f"at most {MAX_PROMPTS}" in segment(tab, tiny_lite_dir, photo, prompts=[], typed=many)[0]
    assert "not found" in segment(tab, tmp_path / "missing-model", photo)[0]


def test_run_renders_overlay_legend_masks_and_downloads(tab: InspectTab, tiny_lite_dir: Path, photo: Path) -> None:
    status, shown, legend, tiles, files, result = segment(tab, tiny_lite_dir, photo, prompts=PROMPTS[:1],
                                                          typed="segment taping area, segment hole")
    assert "3 prompts" in status and "80×48" in status and " ms" in status
    assert result.prompts == [*PROMPTS, "segment hole"]
    assert shown.shape == (48, 80, 3) and len(tiles) == 3
    for prompt in result.prompts:
        assert prompt in legend
    pngs, summary = read_downloads(files)
    assert list(pngs) == ["wall_photo__segment_crack.png", "wall_photo__segment_taping_area.png",
                          "wall_photo__segment_hole.png"]
    assert [p["prompt"] for p in summary["prompts"]] == result.prompts
    for (name, png), entry, probabilities in zip(pngs.items(), summary["prompts"], result.probabilities):
        expected = probabilities > 0.5 * 255        # the kept maps are 8-bit
        assert png.shape == (48, 80) and set(np.unique(png)) <= {0, 255}
        np.testing.assert_array_equal(png == 255, expected)
        np.testing.assert_array_equal(mask_utils.decode(entry["rle"]).astype(bool), expected)
        assert entry["threshold"] == 0.5 and entry["coverage"] == pytest.approx(expected.mean())
        assert entry["found"] == bool(expected.any())


def test_threshold_and_opacity_rerender_without_the_model(tab: InspectTab, tiny_lite_dir: Path, photo: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    *_, result = segment(tab, tiny_lite_dir, photo)
    model = tab.models.get(str(tiny_lite_dir))
    monkeypatch.setattr(model.segmenter, "predict", lambda *a, **k: pytest.fail("the model was run again"))
    [key] = [k for k in tab.results._runs if tab.results._runs[k] is result]
    threshold = float(np.median(result.probabilities[0])) / 255
    tuned, shown, legend, tiles, files = tab.set_threshold(ViewForm(key, threshold=threshold, opacity=0.8))
    assert tuned is False
    pngs, summary = read_downloads(files)
    np.testing.assert_array_equal(pngs["wall_photo__segment_crack.png"] == 255,
                                  result.probabilities[0] > threshold * 255)
    assert summary["prompts"][0]["threshold"] == pytest.approx(threshold, abs=1e-4)
    faint = tab.rerender(ViewForm(key, tuned=False, threshold=threshold, opacity=0.1)).overlay
    assert not np.array_equal(faint, shown)
    assert tab.rerender(ViewForm(None)) == tuple({"__type__": "update"} for _ in range(4))


def test_kept_runs_are_compact_and_shared_within_a_budget(tiny_lite_dir: Path, tmp_path: Path) -> None:
    tab = InspectTab(ModelCache(device="cpu"), [], results=ResultStore(budget_mb=2))      # one run of 1.5 MB
    photo = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (1500, 300, 3), dtype=np.uint8)).save(photo)
    form = InspectForm(model=str(tiny_lite_dir), image=str(photo), selected=PROMPTS, tuned=False)
    first = tab.run(form).result
    kept = tab.results.get(first)
    assert kept.image.shape == (1024, 205, 3) and kept.size == (1500, 300)
    assert all(p.dtype == np.uint8 and p.shape == (1500, 300) for p in kept.probabilities)
    second = tab.run(form).result
    assert tab.results.get(first) is None and tab.results.get(second) is not None  # the older run made room
    assert "press <b>Segment</b> again" in tab.rerender(ViewForm(first, tuned=False)).legend
    tab.results.budget = 1_000_000                                           # now smaller than one run
    third = tab.run(form).result
    assert tab.results.get(third) is None and tab.results.get(second) is not None


def test_compact_maps_give_the_same_masks_away_from_the_threshold() -> None:
    ramp = np.linspace(0, 1, 4001, dtype=np.float32).reshape(1, -1)
    result = InspectResult(np.zeros((1, 4001, 3), np.uint8), "x", "m", ["p"], [ramp], [0.5], 1.0, [0.5])
    compact = result.compact()
    assert compact.nbytes() < result.nbytes() / 3
    for threshold in (0.1, 0.37, 0.5, 0.93):
        exact, kept = result.masks(threshold)[0], compact.masks(threshold)[0]
        far = np.abs(ramp - threshold) > 1 / 255
        np.testing.assert_array_equal(exact[far], kept[far])


def test_empty_masks_say_not_found() -> None:
    result = InspectResult(np.zeros((10, 12, 3), np.uint8), "x", "m", ["segment crack", "segment seam"],
                           [np.zeros((10, 12), np.float32), np.full((10, 12), 0.9, np.float32)], [0.5, 0.5], 1.0,
                           [0.1, 0.4], calibrated=[True, True])
    shown, legend, tiles, files = render(result, None, 0.5)
    assert [caption for _, caption in tiles] == ["segment crack · not found", "segment seam · 100.00 %"]
    assert legend.count("not found") == 1 and "absent (presence 10%)" in legend
    assert "present (presence 40%, low confidence)" in legend          # the verdict follows the mask


def test_unknown_concepts_are_drawn_but_called_unreliable() -> None:
    result = InspectResult(np.zeros((10, 12, 3), np.uint8), "x", "m", ["segment crack", "segment water stain"],
                           [np.full((10, 12), 0.9, np.float32)] * 2, [0.5, 0.5], 1.0, [0.9, 0.9],
                           unknown=[False, True])
    shown, legend, tiles, files = render(result, None, 0.5)
    assert legend.count("unknown concept: unreliable") == 1 and "present (presence 90%, uncalibrated)" in legend
    assert [caption for _, caption in tiles][1] == "segment water stain · 100.00 %"
    assert np.all(np.asarray(tiles[1][0].convert("RGB")) == palette(2)[1])


def test_prompt_text_is_escaped_in_the_legend() -> None:
    legend = legend_html(['<img src=x onerror="alert(1)">'], palette(1), [0.5], [0.5], ["likely present (60%)"])
    assert "<img" not in legend and "&lt;img" in legend


def test_prompts_are_cleaned_deduplicated_and_capped() -> None:
    prompts, notes = parse_prompts(["segment crack"], "segment\tcrack ;\x00segment  seam\n,segment crack")
    assert prompts == ["segment crack", "segment seam"] and notes == []
    prompts, notes = parse_prompts([], "x" * (MAX_PROMPT_CHARS + 5))
    assert prompts == ["x" * MAX_PROMPT_CHARS] and "cut" in notes[0]


def test_mask_file_names_stay_unique_and_safe() -> None:
    names = mask_file_names("../my wall", ["segment joint/tape", "segment joint tape", "ünïcode?"])
    assert names == ["my_wall__segment_joint_tape.png", "my_wall__segment_joint_tape-2.png", "my_wall__unicode.png"]


def test_download_names_drop_the_roboflow_hash_and_keep_the_prompt_short_behind() -> None:
    """One photo's downloads differ within their first 50 characters, which the browser's file list shows."""
    stem = "1040-dat_png_jpg.rf.69f0a1b2c3d4e5f60718293a4b5c6d7ea"
    names = mask_file_names(stem, ["segment crack", "segment taping area"])
    assert names == ["1040-dat_png_jpg__segment_crack.png", "1040-dat_png_jpg__segment_taping_area.png"]
    assert mask_file_names("w" * 100, ["segment crack"]) == ["w" * 32 + "__segment_crack.png"]


def test_outlines_keep_overlapping_masks_visible(tab: InspectTab, tiny_lite_dir: Path, photo: Path) -> None:
    from drywall_qa.core.visualisation import outlines

    square = np.zeros((20, 20), bool)
    square[4:16, 4:16] = True
    [edge] = outlines([square])
    assert edge[4, 10] and edge[5, 10] and not edge[6, 10] and not edge[10, 10] and edge.sum() < square.sum()
    assert not outlines([np.zeros((5, 5), bool)])[0].any()
    run_key = tab.run(InspectForm(model=str(tiny_lite_dir), image=str(photo), selected=PROMPTS, tuned=False,
                                  threshold=0.0)).result
    view = ViewForm(run_key, tuned=False, threshold=0.0)                # threshold 0: both masks cover everything
    filled, edges = tab.rerender(view).overlay, tab.rerender(replace(view, outline=True)).overlay
    assert not np.array_equal(filled, edges)
    assert np.array_equal(edges[20, 40], np.asarray(Image.open(photo))[20, 40])   # the interior is not painted
    assert not np.array_equal(edges[0, 40], np.asarray(Image.open(photo))[0, 40])   # the border is painted


def test_example_clicks_hand_over_a_plain_path(tmp_path: Path) -> None:
    tab = InspectTab(ModelCache(device="cpu"), [str(EXAMPLE)])
    assert tab.example(0) == str(EXAMPLE)
    assert tab.example(1) is None and tab.example(-1) is None and tab.example(None) is None


def test_a_prompt_of_no_trained_concept_is_flagged_in_the_status(tmp_path: Path) -> None:
    tab = InspectTab(ModelCache(device="cpu"), [])
    status, _, legend, *_ = tab.run(InspectForm(model="lite", image=str(EXAMPLE), selected=["segment crack"],
                                                typed="segment water stain", tuned=False))
    assert "'segment water stain' is not a concept drywall-qa-lite was trained on (closest:" in status
    assert "CLIPSeg handles open-vocabulary prompts" in status and legend.count("unknown concept: unreliable") == 1


def test_status_says_which_view_ran_and_tiling_can_be_forced(tab: InspectTab, tiny_lite_dir: Path,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "wide wall.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (700, 1300, 3), dtype=np.uint8)).save(path)
    form = InspectForm(model=str(tiny_lite_dir), image=str(path), selected=PROMPTS[:1])
    status, *_, key = tab.run(replace(form, tiling="on"))
    assert "tiled: 6 windows at 640 px" in status
    assert tab.results.get(key).size == (700, 1300)
    status, *_ = tab.run(replace(form, tiling="off"))
    assert "whole image" in status and "tiled" not in status


@pytest.mark.slow
def test_app_segments_a_12_megapixel_photo_with_the_default_policy(tmp_path: Path) -> None:
    from drywall_qa.core.tiling import describe

    path = tmp_path / "whole wall.jpg"
    Image.open(EXAMPLE).convert("RGB").resize((4032, 3024)).save(path, quality=90)
    tab = InspectTab(ModelCache(device="cpu"), [])
    status, overlay, *_, key = tab.run(InspectForm(model="lite", image=str(path), selected=PROMPTS))
    segmenter = tab.models.get("lite").segmenter
    views = [describe(policy, 3024, 4032, chosen=640) for policy in map(segmenter.scale_policy, PROMPTS)]
    passes = [view.split(" (select: ")[0] for view in views]                   # the pass a pyramid keeps varies
    assert all(view in status for view in passes), status
    assert tab.results.get(key).size == (3024, 4032)


def test_a_prompt_added_on_the_same_photo_reuses_its_encoded_features(tab: InspectTab, tiny_lite_dir: Path,
                                                                       photo: Path, tmp_path: Path) -> None:
    def run(image: Path, prompts: list[str], last: str | None = None):
        return tab.run(InspectForm(model=str(tiny_lite_dir), image=str(image), selected=prompts, result=last))

    first = run(photo, PROMPTS[:1])
    added = run(photo, PROMPTS, last=first.result)
    fresh = run(photo, PROMPTS)
    assert "features were reused" in added.status
    assert "reused" not in first.status and "reused" not in fresh.status
    for a, b in zip(tab.results.get(added.result).probabilities, tab.results.get(fresh.result).probabilities):
        np.testing.assert_array_equal(a, b)
    other = tmp_path / "other.png"
    Image.fromarray(np.zeros((48, 80, 3), np.uint8)).save(other)
    assert "reused" not in run(other, PROMPTS, last=added.result).status  # another photo is encoded anew
