"""COCO splits → images + union masks, input validation, the dataset registry, and the real valid splits."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils

from drywall_qa.core.errors import InputError
from drywall_qa.data.checks import OUTLINE_LIMIT
from drywall_qa.data.coco import (
    ANNOTATION_FILE,
    DATASETS,
    CocoSplit,
    Sample,
    data_roots,
    get_dataset,
    split_dir,
)

H, W = 20, 30
RNG = np.random.default_rng(1)
REPO = Path(__file__).resolve().parents[2]


def _image(image_id: int, name: str | None = None, height: int = H, width: int = W) -> dict[str, Any]:
    return {"id": image_id, "file_name": name or f"img{image_id}.png", "height": height, "width": width}


def _ann(ann_id: int, image_id: int = 1, segmentation: Any = (), bbox: Any = None) -> dict[str, Any]:
    ann = {"id": ann_id, "image_id": image_id, "category_id": 1, "segmentation": list(segmentation), "iscrowd": 0}
    if isinstance(segmentation, dict):
        ann["segmentation"] = segmentation
    if bbox is not None:
        ann["bbox"] = bbox
    return ann


def _write_split(directory: Path, images: list[dict], annotations: list[dict], *, write_images: bool = True) -> Path:
    """A Roboflow-style split directory: the annotation file plus one PNG per listed image."""
    directory.mkdir(parents=True, exist_ok=True)
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "defect"}]}
    (directory / ANNOTATION_FILE).write_text(json.dumps(coco))
    if write_images:
        for image in images:
            pixels = RNG.integers(0, 256, size=(image["height"], image["width"], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(directory / image["file_name"])
    return directory


def _split(tmp_path: Path, annotations: list[dict], **kwargs: Any) -> CocoSplit:
    return CocoSplit(_write_split(tmp_path / "split", [_image(1)], annotations, **kwargs))


def _uncompressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO's uncompressed RLE: run lengths of the column-major flattening, starting with a run of zeros."""
    flat = mask.flatten(order="F").astype(int)
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0, *counts]
    return {"size": list(mask.shape), "counts": counts}


def test_polygon_mask(tmp_path: Path) -> None:
    split = _split(tmp_path, [_ann(1, segmentation=[[2, 3, 10, 3, 10, 9, 2, 9]])])
    mask = split.mask(0)
    assert mask.shape == (H, W) and mask.dtype == bool
    expected = np.zeros((H, W), dtype=bool)
    expected[3:9, 2:10] = True  # the 8×6 square between the corners
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("compressed", [True, False])
def test_rle_masks(tmp_path: Path, compressed: bool) -> None:
    truth = RNG.random((H, W)) > 0.6
    truth[0, 0] = True  # the uncompressed counts then start with an empty run of zeros
    if compressed:
        rle = mask_utils.encode(np.asfortranarray(truth.astype(np.uint8)))
        segmentation = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
    else:
        segmentation = _uncompressed_rle(truth)
    split = _split(tmp_path, [_ann(1, segmentation=segmentation, bbox=[0, 0, 1, 1])])
    np.testing.assert_array_equal(split.mask(0), truth)


def test_empty_segmentation_becomes_filled_box_clipped_to_image(tmp_path: Path) -> None:
    split = _split(tmp_path, [_ann(1, bbox=[4, 2, 5, 3]), _ann(2, bbox=[-6, 12, 10, 28])])
    expected = np.zeros((H, W), dtype=bool)
    expected[2:5, 4:9] = True
    expected[12:, :4] = True  # x from -6 to 4, y from 12 to 40 → clipped to the image
    np.testing.assert_array_equal(split.mask(0), expected)


