"""The bad-input matrix: each kind of bad input gets a clear message from the Python API, the CLIs and the app, and
the running app keeps serving. Rows already covered elsewhere are listed here and not repeated:

* truncated / empty / non-image files, ``bytes`` uploads: ``test_imaging.py`` (``test_truncated_jpeg_is_refused``,
  ``test_missing_and_empty_files_name_the_file``, ``test_text_file_renamed_to_jpg_is_refused``) and the Inspect tab
  (``test_ui_inspect.py::test_bad_uploads_give_a_message_naming_the_file``);
* decompression bombs, header-only PNGs of 56 M … 10 G pixels: ``test_imaging.py::
  test_oversized_images_are_refused_before_decoding``;
* grayscale / RGBA / palette / CMYK / 16-bit / 32-bit / EXIF orientation, decoded: ``test_imaging.py``;
* empty and whitespace prompts: ``test_segmenter.py::test_empty_prompts_are_refused``, ``test_ui_inspect.py::
  test_missing_image_prompts_or_model_give_messages`` (also more than 8 prompts in the app);
* control characters, duplicates and over-long prompts in the app: ``test_ui_inspect.py::
  test_prompts_are_cleaned_deduplicated_and_capped``; prompt text in HTML:
  ``test_ui_inspect.py::test_prompt_text_is_escaped_in_the_legend``;
* malformed COCO JSON, unknown image ids, listed images missing on disk: ``test_data.py``
  (``test_malformed_annotation_files_are_refused``, ``test_annotation_for_unknown_image_is_refused``,
  ``test_missing_image_is_reported_when_loaded``) and ``test_evaluate.py::test_cli_malformed_json``;
* paths outside the data roots (``..``, symlinks, crafted ``file_name``): ``test_ui_splits.py``, and through the
  tabs in ``test_ui_review.py`` / ``test_ui_evaluate.py``.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drywall_qa.app.inspect.tab import InspectForm, InspectTab
from drywall_qa.app.models import ModelCache
from drywall_qa.app.review.forms import ScoreForm
from drywall_qa.app.review.tab import ReviewTab
from drywall_qa.cli.predict import main as predict_main
from drywall_qa.core.errors import InputError
from drywall_qa.core.imaging import MAX_PIXELS, load_image
from drywall_qa.core.segmenter import MAX_PROMPTS, Segmenter
from drywall_qa.testing.app_server import AppServer, serve_app
from tests.helpers import make_split, png_header_only

RNG = np.random.default_rng(11)
#: images in the server's split: enough that Stop and cancel usually land while an evaluation runs
SERVER_IMAGES = 120
PROMPT = ["segment crack"]
#: about 150 characters: within the app's 200-character cut, but more than CLIP's 77 tokens (the tiny CLIPSeg
#: tokenizer spells one token per character)
LONG_PROMPT = "segment the long hairline crack " + "that runs along the taped seam " * 4


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache(device="cpu")


@pytest.fixture(scope="module")
def lite(tiny_lite_dir: Path) -> Segmenter:
    return Segmenter.load(tiny_lite_dir, device="cpu")


@pytest.fixture(scope="module")
def clipseg(tiny_clipseg_dir: Path) -> Segmenter:
    return Segmenter.load(tiny_clipseg_dir, device="cpu")


def inspect(models: ModelCache, key: Path, image: Path, selected=PROMPT, typed: str = "") -> tuple:
    return InspectTab(models, []).run(InspectForm(model=str(key), image=str(image), selected=selected, typed=typed))


def noise(height: int, width: int) -> np.ndarray:
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


# --- images ---------------------------------------------------------------------------------------------------


def test_corrupt_png_data_is_refused_by_api_and_app(models: ModelCache, tiny_lite_dir: Path, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(noise(40, 40)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    start = data.index(b"IDAT") + 20
    data[start:start + 64] = bytes(64)            # compressed pixel data overwritten, length and header intact
    path = tmp_path / "scrambled.png"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="scrambled.png.*truncated or corrupt"):
        load_image(path)
    status, *outputs = inspect(models, tiny_lite_dir, path)
    assert status.startswith("**Error:**") and "scrambled.png" in status and "corrupt" in status
    assert outputs == [None] * 5


def test_decompression_bomb_upload_names_the_limit(models: ModelCache, tiny_lite_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(20_000, 20_000))
    status, *_ = inspect(models, tiny_lite_dir, path)
    assert "bomb.png" in status and "too many pixels" in status and f"{MAX_PIXELS:,}" in status


@pytest.mark.parametrize("shape", [(1, 1), (1, 4000), (4000, 1), (3, 2)])
def test_tiny_and_thin_images_segment_at_their_own_size(lite: Segmenter, clipseg: Segmenter,
                                                        shape: tuple[int, int]) -> None:
    image = noise(*shape)
    for segmenter in (lite, clipseg):
        [prediction] = segmenter.predict(image, PROMPT)
        assert prediction.mask.shape == shape and prediction.probabilities.shape == shape
        assert np.isfinite(prediction.probabilities).all()


@pytest.mark.parametrize("shape", [(1, 1), (1, 4000), (4000, 1)])
def test_tiny_and_thin_uploads_render_and_download_at_input_size(models: ModelCache, tiny_lite_dir: Path,
                                                                 tmp_path: Path, shape: tuple[int, int]) -> None:
    path = tmp_path / "thin.png"
    Image.fromarray(noise(*shape)).save(path)
    status, shown, legend, tiles, files = inspect(models, tiny_lite_dir, path)[:5]
    height, width = shape
    assert f"({width}×{height})" in status and "Error" not in status
    assert max(shown.shape[:2]) <= 1024 and min(shown.shape[:2]) >= 1
    [mask_png] = [f for f in files if f.endswith(".png")]
    assert Image.open(mask_png).size == (width, height)


def _encoded(kind: str) -> tuple[bytes, tuple[int, int]]:
    """A 24×40 (h×w) image stored as ``kind``; returns the file and the size the user sees, (h, w)."""
    rgb = noise(24, 40)
    buffer, options = io.BytesIO(), {}
    image = {"grayscale": Image.fromarray(rgb[..., 0]), "rgba": Image.fromarray(rgb).convert("RGBA"),
             "16-bit": Image.fromarray(rgb[..., 0].astype(np.uint16) * 257),
             "cmyk": Image.fromarray(rgb).convert("CMYK"), "exif-rotated": Image.fromarray(rgb),
             "palette": Image.fromarray(rgb).convert("P")}[kind]
    if kind == "exif-rotated":
        exif = Image.Exif()
        exif[0x0112] = 6                      # "rotate 90° clockwise to display": the user sees it 40 high
        options["exif"] = exif
    image.save(buffer, "JPEG" if kind in {"cmyk", "exif-rotated"} else "PNG", **options)
    return buffer.getvalue(), ((40, 24) if kind == "exif-rotated" else (24, 40))


@pytest.mark.parametrize("kind", ["grayscale", "rgba", "16-bit", "cmyk", "exif-rotated", "palette"])
def test_image_modes_upload_like_rgb_at_their_displayed_size(models: ModelCache, tiny_lite_dir: Path,
                                                             tmp_path: Path, kind: str) -> None:
    data, (height, width) = _encoded(kind)
    path = tmp_path / f"{kind}.img"
    path.write_bytes(data)
    status, shown, _, tiles, files = inspect(models, tiny_lite_dir, path)[:5]
    assert f"({width}×{height})" in status and "Error" not in status
    assert shown.shape == (height, width, 3) and tiles[0][0].size == (width, height)
    [mask_png] = [f for f in files if f.endswith(".png")]
    assert Image.open(mask_png).size == (width, height)


# --- prompts --------------------------------------------------------------------------------------------------


def test_control_and_format_characters_are_stripped_by_the_api(lite: Segmenter) -> None:
    image = noise(16, 16)
    [dirty] = lite.predict(image, ["segment\x00 \x1b[31mcrack\u200b\t"])
    [clean] = lite.predict(image, ["segment [31mcrack"])
    assert dirty.prompt == "segment [31mcrack"
    np.testing.assert_array_equal(dirty.probabilities, clean.probabilities)
    with pytest.raises(InputError, match=r"prompts\[0\].*empty prompt"):
        lite.predict(image, ["\x00\u200b\x1b \n"])


def test_unicode_prompts_run_on_both_backends(lite: Segmenter, clipseg: Segmenter) -> None:
    prompts = ["segment 裂缝", "сегмент трещина", "segment crack 🧱🔨", "تشقق الجدار", "e\u0301 combining accents",
               "Ω" * 60]
    for segmenter in (lite, clipseg):
        predictions = segmenter.predict(noise(20, 24), prompts)
        assert [p.prompt for p in predictions] == prompts
        assert all(p.mask.shape == (20, 24) and np.isfinite(p.probabilities).all() for p in predictions)


def test_prompts_over_the_token_limit_are_read_up_to_it_and_flagged(lite: Segmenter, clipseg: Segmenter) -> None:
    image = noise(16, 16)
    for segmenter in (lite, clipseg):
        limit = segmenter.backend.max_prompt_tokens
        words = limit - segmenter.backend.tokenizer.num_special_tokens_to_add()    # one token per "a"
        fits, huge = " ".join(["a"] * words), " ".join(["a"] * (2 * limit))
        start, whole = segmenter.predict(image, [fits, huge])
        assert not start.truncated and whole.truncated
        assert segmenter.truncated([huge, fits]) == [True, False]
        np.testing.assert_allclose(whole.probabilities, start.probabilities, atol=1e-6)


def test_token_limits_fit_the_text_encoders(lite: Segmenter, clipseg: Segmenter) -> None:
    assert clipseg.backend.max_prompt_tokens == clipseg.backend.model.config.text_config.max_position_embeddings
    encoder = lite.backend.text_encoder
    assert lite.backend.max_prompt_tokens <= encoder.model.config.max_position_embeddings


def test_app_says_when_a_prompt_is_truncated(models: ModelCache, tiny_clipseg_dir: Path, tiny_lite_dir: Path,
                                             tmp_path: Path) -> None:
    path = tmp_path / "wall.png"
    Image.fromarray(noise(32, 32)).save(path)
    status, *_ = inspect(models, tiny_clipseg_dir, path, selected=[], typed=LONG_PROMPT)
    assert "77-token limit" in status and "only its start was used" in status
    status, *_ = inspect(models, tiny_lite_dir, path, selected=[], typed=LONG_PROMPT)   # 512 tokens: not cut
    assert "token limit" not in status


def test_dozens_of_prompts_are_capped_in_the_api(lite: Segmenter) -> None:
    image = noise(16, 16)
    prompts = [f"segment thing {i}" for i in range(MAX_PROMPTS + 1)]
    assert len(lite.predict(image, prompts[:MAX_PROMPTS])) == MAX_PROMPTS
    with pytest.raises(InputError, match=f"{MAX_PROMPTS + 1} prompts given, at most {MAX_PROMPTS}"):
        lite.predict(image, prompts)


@pytest.fixture
def cli(clipseg: Segmenter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``drywall-qa predict wall.png --prompts …`` on the loaded tiny CLIPSeg: ``(exit code, stderr,
    predictions.json or None)``."""
    monkeypatch.setattr("drywall_qa.core.segmenter.Segmenter.load", lambda *args, **kwargs: clipseg)
    image, out = tmp_path / "wall.png", tmp_path / "out"
    Image.fromarray(noise(24, 24)).save(image)

    def run(*prompts: str) -> tuple[int, str, dict | None]:
        rc = predict_main([str(image), "--prompts", *prompts, "--out", str(out)])
        report = out / "predictions.json"
        return rc, capsys.readouterr().err, json.loads(report.read_text()) if report.is_file() else None
    return run


