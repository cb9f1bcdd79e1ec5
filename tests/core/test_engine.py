"""The ONNX Runtime engine (image encoder and decoder): same answers as eager PyTorch, a cache keyed by the weights
that never uses a bad file, new weights after fine-tuning, the thread count set, and no onnxruntime import when
PyTorch is asked for."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from drywall_qa.core.backends import load_backend
from drywall_qa.core.backends.lite import LiteBackend
from drywall_qa.core.engine import set_threads
from drywall_qa.core.errors import InputError
from drywall_qa.core.segmenter import Segmenter
from tests.conftest import REPO

pytest.importorskip("onnxruntime")
PROMPTS = ["segment crack", "segment taping area"]


@pytest.fixture(scope="module")
def tiny(tiny_lite_dir) -> LiteBackend:
    return load_backend(tiny_lite_dir)


def _fresh(tiny: LiteBackend, engine: str = "onnxruntime") -> LiteBackend:
    """A new backend with a copy of the tiny model's weights (loading the text encoder again takes seconds)."""
    backend = LiteBackend(copy.deepcopy(tiny.model), tiny.text_encoder)
    backend.use_engine(engine)
    return backend


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of each test's own."""
    monkeypatch.setenv("DRYWALL_QA_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


def _engine_and_eager(segmenter: Segmenter, image: np.ndarray, tiling: str) -> tuple[list, list]:
    """Predictions with the exported graphs, then with eager PyTorch, same model."""
    segmenter.backend.use_engine("onnxruntime")
    engine = segmenter.predict(image, PROMPTS, tiling=tiling)
    assert segmenter.backend.engine == "onnxruntime" and all(g.path is not None for g in segmenter.backend.graphs)
    segmenter.backend.use_engine("torch")
    return engine, segmenter.predict(image, PROMPTS, tiling=tiling)


def _assert_same_answers(engine: list, eager: list) -> None:
    for a, b in zip(engine, eager):
        assert np.abs(a.probabilities.astype(np.float32) - b.probabilities.astype(np.float32)).max() <= 1e-3
        assert (a.mask == b.mask).mean() >= 0.999
        assert a.presence == pytest.approx(b.presence, abs=1e-3)


@pytest.mark.parametrize("tiling", ["off", "on"])
def test_engine_agrees_with_eager_on_the_tiny_model(tiny: LiteBackend, tiling: str) -> None:
    image = np.random.default_rng(0).integers(0, 255, (90, 150, 3), dtype=np.uint8)
    _assert_same_answers(*_engine_and_eager(Segmenter(_fresh(tiny)), image, tiling))


def test_engine_agrees_with_eager_on_the_bundled_model() -> None:
    from PIL import Image

    photo = Image.open(REPO / "examples" / "seam_and_crack.png").convert("RGB")
    image = np.asarray(photo.resize((900, 700)))  # larger than a crack window: tiled and whole views both run
    _assert_same_answers(*_engine_and_eager(Segmenter.load(), image, "auto"))


def _encode(backend: LiteBackend, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    with torch.inference_mode():
        return backend.encode_image(pixels)


def test_changed_weights_make_a_new_graph_and_are_used(tiny: LiteBackend, cache: Path) -> None:
    backend = _fresh(tiny)
    pixels = torch.rand(1, 3, 64, 64)
    before = _encode(backend, pixels)
    first = backend.graphs[0].path
    with torch.no_grad():
        backend.model.backbone.stem[0].weight.mul_(1.5)          # as an optimiser step would, in place
    after = _encode(backend, pixels)
    assert backend.graphs[0].path != first and len(list(cache.glob("*.onnx"))) == 2
    with torch.inference_mode():
        eager = backend.model.encode_image(pixels)
    assert not torch.allclose(before[0], after[0], atol=1e-3)
    for a, b in zip(after, eager):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_fine_tuning_a_loaded_model_then_predicting_uses_the_new_weights(tiny: LiteBackend) -> None:
    segmenter = Segmenter(_fresh(tiny))
    backend, image = segmenter.backend, np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    before = segmenter.predict(image, PROMPTS[:1], tiling="off")[0].probabilities
    backend.model.train()
    optimizer = torch.optim.SGD(backend.trainable_parameters(), lr=1.0)
    pixels, prompt = backend.preprocess([image]), backend.encode_prompts(PROMPTS[:1])
    backend.decode(backend.encode_image(pixels), prompt).mean().backward()  # eager: gradients stay in PyTorch
    optimizer.step()
    backend.model.eval()
    tuned = segmenter.predict(image, PROMPTS[:1], tiling="off")[0].probabilities
    backend.use_engine("torch")
    eager = segmenter.predict(image, PROMPTS[:1], tiling="off")[0].probabilities
    assert np.abs(tuned.astype(np.float32) - before.astype(np.float32)).max() > 1e-2
    assert np.abs(tuned.astype(np.float32) - eager.astype(np.float32)).max() <= 1e-3


@pytest.mark.parametrize("damage", ["corrupt", "stale"])
def test_a_corrupt_or_stale_cached_graph_is_rebuilt(tiny: LiteBackend, cache: Path, damage: str) -> None:
    pixels = torch.rand(2, 3, 64, 64)
    backend = _fresh(tiny)
    _encode(backend, pixels)
    path = backend.graphs[0].path
    if damage == "corrupt":
        path.write_bytes(path.read_bytes()[:1000])
    else:  # a graph of other weights under this name
        other = _fresh(tiny)
        with torch.no_grad():
            other.model.head.bias.add_(1.0)
            other.model.backbone.stem[0].weight.mul_(2.0)
        _encode(other, pixels)
        path.write_bytes(other.graphs[0].path.read_bytes())
    fresh = _fresh(tiny)
    features = _encode(fresh, pixels)
    assert fresh.graphs[0].path == path and fresh.engine == "onnxruntime"
    with torch.inference_mode():
        for a, b in zip(features, fresh.model.encode_image(pixels)):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_unwritable_cache_falls_back_to_temp_then_to_eager(tiny: LiteBackend, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DRYWALL_QA_CACHE", str(blocker / "cache"))
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path / "temp"))
    backend, pixels = _fresh(tiny), torch.rand(1, 3, 64, 64)
    _encode(backend, pixels)
    assert backend.graphs[0].path.parent.parent == tmp_path / "temp"
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(blocker / "temp"))
    stuck = _fresh(tiny)
    features = _encode(stuck, pixels)
    assert stuck.engine == "torch" and "no writable cache folder" in stuck.graphs[0].disabled
    with torch.inference_mode():
        torch.testing.assert_close(features[0], stuck.model.encode_image(pixels)[0])