def test_mask_is_union_of_polygons_boxes_and_rle(tmp_path: Path) -> None:
    rle_truth = np.zeros((H, W), dtype=bool)
    rle_truth[15:, 20:] = True
    anns = [
        _ann(1, segmentation=[[0, 0, 3, 0, 3, 3, 0, 3], [25, 0, 30, 0, 30, 2, 25, 2]]),
        _ann(2, bbox=[10, 10, 2, 2]),
        _ann(3, segmentation=_uncompressed_rle(rle_truth)),
    ]
    expected = rle_truth.copy()
    expected[:3, :3] = expected[:2, 25:] = expected[10:12, 10:12] = True
    np.testing.assert_array_equal(_split(tmp_path, anns).mask(0), expected)


def test_samples_images_and_unannotated_images(tmp_path: Path) -> None:
    directory = _write_split(
        tmp_path / "split", [_image(7, "a.png"), _image(3, "b.png", 8, 9)], [_ann(1, 7, bbox=[0, 0, 2, 2])]
    )
    split = CocoSplit(directory)
    assert len(split) == 2 and split.image_ids == [7, 3]
    assert split.file_name(1) == "b.png" and split.image_path(1) == directory / "b.png"
    sample = split[1]
    assert isinstance(sample, Sample) and sample.image_id == 3 and sample.file_name == "b.png"
    np.testing.assert_array_equal(sample.image, np.asarray(Image.open(directory / "b.png").convert("RGB")))
    assert sample.mask.shape == (8, 9) and not sample.mask.any()
    assert split[0].mask.sum() == 4
    assert [s.image_id for s in split] == [7, 3]  # iteration stops at the end (IndexError)


def test_explicit_annotation_file(tmp_path: Path) -> None:
    images_dir = _write_split(tmp_path / "images", [_image(1)], [_ann(1, bbox=[0, 0, 3, 3])])
    moved = tmp_path / "labels" / "custom.json"
    moved.parent.mkdir()
    (images_dir / ANNOTATION_FILE).rename(moved)
    split = CocoSplit(images_dir, annotation_file=moved)
    assert split.annotation_file == moved and split.root == images_dir
    assert split[0].image.shape == (H, W, 3) and split.mask(0).sum() == 9
    beside = images_dir / "custom.json"  # a .json path: images are looked up next to it
    beside.write_text(moved.read_text())
    split = CocoSplit(beside)
    assert split.root == images_dir and split[0].mask.sum() == 9


def test_loading_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _split(tmp_path, [_ann(1, bbox=[0, 0, 3, 3])])
    assert capsys.readouterr().out == ""


def test_degenerate_polygons_are_skipped_with_a_warning(tmp_path: Path) -> None:
    good = [0, 0, 4, 0, 4, 4, 0, 4]
    anns = [
        _ann(11, segmentation=[[1, 1, 5, 5]]),  # two points
        _ann(12, segmentation=[[1, 1, 3, 3, 6, 6]]),  # collinear: zero area
        _ann(13, segmentation=[good, [7, 7, 8, 8, 9, 9]]),  # one good polygon survives
        _ann(14, bbox=[40, 0, 5, 5]),  # box entirely outside the image
    ]
    with pytest.warns(UserWarning) as record:
        split = _split(tmp_path, anns)
    messages = " ".join(str(w.message) for w in record)
    assert str(split.annotation_file) in messages
    for ann_id in (11, 12, 13, 14):
        assert f"annotation {ann_id} " in messages
    assert split.skipped_annotations == 3  # 11, 12, 14
    assert split.skipped_polygons == 3  # those of 11, 12 and 13
    expected = np.zeros((H, W), dtype=bool)
    expected[:4, :4] = True
    np.testing.assert_array_equal(split.mask(0), expected)


def test_annotation_for_unknown_image_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"annotations\[1\] \(id 5\).*image_id 99") as info:
        _split(tmp_path, [_ann(4, bbox=[0, 0, 1, 1]), _ann(5, image_id=99, bbox=[0, 0, 1, 1])])
    assert ANNOTATION_FILE in str(info.value)


