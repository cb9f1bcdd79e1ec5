"""Unknown concepts: prompts far from every prompt the bundled model was trained on are flagged, in the Segmenter's
predictions, the notes and the CLIs' outputs; CLIPSeg keeps open vocabulary; the bar is the measured one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drywall_qa.calibration import concepts
from drywall_qa.cli import evaluate, predict
from drywall_qa.core.backends import load_backend
from drywall_qa.core.backends.lite import LiteBackend
from drywall_qa.core.segmenter import Segmenter, unknown_concept_note
from tests.helpers import make_mixed_split

IMAGE = np.random.default_rng(3).integers(0, 256, (40, 56, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def bundled() -> Segmenter:
    return Segmenter.load("lite", device="cpu")


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "wall.png"
    Image.fromarray(IMAGE).save(path)
    return path


def test_paraphrases_are_known_and_unrelated_prompts_are_flagged(bundled: Segmenter) -> None:
    prompts = ["segment crack", "segment joint tape", "segment hairline crack", "segment water stain", "segment window"]
    own, paraphrase, hairline, stain, window = bundled.predict(IMAGE, prompts)
    assert (own.closest_concept, own.concept_similarity, own.unknown_concept) == ("segment crack", 1.0, False)
    assert paraphrase.closest_concept == paraphrase.settings_from == "segment joint/tape"
    assert not paraphrase.unknown_concept and not hairline.unknown_concept
    assert stain.unknown_concept and window.unknown_concept and stain.settings_from is None
    assert stain.closest_concept == "segment crack" and stain.concept_similarity < LiteBackend.known_concept_similarity
    note = unknown_concept_note(stain, bundled.backend.family)
    assert note == (f"'segment water stain' is not a concept drywall-qa-lite was trained on (closest: 'segment "
                    f"crack', similarity {stain.concept_similarity:.2f}) — results are unreliable; CLIPSeg handles "
                    "open-vocabulary prompts")


def test_a_paraphrase_that_borrows_settings_is_known() -> None:
    assert LiteBackend.known_concept_similarity <= LiteBackend.paraphrase_similarity


def test_clipseg_never_flags(tiny_clipseg_dir: Path) -> None:
    backend = load_backend(tiny_clipseg_dir)
    backend.settings.thresholds = {"segment crack": 0.3}
    for prediction in Segmenter(backend).predict(IMAGE, ["segment water stain", "segment crack"]):
        assert (prediction.unknown_concept, prediction.closest_concept, prediction.concept_similarity) == \
            (False, None, None)


def test_an_uncalibrated_checkpoint_has_nothing_to_compare_with(tiny_lite_dir: Path) -> None:
    concept, = Segmenter(load_backend(tiny_lite_dir)).concepts(["segment water stain"])
    assert concept == ("segment water stain", None, None, False)


def test_the_bar_is_the_midpoint_with_the_best_accuracy() -> None:
    similarities = np.array([0.3, 0.4, 0.7, 0.8])
    known = np.array([False, False, True, True])
    assert concepts.choose_bar(similarities, known) == pytest.approx(0.55)
    assert concepts.choose_bar(similarities, known, ceiling=0.5) == pytest.approx(0.35)
    assert concepts.accuracy(similarities, known, 0.55) == 1.0 and concepts.accuracy(similarities, known, 0.35) == 0.75
    assert concepts.leave_one_out(similarities, known) == 1.0
    assert concepts.leave_one_out(similarities, np.array([False, True, False, True])) < 1.0


def test_the_stored_bar_separates_the_list(bundled: Segmenter) -> None:
    rows = concepts.measure(bundled)
    assert len(rows) >= 30 and {known for _, known, _, _ in rows} == {True, False}
    similarities = np.array([row[3] for row in rows])
    known = np.array([row[1] for row in rows])
    bar = LiteBackend.known_concept_similarity
    assert concepts.accuracy(similarities, known, bar) >= 0.9
    assert concepts.choose_bar(similarities, known, LiteBackend.paraphrase_similarity) == pytest.approx(bar, abs=5e-4)


def test_predict_cli_writes_the_flag_and_a_note(photo: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert predict.main([str(photo), "--prompts", "segment crack", "segment water stain", "--model", "lite",
                         "--device", "cpu", "--out", str(out)]) == 0
    crack, stain = json.loads((out / "predictions.json").read_text())["predictions"]
    assert (crack["unknown_concept"], crack["closest_concept"], crack["concept_similarity"]) == \
        (False, "segment crack", 1.0)
    assert stain["unknown_concept"] and stain["closest_concept"] == "segment crack"
    assert "note: 'segment water stain' is not a concept drywall-qa-lite was trained on" in capsys.readouterr().err


def test_evaluate_cli_writes_the_flag_and_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert evaluate.main(["--split", str(make_mixed_split(tmp_path / "split")), "--prompts", "segment crack",
                          "segment window", "--model", "lite", "--device", "cpu", "--limit", "1", "--panels", "0",
                          "--out", str(out)]) == 0
    flags = json.loads((out / "metrics.json").read_text())["concepts"]
    assert not flags["segment crack"]["unknown_concept"] and flags["segment window"]["unknown_concept"]
    assert flags["segment window"]["closest_concept"] == "segment taping area"
    assert "note: 'segment window' is not a concept drywall-qa-lite was trained on" in capsys.readouterr().err