def test_predict_cli_reports_truncation(cli) -> None:
    rc, err, report = cli("segment crack", LONG_PROMPT)
    assert rc == 0 and "77-token limit" in err
    assert [p["truncated"] for p in report["predictions"]] == [False, True]


@pytest.mark.parametrize(("prompts", "message"), [
    ([f"segment thing {i}" for i in range(MAX_PROMPTS + 1)], f"at most {MAX_PROMPTS}"),
    (["segment crack", " \t"], "prompts[1]: empty prompt"),
    (["\x00\u200b"], "prompts[0]: empty prompt"),
])
def test_predict_cli_refuses_too_many_or_blank_prompts(cli, prompts: list[str], message: str) -> None:
    rc, err, report = cli(*prompts)
    assert rc == 2 and message in err and report is None


# --- data -----------------------------------------------------------------------------------------------------


@pytest.fixture
def review(models: ModelCache, tmp_path: Path) -> ReviewTab:
    return ReviewTab(models, [tmp_path / "data"], tmp_path / "out")


def score(tab: ReviewTab, key: Path, split: Path) -> tuple:
    return tab.score(ScoreForm(model=str(key), split=str(split), selected=PROMPT, limit=5),
                     progress=lambda *a, **k: None)


def test_review_of_a_malformed_annotation_file_says_so(review: ReviewTab, tiny_lite_dir: Path) -> None:
    split = make_split(review.roots[0] / "cracks" / "valid", n=2)
    (split / "_annotations.coco.json").write_text('{"images": [1, 2')
    status, table, _, session, *_ = score(review, tiny_lite_dir, split)
    assert "_annotations.coco.json" in status and "malformed JSON" in status
    assert table is None and session is None