def test_duplicate_annotation_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="duplicate annotation id 4"):
        _split(tmp_path, [_ann(4, bbox=[0, 0, 1, 1]), _ann(4, bbox=[2, 2, 1, 1])])


def test_missing_image_is_reported_when_loaded(tmp_path: Path) -> None:
    split = _split(tmp_path, [_ann(1, bbox=[0, 0, 1, 1])], write_images=False)
    assert split.mask(0).sum() == 1  # the annotation file alone is enough for masks
    with pytest.raises(InputError, match=r"img1\.png.*missing") as info:
        split[0]
    assert ANNOTATION_FILE in str(info.value)


def test_truncated_listed_image_is_refused(tmp_path: Path) -> None:
    directory = _write_split(tmp_path / "split", [_image(1, "photo.jpg")], [], write_images=False)
    buffer = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, size=(H, W, 3), dtype=np.uint8)).save(buffer, "JPEG")
    (directory / "photo.jpg").write_bytes(buffer.getvalue()[:-40])
    with pytest.raises(InputError, match=r"photo\.jpg.*truncated"):
        CocoSplit(directory).load_image(0)


def test_image_size_disagreeing_with_annotation_file_is_refused(tmp_path: Path) -> None:
    directory = _write_split(tmp_path / "split", [_image(1)], [])
    Image.new("RGB", (W + 1, H)).save(directory / "img1.png")
    with pytest.raises(InputError, match=r"img1\.png.*31×20.*30×20"):
        CocoSplit(directory)[0]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "malformed JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"annotations": []}', 'missing the "images" list'),
        ('{"images": []}', 'missing the "annotations" list'),
        ('{"images": {}, "annotations": []}', '"images" is not a list'),
        ('{"images": [{"id": 1, "height": 2, "width": 2}], "annotations": []}', 'missing "file_name"'),
        ('{"images": [{"file_name": "a.png", "height": 2, "width": 2}], "annotations": []}', 'missing "id"'),
        ('{"images": [{"id": 1, "file_name": "a.png", "width": 2}], "annotations": []}', 'missing "height"'),
        ('{"images": [{"id": "1", "file_name": "a", "height": 2, "width": 2}], "annotations": []}', "integer"),
        ('{"images": [{"id": 1, "file_name": "a\\u0000.png", "height": 2, "width": 2}], "annotations": []}', "NUL"),
        ("[" * 100_000, "malformed JSON"),  # nested too deeply for the parser
        ('{"images": [], "annotations": [], "n": ' + "1" * 5000 + "}", "malformed JSON"),  # over 4300 digits
    ],
)
def test_malformed_annotation_files_are_refused(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / ANNOTATION_FILE
    path.write_text(content)
    with pytest.raises(InputError, match=problem) as info:
        CocoSplit(tmp_path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("ann", "problem"),
    [
        ({"id": 1, "segmentation": [], "bbox": [0, 0, 1, 1]}, 'missing "image_id"'),
        ({"image_id": 1, "segmentation": [], "bbox": [0, 0, 1, 1]}, 'missing "id"'),
        ({"id": 1, "image_id": 1, "segmentation": []}, 'no "bbox"'),
        ({"id": 1, "image_id": 1, "segmentation": [], "bbox": [0, 0, 1]}, "bbox must be"),
        ({"id": 1, "image_id": 1, "segmentation": [[0, 0, 1, "a", 2, 2]]}, "finite numbers"),
        ({"id": 1, "image_id": 1, "segmentation": [[0, 0, 4, 0, 4]]}, "odd number"),
        ({"id": 1, "image_id": 1, "segmentation": {"size": [2, 2], "counts": [4]}}, "RLE size"),
        ({"id": 1, "image_id": 1, "segmentation": {"size": [H, W], "counts": [3, 4]}}, "do not add up"),
        ({"id": 1, "image_id": 1, "segmentation": [[10**400, 0, 4, 0, 4, 4]]}, "item 0 is a number of 401 digits"),
        ({"id": 1, "image_id": 1, "segmentation": {"size": [20.0, 30.0], "counts": [600]}}, r"RLE size \[20\.0, 30"),
        ({"id": 1, "image_id": 1, "segmentation": {"size": [H, W], "counts": [0.5, 599.5]}}, "non-negative integers"),
    ],
)
def test_malformed_annotations_are_refused(tmp_path: Path, ann: dict, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as info:
        _split(tmp_path, [ann])
    assert f"{ANNOTATION_FILE}: annotations[0]" in str(info.value)


SECRET = "password=hunter2;"


@pytest.mark.parametrize(
    ("ann", "described"),
    [
        ({"id": SECRET, "image_id": 1, "bbox": [0, 0, 1, 1]}, '"id" must be an integer, got a string of 17 characters'),
        ({"id": 1, "image_id": 1, "segmentation": [[0, 0, 4, SECRET, 4, 4]]}, "item 3 is a string of 17 characters"),
        ({"id": 1, "image_id": 1, "segmentation": [], "bbox": {"x": SECRET}}, "got an object with 1 keys"),
        ({"id": 1, "image_id": 1, "segmentation": [], "bbox": [0, 0, 1, 1, 2]}, "got a list of 5 items"),
        ({"id": 1, "image_id": 1, "segmentation": {"size": [SECRET], "counts": "1"}}, "RLE size a list of 1 items"),
    ],
)
def test_errors_describe_bad_values_without_echoing_them(tmp_path: Path, ann: dict, described: str) -> None:
    with pytest.raises(InputError) as info:
        _split(tmp_path, [ann])
    assert described in str(info.value) and "hunter2" not in str(info.value)


def test_points_within_one_image_size_outside_are_clipped_farther_ones_refused(tmp_path: Path) -> None:
    widest = [-W, -H, 2 * W, -H, 2 * W, 2 * H, -W, 2 * H]  # the image grown by its size on each side
    split = _split(tmp_path / "a", [_ann(1, segmentation=[widest]), _ann(2, bbox=[-W, -H, 3 * W, 3 * H])])
    assert split.mask(0).all()
    polygon = r"annotations\[0\] \(id 1\): segmentation polygon point \(61, 5\) lies far outside the 30×20 image"
    with pytest.raises(InputError, match=polygon + r" \(allowed: x from -30 to 60, y from -20 to 40\)"):
        _split(tmp_path / "b", [_ann(1, segmentation=[[0, 0, 10, 0, 61, 5]])])
    with pytest.raises(InputError, match=r"annotations\[0\] \(id 1\): bbox corner \(-1, -21\) lies far outside"):
        _split(tmp_path / "c", [_ann(1, bbox=[-1, -21, 5, 5])])


def test_outline_limit_counts_every_polygon_and_box_of_an_image(tmp_path: Path) -> None:
    per_box = 2 * (W + H)  # a box over the whole image, as pycocotools walks its outline
    fits = OUTLINE_LIMIT * (W + H) // per_box
    boxes = [_ann(k, bbox=[0, 0, W, H]) for k in range(fits)]
    other_image = [_ann(100 + k, image_id=2, bbox=[0, 0, W, H]) for k in range(fits)]
    images = [_image(1), _image(2)]
    assert CocoSplit(_write_split(tmp_path / "a", images, boxes + other_image, write_images=False)).mask(1).all()
    triangle = W + H + max(W, H)  # its diagonal edge counts its longer side
    with pytest.raises(InputError, match=rf"annotations\[{fits}\] \(id 7\): the polygons and boxes of image 1 "
                       rf"trace {fits * per_box + triangle:,} pixels of outline, over the limit of {fits * per_box:,}"):
        CocoSplit(_write_split(tmp_path / "b", images, boxes + [_ann(7, segmentation=[[0, 0, W, 0, W, H]])],
                               write_images=False))


def test_compressed_rle_with_long_runs(tmp_path: Path) -> None:
    truth = np.zeros((300, 400), dtype=bool)
    truth[150, 390:] = truth[299, :] = True  # runs of 10, 60,000 and 59,590 pixels: 3- and 4-character values
    rle = mask_utils.encode(np.asfortranarray(truth.astype(np.uint8)))
    segmentation = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
    directory = _write_split(tmp_path / "split", [_image(1, height=300, width=400)],
                             [_ann(1, segmentation=segmentation)], write_images=False)
    np.testing.assert_array_equal(CocoSplit(directory).mask(0), truth)


#: loads a split and draws its first mask in a fresh process with memory capped at 4 GiB, so a crash in
#: pycocotools shows as a return code instead of killing pytest; an InputError exits 2 with its one-line message
LOAD_AND_DRAW = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
from drywall_qa.data.coco import CocoSplit
from drywall_qa.core.errors import InputError
try:
    CocoSplit(sys.argv[1]).mask(0)
except InputError as err:
    print(err, file=sys.stderr)
    sys.exit(2)
"""


def _comb(teeth: int, size: int) -> list[float]:
    """A polygon zigzagging across a ``size``-wide image ``teeth`` times: a long outline from few points."""
    points = [c for k in range(teeth) for c in (size * (k % 2), k * size / teeth)]
    return [*points, -10, size, -10, 0]


@pytest.mark.parametrize(
    ("image", "ann", "message"),
    [
        pytest.param({}, {"segmentation": [[0, 0, 4e8, 0, 4e8, 4e8]]},
                     "annotations[0] (id 7): segmentation polygon point (4e+08, 0) lies far outside the 30×20 image",
                     id="polygon-segfault"),
        pytest.param({"width": 60000, "height": 60000}, {"segmentation": [[0, 0, 10, 0, 10, 10]]},
                     "images[0]: 60000×60000 = 3,600,000,000 pixels is over the limit of 50,000,000", id="huge-image"),
        pytest.param({}, {"bbox": [0, 0, 4e8, 4e8]}, "annotations[0] (id 7): bbox corner (4e+08, 4e+08)", id="box"),
        pytest.param({}, {"segmentation": {"size": [H, W], "counts": [-5, 605]}},
                     "annotations[0] (id 7): RLE counts must be non-negative integers", id="negative-run"),
        pytest.param({}, {"segmentation": {"size": [H, W], "counts": "~~~~~~~"}},  # pycocotools: garbage mask
                     "annotations[0] (id 7): compressed RLE counts are not a valid COCO RLE string", id="rle-chars"),
        pytest.param({}, {"segmentation": {"size": [H, W], "counts": "00000o"}},  # ends inside a value
                     "annotations[0] (id 7): compressed RLE counts are not a valid COCO RLE string", id="rle-cut"),
        pytest.param({"width": 640, "height": 640}, {"segmentation": [_comb(400, 640)]},
                     "annotations[0] (id 7): the polygons and boxes of image 1 trace 256,660 pixels of outline",
                     id="outline"),
    ],
)
def test_hostile_annotation_files_are_refused_before_drawing(tmp_path: Path, image: dict, ann: dict,
                                                             message: str) -> None:
    ann = {"id": 7, "image_id": 1, "category_id": 1, "segmentation": [], **ann}
    directory = _write_split(tmp_path / "split", [{**_image(1), **image}], [ann], write_images=False)
    result = subprocess.run([sys.executable, "-c", LOAD_AND_DRAW, str(directory)], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"{directory / ANNOTATION_FILE}: {message}")


def test_missing_annotation_file_and_split_hint(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such directory"):
        CocoSplit(tmp_path / "absent")
    with pytest.raises(InputError, match="annotation file not found"):
        CocoSplit(tmp_path / "absent.json")
    _write_split(tmp_path / "valid", [_image(1)], [])
    with pytest.raises(InputError, match=f"no {ANNOTATION_FILE}.*pick a split: valid"):
        CocoSplit(tmp_path)


def test_dataset_registry() -> None:
    assert set(DATASETS) == {"taping", "cracks"}
    assert get_dataset("cracks").canonical == "segment crack"
    assert get_dataset("taping").canonical == "segment taping area"
    assert all(spec.canonical == spec.prompts[0] for spec in DATASETS.values())
    with pytest.raises(InputError, match="cracks, taping"):
        get_dataset("walls")
    assert split_dir(Path("root"), "taping", "valid") == Path("root/drywall-join-detect/valid")


def test_data_roots_from_environment_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "work" / "data"
    first.mkdir()
    second.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("DRYWALL_QA_DATA", f"{first}{os.pathsep}{tmp_path / 'absent'}")
    roots = data_roots()
    assert [r.resolve() for r in roots] == [first.resolve(), second.resolve()]


polygons = st.lists(st.integers(-5, 35), min_size=6, max_size=12).filter(lambda c: len(c) % 2 == 0)
boxes = st.lists(st.integers(-10, 20), min_size=4, max_size=4)  # corners within one image size
shape_lists = st.lists(st.one_of(polygons.map(lambda p: ("poly", p)), boxes.map(lambda b: ("box", b))), max_size=5)


@settings(max_examples=25, deadline=None)
@given(shapes=shape_lists)
def test_mask_is_or_of_single_annotation_masks(shapes: list[tuple[str, list[int]]]) -> None:
    anns = [
        _ann(k, segmentation=[coords]) if kind == "poly" else _ann(k, bbox=coords)
        for k, (kind, coords) in enumerate(shapes)
    ]
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate shapes are skipped alike in both
        union = _split(Path(tmp) / "all", anns, write_images=False).mask(0)
        expected = np.zeros((H, W), dtype=bool)
        for k, ann in enumerate(anns):
            expected |= _split(Path(tmp) / str(k), [ann], write_images=False).mask(0)
    np.testing.assert_array_equal(union, expected)


@pytest.mark.parametrize(("dataset", "images", "annotations"), [("taping", 133, 202), ("cracks", 100, 167)])
def test_real_valid_splits(data_root: Path, dataset: str, images: int, annotations: int) -> None:
    split = CocoSplit(split_dir(data_root, dataset, "valid"))
    assert len(split) == images
    assert len(split.coco.anns) + split.skipped_annotations == annotations
    for i in range(len(split)):
        has_annotations = bool(split.coco.getAnnIds(imgIds=[split.image_ids[i]]))
        sample = split[i]
        assert sample.image.shape == (640, 640, 3) and sample.mask.shape == (640, 640)
        assert sample.mask.any() == has_annotations


def test_data_tests_skip_for_a_folder_without_the_splits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import conftest

    for folder in ("drywall-join-detect", "cracks"):
        (tmp_path / "data" / folder / "images").mkdir(parents=True)      # dataset folders, but no train/valid split
    monkeypatch.setenv("DRYWALL_QA_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(conftest, "REPO", tmp_path / "repo")           # no ../shared/data beside it either
    root, reason = conftest._real_data_root()
    assert root is None and "lacks drywall-join-detect/train" in reason and "cracks/valid" in reason


def test_an_oversized_annotation_file_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from drywall_qa.data import checks as coco_checks

    folder = tmp_path / "split"
    folder.mkdir()
    (folder / ANNOTATION_FILE).write_text('{"images": [], "annotations": []}' + " " * 2000)
    monkeypatch.setattr(coco_checks, "MAX_ANNOTATION_BYTES", 1000)
    monkeypatch.setattr(Path, "read_text", lambda *a, **k: pytest.fail("the file was read"))
    with pytest.raises(InputError, match=r"over the 0 MB an annotation file may have"):
        CocoSplit(folder)