def test_gradients_and_training_mode_run_eager(tiny: LiteBackend, cache: Path) -> None:
    backend = _fresh(tiny)
    features = backend.encode_image(torch.rand(1, 3, 64, 64))   # gradients on: the graph cannot give them
    assert features[0].requires_grad and not cache.exists()


def test_an_unknown_engine_is_refused_by_name(tiny: LiteBackend) -> None:
    with pytest.raises(InputError, match="--engine: 'tensorrt' is not one of auto, torch, onnxruntime"):
        _fresh(tiny, "tensorrt")


def test_engine_torch_never_imports_onnxruntime(tiny_lite_dir, tmp_path: Path) -> None:
    """Through the command line, in a fresh interpreter."""
    image = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(image)
    code = ("import sys, json; from drywall_qa.cli.predict import main; "
            f"rc = main([{str(image)!r}, '--prompts', 'segment crack', '--model', {str(tiny_lite_dir)!r}, "
            f"'--engine', 'torch', '--threads', '1', '--out', {str(tmp_path / 'out')!r}]); "
            "print(json.dumps([rc, [m for m in sys.modules if m.startswith(('onnxruntime', 'onnx'))]]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [0, []], done.stderr[-2000:]


def test_both_engines_run_the_thread_count_set(tiny: LiteBackend) -> None:
    backend, threads = _fresh(tiny), torch.get_num_threads()
    try:
        for count in (1, 2):
            set_threads(count)
            _encode(backend, torch.rand(1, 3, 64, 64))
            session = backend.graphs[0]._session
            assert torch.get_num_threads() == count == session.get_session_options().intra_op_num_threads
    finally:
        torch.set_num_threads(threads)