def test_review_of_a_split_with_a_missing_image_names_it(review: ReviewTab, tiny_lite_dir: Path) -> None:
    split = make_split(review.roots[0] / "cracks" / "valid", n=3)
    (split / "img1.png").unlink()
    status, table, *_ = score(review, tiny_lite_dir, split)
    assert status.startswith("**Error:**") and "img1.png" in status and table is None


# --- the running app ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tiny_lite_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    root = tmp_path_factory.mktemp("server")
    make_split(root / "data" / "cracks" / "valid", n=SERVER_IMAGES, size=32)
    with serve_app(tiny_lite_dir, root, roots=[root / "data"]) as app:
        yield app


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("uploads")
    good = io.BytesIO()
    Image.fromarray(noise(64, 64)).save(good, "JPEG")
    contents = {"good.jpg": good.getvalue(), "empty.jpg": b"", "notes.jpg": b"meeting notes, not a photo",
                "cut.jpg": good.getvalue()[:700], "bomb.png": png_header_only(30_000, 30_000)}
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in contents}


def client(server: AppServer):
    from gradio_client import Client

    return Client(server.url, verbose=False, download_files=False, analytics_enabled=False, ssl_verify=False)


def outcome(job) -> str:
    """The status line, or the error gradio raised before our callback ran (e.g. a value not in a dropdown)."""
    try:
        return job.result(timeout=120)[0]
    except Exception as err:  # noqa: BLE001 — what the client sees is the outcome
        return f"{type(err).__name__}: {err}"


