"""Inspect's issue-7 additions: visual prompts (painted or from a split) on CLIPSeg, the clear "needs CLIPSeg"
answer of the lite model, presence verdicts in the legend, and the semantic map."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drywall_qa.app.inspect.tab import InspectForm, InspectTab, ViewForm
from drywall_qa.app.inspect.views import InspectResult
from drywall_qa.app.inspect.visual_box import DATASET, DRAWN, OFF, VisualForm
from drywall_qa.app.models import ModelCache
from drywall_qa.core.errors import InputError
from drywall_qa.core.presence import describe_presence
from drywall_qa.core.visual_prompts import VisualPrompt, engineer
from drywall_qa.core.visualisation import palette
from drywall_qa.data.discovery import open_split
from tests.helpers import make_split

#: the stored maps are 8-bit copies of float16 probabilities: half a step of each
MAP_STEP = 0.5 / 255 + 2**-11

H, W = 48, 64


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("visual_data")
    make_split(root / "cracks" / "valid", n=3)
    return [root]


@pytest.fixture(scope="module")
def tab(roots: list[Path]) -> InspectTab:
    return InspectTab(ModelCache(device="cpu"), [], roots)


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("visual_photo") / "wall.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (H, W, 3), dtype=np.uint8)).save(path)
    return path


def painted_editor(seed: int = 2) -> dict:
    """An image editor value: an RGBA background and one transparent layer with a painted rectangle."""
    rng = np.random.default_rng(seed)
    background = np.concatenate([rng.integers(0, 255, (H, W, 3), dtype=np.uint8),
                                 np.full((H, W, 1), 255, np.uint8)], axis=2)
    layer = np.zeros((H, W, 4), np.uint8)
    layer[10:30, 20:44] = (255, 0, 102, 255)
    return {"background": background, "layers": [layer], "composite": background}


def segment(tab: InspectTab, key: Path, photo: Path, prompts: list[str], **example) -> tuple:
    *outputs, run_key = tab.run(InspectForm(model=str(key), image=str(photo), selected=prompts, tuned=False,
                                            example=VisualForm(**example)))
    return (*outputs, tab.results.get(run_key))


def test_painted_example_conditions_clipseg(tab: InspectTab, tiny_clipseg_dir: Path, photo: Path) -> None:
    editor = painted_editor()
    status, shown, legend, tiles, files, result = segment(tab, tiny_clipseg_dir, photo, ["segment crack"],
                                                          source=DRAWN, editor=editor)
    label = "example image [crop+blur+darken]"
    assert "2 prompts" in status and result.prompts == ["segment crack", label]
    assert label in legend and len(tiles) == 2 and any(f.endswith("__example_image_crop_blur_darken.png")
                                                       for f in files)
    mask = np.zeros((H, W), bool)
    mask[10:30, 20:44] = True
    segmenter = tab.models.get(str(tiny_clipseg_dir)).segmenter
    [expected] = segmenter.predict(photo, [VisualPrompt(editor["background"], mask)], 0.5)
    np.testing.assert_allclose(result.probabilities[1] / 255, expected.probabilities, atol=MAP_STEP)
    assert not np.allclose(result.probabilities[0], result.probabilities[1])


def test_split_example_mixed_with_the_first_prompt(tab: InspectTab, tiny_clipseg_dir: Path, photo: Path,
                                                   roots: list[Path]) -> None:
    value = str(roots[0] / "cracks" / "valid")
    *_, result = segment(tab, tiny_clipseg_dir, photo, ["segment crack"], source=DATASET, split=value,
                         index=1, steps=["crop"], alpha=0.5)
    assert result.prompts[1] == "segment crack + img1.png [crop] alpha=0.5"
    example = VisualPrompt.from_split(open_split(value, roots), 1, engineering="crop", text="segment crack",
                                      alpha=0.5)
    segmenter = tab.models.get(str(tiny_clipseg_dir)).segmenter
    [expected] = segmenter.predict(photo, [example], 0.5)
    np.testing.assert_allclose(result.probabilities[1] / 255, expected.probabilities, atol=MAP_STEP)
    status, *outputs = segment(tab, tiny_clipseg_dir, photo, ["segment crack"], source=DATASET,
                               split=value, index=3)
    assert "outside 0…2" in status and outputs == [None] * 5
    status, *outputs = segment(tab, tiny_clipseg_dir, photo, ["segment crack"], source=DRAWN, editor=None)
    assert "no example image" in status and outputs == [None] * 5


def test_lite_says_visual_prompts_need_clipseg(tab: InspectTab, tiny_lite_dir: Path, tiny_clipseg_dir: Path,
                                               photo: Path) -> None:
    assert "need the CLIPSeg backend" in tab.visual.note(str(tiny_lite_dir))
    assert "need the CLIPSeg backend" not in tab.visual.note(str(tiny_clipseg_dir))
    status, *_, result = segment(tab, tiny_lite_dir, photo, ["segment crack"], source=DRAWN,
                                 editor=painted_editor())
    assert "example was skipped" in status and result.prompts == ["segment crack"]
    status, *outputs = segment(tab, tiny_lite_dir, photo, [], source=DRAWN, editor=painted_editor())
    assert "need the CLIPSeg backend" in status and outputs == [None] * 5
    *_, result = segment(tab, tiny_lite_dir, photo, ["segment crack"], source=DRAWN, editor=painted_editor(),
                         alpha=0.0, text="segment hole")           # α = 0 is the text alone: lite runs it
    assert result.prompts == ["segment crack", "segment hole"]


def test_preview_shows_the_engineered_example_or_why_not(tab: InspectTab) -> None:
    editor = painted_editor()
    status, shown = tab.visual.preview(VisualForm(DRAWN, editor, steps=["blur", "darken"]))
    mask = np.zeros((H, W), bool)
    mask[10:30, 20:44] = True
    np.testing.assert_array_equal(shown, engineer(editor["background"][..., :3], mask, "blur+darken"))
    assert "15.6 % marked" in status
    assert tab.visual.preview(VisualForm(OFF, editor)) == ("", None)
    blank = {**editor, "layers": [np.zeros((H, W, 4), np.uint8)]}
    assert "the mask is empty" in tab.visual.preview(VisualForm(DRAWN, blank, steps=["crop"])).status
    assert "no step ticked" in tab.visual.preview(VisualForm(DRAWN, editor, steps=[])).status
    assert "Upload an example image" in tab.visual.preview(VisualForm(DRAWN, None)).status


def test_legend_gives_each_prompts_presence(tab: InspectTab, tiny_lite_dir: Path, photo: Path) -> None:
    _, _, legend, *_, result = segment(tab, tiny_lite_dir, photo, ["segment crack", "segment taping area"])
    predictions = tab.models.get(str(tiny_lite_dir)).segmenter.predict(photo, result.prompts, 0.5)
    for prediction in predictions:                                      # the tiny model has no calibration
        assert describe_presence(prediction.presence, False, found=bool(prediction.mask.any())) in legend


def test_semantic_map_labels_each_pixel_with_its_most_probable_prompt() -> None:
    first, second = np.zeros((10, 12), np.float32), np.zeros((10, 12), np.float32)
    first[:, :4], second[:, :4] = 0.9, 0.6          # both above 0.5: the first wins
    first[:, 4:8], second[:, 4:8] = 0.6, 0.8        # both above 0.5: the second wins
    second[:, 8:] = 0.55                            # only the second, and only below a threshold of 0.7
    result = InspectResult(np.zeros((10, 12, 3), np.uint8), "x", "m", ["segment crack", "segment seam"],
                           [first, second], [0.5, 0.5], 1.0, [0.5, 0.5])
    tab = InspectTab(ModelCache(device="cpu"), [])
    key = tab.results.put(result)
    view = ViewForm(key, tuned=False, opacity=1.0, semantic=True)
    update = tab.semantic(view)
    picture, colors = update["value"], palette(2)
    assert update["visible"] is True and picture.shape[0] >= 10 and picture.shape[1] > 12   # legend on the right
    assert np.all(picture[:10, :4] == colors[0]) and np.all(picture[:10, 4:12] == colors[1])
    picture = tab.semantic(replace(view, threshold=0.7))["value"]
    assert np.all(picture[:10, 4:8] == colors[1]) and np.all(picture[:10, 8:12] == 0)
    assert tab.semantic(replace(view, semantic=False)) == {"__type__": "update", "visible": False, "value": None}


def test_editor_hands_files_over_undecoded_and_bounds_its_canvas_uploads(tmp_path: Path) -> None:
    from types import SimpleNamespace

    import gradio as gr
    from gradio.components.image_editor import EditorData
    from gradio.data_classes import FileData

    from drywall_qa.app.inspect.visual_box import MAX_LAYERS, MAX_PENDING_CANVASES, editor_example, raw_editor

    bomb = tmp_path / "bomb.png"
    Image.new("1", (12000, 12000)).save(bomb)        # 144 MP in a few KB
    editor = raw_editor(gr.ImageEditor(type="filepath", render=False))
    value = editor.preprocess(EditorData(background=FileData(path=str(bomb)), layers=[], composite=None))
    assert value == {"background": str(bomb), "layers": [], "composite": None}
    with pytest.raises(InputError, match="too many pixels"):
        editor_example(value)
    small = tmp_path / "small.png"
    Image.new("RGB", (8, 8)).save(small)
    with pytest.raises(InputError, match=f"{MAX_LAYERS + 1} given, at most {MAX_LAYERS}"):
        editor_example({"background": str(small), "layers": [str(small)] * (MAX_LAYERS + 1)})
    blob = lambda i, index="null": SimpleNamespace(data={"type": "layer", "index": index, "id": f"c{i}"},  # noqa: E731
                                                 files=[("x.png", b"png")])
    with pytest.raises(gr.Error, match="at most"):
        editor.accept_blobs(blob(0, index=str(10 ** 9)))
    for i in range(3 * MAX_PENDING_CANVASES):
        editor.accept_blobs(blob(i, index=str(MAX_LAYERS - 1)))
    assert len(editor.blob_storage) == MAX_PENDING_CANVASES
    assert getattr(editor.accept_blobs, "_is_server_fn", False)
