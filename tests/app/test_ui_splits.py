"""Data-split access for the app: discovery, and refusal of every path outside the data roots."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

from drywall_qa.core.errors import InputError
from drywall_qa.data.coco import DATASETS
from drywall_qa.data.discovery import (
    ConfinedSplit,
    dataset_name,
    discover_splits,
    open_split,
    resolve_split,
    split_prompts,
    within,
)
from tests.helpers import make_split


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_split(tmp_path / "data" / "cracks" / "train", n=2)
    make_split(tmp_path / "data" / "cracks" / "valid", n=2)
    return tmp_path / "data"


def test_discovers_splits_held_out_first(root: Path) -> None:
    values = [Path(value) for _, value in discover_splits([root])]
    assert values == [root / "cracks" / "valid", root / "cracks" / "train"]


def test_a_root_that_is_itself_a_split_is_found(root: Path) -> None:
    [(label, value)] = discover_splits([root / "cracks" / "valid"])
    assert Path(value) == root / "cracks" / "valid" and label == "valid  (valid)"
    labels = [label for label, _ in discover_splits([root])]
    assert "cracks/valid  (data)" in labels and not any(str(root.parent) in label for label in labels)


@pytest.mark.parametrize("crafted", ["{root}/cracks/valid/../../..", "{outside}", "/etc", "{root}/../outside_split"])
def test_paths_outside_the_roots_are_refused(root: Path, tmp_path: Path, crafted: str) -> None:
    outside = make_split(tmp_path / "outside_split")
    with pytest.raises(InputError, match="outside the configured data folders"):
        resolve_split(crafted.format(root=root, outside=outside), [root])


def test_symlink_out_of_a_root_is_refused(root: Path, tmp_path: Path) -> None:
    outside = make_split(tmp_path / "elsewhere")
    (root / "cracks" / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InputError, match="outside"):
        resolve_split(str(root / "cracks" / "linked"), [root])
    with pytest.raises(InputError, match="outside"):
        ConfinedSplit(root / "cracks" / "linked", [root])
    offered = [Path(value) for _, value in discover_splits([root])]
    assert offered == [root / "cracks" / "valid", root / "cracks" / "train"]


def _secret_annotations(path: Path) -> Path:
    """A COCO file outside the roots whose first polygon holds text: an error quoting the polygon would leak it."""
    document = {"images": [{"id": 1, "file_name": "a.png", "width": 4, "height": 4}],
                "annotations": [{"id": 1, "image_id": 1, "segmentation": [["TOP-SECRET token 1234", 0, 1, 1]]}]}
    path.write_text(json.dumps(document))
    return path


def test_annotation_file_linked_out_of_a_root_is_refused_unread(root: Path, tmp_path: Path) -> None:
    secret = _secret_annotations(tmp_path / "secret.json")
    linked = root / "cracks" / "linked"
    linked.mkdir()
    (linked / "_annotations.coco.json").symlink_to(secret)
    assert str(linked) not in [value for _, value in discover_splits([root])]
    for attempt in (resolve_split, open_split, lambda value, roots: ConfinedSplit(Path(value), roots)):
        with pytest.raises(InputError, match=r"coco\.json: is outside the configured data folders") as info:
            attempt(str(linked), [root])
        assert "SECRET" not in str(info.value) and str(secret) not in str(info.value)


def test_annotation_file_linked_inside_the_roots_is_read(root: Path) -> None:
    alias = root / "cracks" / "alias"
    alias.mkdir()
    (alias / "_annotations.coco.json").symlink_to(root / "cracks" / "valid" / "_annotations.coco.json")
    assert str(alias) in [value for _, value in discover_splits([root])]
    assert len(open_split(str(alias), [root])) == 2


def test_errors_quote_no_text_of_the_file_read(tmp_path: Path) -> None:
    split = tmp_path / "data" / "split"
    split.mkdir(parents=True)
    _secret_annotations(split / "_annotations.coco.json")
    with pytest.raises(InputError, match="item 0 is a string of 21 characters") as info:
        open_split(str(split), [tmp_path / "data"])
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize(("tail", "problem"), [("a\0b", "NUL character"), ("a" * 300, "cannot be read"),
                                               ("a/" * 3000, "cannot be read")])
def test_crafted_values_get_one_short_line(root: Path, tail: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as info:
        resolve_split(f"{root}/{tail}", [root])
    assert len(str(info.value)) < 300 and "\n" not in str(info.value)


def test_inside_a_root_but_not_a_split(root: Path) -> None:
    with pytest.raises(InputError, match="_annotations.coco.json"):
        resolve_split(str(root / "cracks"), [root])


def test_no_roots_or_no_choice_say_what_to_do(root: Path) -> None:
    with pytest.raises(InputError, match="--data-root"):
        resolve_split(str(root / "cracks" / "valid"), [])
    with pytest.raises(InputError, match="no split chosen"):
        resolve_split(None, [root])


def test_image_file_name_escaping_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    split = root / "cracks" / "valid"
    Image.new("RGB", (64, 64)).save(tmp_path / "secret.png")
    document = json.loads((split / "_annotations.coco.json").read_text())
    document["images"][0]["file_name"] = "../../../secret.png"
    (split / "_annotations.coco.json").write_text(json.dumps(document))
    confined = ConfinedSplit(split, [root])
    with pytest.raises(InputError, match="outside the configured data folders"):
        confined[0]
    assert confined[1].image.shape == (64, 64, 3)


def test_open_split_rereads_a_changed_annotation_file(root: Path) -> None:
    value = str(root / "cracks" / "valid")
    assert len(open_split(value, [root])) == 2
    make_split(root / "cracks" / "valid", n=3)
    assert len(open_split(value, [root])) == 3


def test_split_prompts_follow_the_dataset_folder(root: Path, tmp_path: Path) -> None:
    assert split_prompts(str(root / "cracks" / "valid"), [root]) == list(DATASETS["cracks"].prompts)
    other = make_split(tmp_path / "other" / "unknown" / "valid")
    assert split_prompts(str(other), [tmp_path / "other"]) == []
    assert split_prompts(str(other), [root]) == []          # outside: no prompts, no exception


def test_dataset_name_maps_the_folder_to_the_registry(tmp_path: Path) -> None:
    taping = make_split(tmp_path / "drywall-join-detect" / "valid", n=1)
    assert dataset_name(ConfinedSplit(taping, [tmp_path])) == "taping"
    assert split_prompts(str(taping), [tmp_path]) == list(DATASETS["taping"].prompts)


def test_within_resolves_dot_dot(root: Path) -> None:
    assert within(root / "cracks" / "valid", [root])
    assert not within(root / "cracks" / ".." / "..", [root])


def test_image_sliders_stop_at_the_split_size(root: Path) -> None:
    """Review and Evaluate offer 1 to the split's size (at most the app's cap), the value kept within."""
    from drywall_qa.app.widgets import image_limit_input, image_limits

    valid = str(root / "cracks" / "valid")
    assert image_limits(valid, 20, [root], 2000) == {"maximum": 2, "value": 2,
                                                     "info": "the first N of the split's 2 images"}
    assert image_limits(valid, 1, [root], 1)["info"] == "the first N of the split's 2 images; at most 1 here"
    assert image_limits(str(root / "missing"), 20, [root], 2000) == {}
    with gr.Blocks() as demo:
        slider = image_limit_input([("valid", valid)], [root], 2000, 20, "Images", "limit")
    assert (slider.minimum, slider.maximum) == (1, 2000)       # an API client may name a larger split
    [on_load] = [fn for fn in demo.fns.values() if fn.targets[0][1] == "load"]
    assert on_load.fn(20) == {"__type__": "update", "maximum": 2, "value": 2,
                              "info": "the first N of the split's 2 images"}