def test_app_survives_a_burst_of_bad_requests(server: AppServer, uploads: dict[str, Path], tmp_path: Path) -> None:
    from gradio_client import handle_file

    many = ", ".join(f"segment thing {i}" for i in range(12))
    segment = [(uploads[name], PROMPT, "") for name in ("empty.jpg", "notes.jpg", "cut.jpg", "bomb.png")]
    segment += [(uploads["good.jpg"], [], " ,\t, "), (uploads["good.jpg"], [], many),
                (uploads["good.jpg"], [], "\x00\x1b\u200b")]
    clients = [client(server) for _ in range(3)]
    jobs = [clients[i % 3].submit(handle_file(str(path)), selected, typed, api_name="/segment")
            for i, (path, selected, typed) in enumerate(segment)]
    outside = str(tmp_path)
    jobs += [clients[0].submit(outside, PROMPT, "", api_name="/score_split"),
             clients[1].submit(outside, PROMPT, "", api_name="/evaluate"),
             clients[2].submit("img0.png", PROMPT, "prediction_correct", "looks fine",
                                 api_name="/save_review")]
    with ThreadPoolExecutor(len(jobs)) as pool:
        outcomes = list(pool.map(outcome, jobs))
    refused = ("not in the list of choices", "outside the configured data folders")   # by gradio, or by the tab
    expected = [("empty",), ("not a readable image",), ("truncated or corrupt",), ("too many pixels",),
                ("no prompt given",), ("at most 8",), ("no prompt given",), refused, refused,
                ("nothing scored in this session",)]
    for text, problems in zip(outcomes, expected):
        assert text.startswith("**Error:**") or "AppError" in text, text
        assert any(problem in text for problem in problems), text
    assert server.process.poll() is None
    status, _, legend, masks, _ = clients[0].predict(handle_file(str(uploads["good.jpg"])), PROMPT, "",
                                                         api_name="/segment")
    assert "1 prompt on good.jpg (64×64)" in status and len(masks) == 1 and "segment crack" in legend
    assert "Unexpected error" not in server.log_tail(100_000)


def _wait_for_progress(job, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not job.done():
        if job.status().progress_data:
            return
        time.sleep(0.05)


def _evaluations(server_out: Path) -> list[Path]:
    folder = server_out / "evaluations"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _settle_and_check(out: Path) -> list[Path]:
    """Wait until no evaluation is being written, then check that every result folder is complete."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(p.name.startswith(".partial-") for p in _evaluations(out)):
        time.sleep(0.2)
    folders = _evaluations(out)
    assert not [p for p in folders if p.name.startswith(".partial-")]
    for folder in folders:
        metrics = json.loads((folder / "metrics.json").read_text())
        rows = (folder / "per_image.csv").read_text().splitlines()
        assert len(rows) == 1 + metrics["num_images"] * len(metrics["prompts"])
    return folders


def test_stopped_and_cancelled_evaluations_leave_no_half_written_output(server: AppServer) -> None:
    """Stop (this session's button) and a cancelled request, each sent once the run reports progress: a run
    finishes and is saved whole, or is stopped and saves the images scored so far, marked partial — never a
    half-written folder (the exact timing is the server's)."""
    out = server.log.parent / "outputs"
    split = str(server.log.parent / "data" / "cracks" / "valid")
    app = client(server)
    job = app.submit(split, PROMPT, "", True, 0.5, SERVER_IMAGES, 0, api_name="/evaluate")
    _wait_for_progress(job)
    app.predict(api_name="/stop_evaluation")
    status = outcome(job)
    saved = _settle_and_check(out)
    if status.startswith("Stopped after"):
        [folder] = saved
        metrics = json.loads((folder / "metrics.json").read_text())
        assert folder.name.endswith("-stopped") and metrics["partial"] is True and "Error" not in status
        assert 0 < metrics["stopped_after"]["done"] < SERVER_IMAGES == metrics["stopped_after"]["of"]
    else:
        assert status.startswith(f"Evaluated {SERVER_IMAGES} of {SERVER_IMAGES}") and len(saved) == 1

    job = app.submit(split, PROMPT, "", True, 0.5, SERVER_IMAGES, 0, api_name="/evaluate")
    _wait_for_progress(job)
    job.cancel()
    assert len(_settle_and_check(out)) - len(saved) in {0, 1}
    assert server.process.poll() is None
