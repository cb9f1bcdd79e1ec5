"""Tiled inference: windows cover the photo, blending is a weighted mean, sizes are kept, policies persist."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from drywall_qa.core.backends import Backend, load_backend
from drywall_qa.core.errors import InputError, ModelLoadError
from drywall_qa.core.fusion import MAX, SELECT, Decidedness
from drywall_qa.core.postprocess import PostprocessSettings
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.core.tiling import BOTH, TILES, WHOLE, ScalePolicy, blend_weights, describe, window_grid, window_starts
from drywall_qa.core.views import predict_views
from tests.helpers import png_header_only

SIZES = [(1, 1), (1, 301), (301, 1), (37, 91), (64, 64), (65, 64), (129, 257), (300, 97)]


@pytest.mark.parametrize("height, width", SIZES)
@pytest.mark.parametrize("window", [32, 64])
def test_windows_cover_every_pixel_and_overlap(height: int, width: int, window: int) -> None:
    covered = np.zeros((height, width), int)
    for top, left in window_grid(height, width, window):
        covered[top:top + window, left:left + window] += 1
    assert covered.min() >= 1
    for length in (height, width):
        starts = window_starts(length, window, window // 4)
        assert starts[0] == 0 and (length <= window or starts[-1] == length - window)
        assert all(b - a <= window - window // 4 for a, b in zip(starts, starts[1:]))


def test_blend_weights_are_positive_and_peak_in_the_middle() -> None:
    weights = blend_weights(64)
    assert weights.shape == (64, 64) and weights.min() > 0
    assert weights[32, 32] == 1 and weights[0, 0] < weights[8, 8] < weights[16, 16]


class PixelBackend(Backend):
    """A backend whose logit at each input pixel is a pointwise function of that pixel: any correct blend of
    windows reproduces the function of the photo, whatever the layout."""

    family = "pixels"

    def __init__(self, side: int) -> None:
        self.model = torch.nn.Linear(1, 1)
        self.side = side

    @property
    def input_size(self) -> int:
        return self.side

    def preprocess(self, images: Sequence[np.ndarray], size: int | None = None) -> torch.Tensor:
        """Square views shrunk to the input side as the real backends do (bilinear)."""
        side = self.check_input_side(size)
        assert all(im.shape[0] == im.shape[1] for im in images), "the views hand over square windows"
        images = [np.array(Image.fromarray(im).resize((side, side), Image.Resampling.BILINEAR))
                  if im.shape[0] != side else im for im in images]
        return torch.stack([torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float() for im in images])

    def encode_image(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (pixel_values[:, :1],)

    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        return torch.ones(len(prompts), 1)

    def decode(self, features: tuple[torch.Tensor, ...], embeddings: torch.Tensor) -> torch.Tensor:
        return (features[0][:, 0] - 128) / 32 * embeddings[:, :1, None]

    @classmethod
    def from_pretrained(cls, source: str, device: str | torch.device | None = None) -> Backend:
        raise NotImplementedError

    def save_pretrained(self, directory: str | Path) -> None:
        raise NotImplementedError


@pytest.mark.parametrize("height, width", [(70, 200), (200, 70), (129, 257), (33, 500)])
def test_tiles_blend_to_the_pointwise_answer(height: int, width: int) -> None:
    photo = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    expected = torch.sigmoid((torch.from_numpy(photo[..., 0]).float() - 128) / 32).numpy()
    result, = predict_views(PixelBackend(32), photo, torch.ones(1, 1), [ScalePolicy(TILES, 32)])
    assert result.probabilities.shape == (height, width)
    np.testing.assert_allclose(result.probabilities.astype(np.float32), expected, atol=2e-3)
    assert result.view == f"tiled: {len(window_grid(height, width, 32))} windows at 32 px"


def test_progress_counts_every_window() -> None:
    photo = np.zeros((100, 150, 3), np.uint8)
    calls: list[tuple[int, int]] = []
    predict_views(PixelBackend(32), photo, torch.ones(2, 1), [ScalePolicy(TILES, 32)] * 2,
                  lambda done, total: calls.append((done, total)))
    total = len(window_grid(100, 150, 32))
    assert calls[-1] == (total, total) and [d for d, _ in calls] == sorted(d for d, _ in calls)


@pytest.fixture(scope="module")
def lite(tiny_lite_dir: Path) -> Segmenter:
    return Segmenter.load(tiny_lite_dir, device="cpu")


@pytest.mark.parametrize("height, width", [(1, 157), (157, 1), (97, 131), (64, 64)])
@pytest.mark.parametrize("view", [WHOLE, TILES, BOTH])
def test_every_view_keeps_the_photo_size(lite: Segmenter, height: int, width: int, view: str) -> None:
    photo = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    prediction, = lite.predict(photo, "segment crack", scale=ScalePolicy(view, 48))
    assert prediction.probabilities.shape == prediction.mask.shape == (height, width)
    assert prediction.probabilities.dtype == np.float16 and np.isfinite(prediction.presence_logit)


def test_a_photo_inside_one_window_gets_the_untiled_answer(lite: Segmenter) -> None:
    photo = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    whole, = lite.predict(photo, "segment crack", tiling="off")
    for policy in (ScalePolicy(TILES, 64), ScalePolicy(BOTH, 64), ScalePolicy(TILES, 64, input=32)):
        tiled, = lite.predict(photo, "segment crack", scale=policy)
        torch.testing.assert_close(tiled.logits, whole.logits)
        np.testing.assert_array_equal(tiled.probabilities, whole.probabilities)
        assert tiled.view == "whole image"


def test_a_policy_input_side_runs_the_windows_as_if_the_model_were_resized(lite: Segmenter,
                                                                          tiny_lite_dir: Path) -> None:
    """Windows of a policy naming a smaller input give exactly the answer of the same model resized to it, and the
    other prompts of the same call keep the model's own input."""
    photo = np.random.default_rng(4).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    resized = Segmenter.load(tiny_lite_dir, device="cpu")
    resized.backend.resize_input(32)
    expected, = resized.predict(photo, "segment crack", scale=ScalePolicy(TILES, 48))
    lite.backend.settings.scales = {"segment crack": ScalePolicy(TILES, 48, input=32),
                                    "segment taping area": ScalePolicy(TILES, 48)}
    try:
        smaller, own = lite.predict(photo, ["segment crack", "segment taping area"])
        alone, = lite.predict(photo, "segment taping area")
    finally:
        lite.backend.settings.scales = {}
    np.testing.assert_array_equal(smaller.probabilities, expected.probabilities)
    np.testing.assert_array_equal(own.probabilities, alone.probabilities)
    assert not np.array_equal(smaller.probabilities, own.probabilities)
    assert smaller.view == f"{expected.view} shown at 32 px" and "shown at" not in own.view


def test_both_averages_the_whole_view_at_the_model_input_with_windows_at_the_policy_input(
        lite: Segmenter, tiny_lite_dir: Path) -> None:
    photo = np.random.default_rng(5).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    whole, = lite.predict(photo, "segment crack", tiling="off")
    resized = Segmenter.load(tiny_lite_dir, device="cpu")
    resized.backend.resize_input(32)
    windows, = resized.predict(photo, "segment crack", scale=ScalePolicy(TILES, 48))
    both, = lite.predict(photo, "segment crack", scale=ScalePolicy(BOTH, 48, input=32))
    expected = (whole.probabilities.astype(np.float32) + windows.probabilities.astype(np.float32)) / 2
    np.testing.assert_allclose(both.probabilities.astype(np.float32), expected, atol=1e-3)
    assert both.view == f"whole image + {len(window_grid(120, 90, 48))} windows at 48 px shown at 32 px"


def test_progress_counts_the_windows_of_every_input_side(lite: Segmenter) -> None:
    photo = np.zeros((120, 90, 3), np.uint8)
    calls: list[tuple[int, int]] = []
    policies = [ScalePolicy(TILES, 48, input=32), ScalePolicy(TILES, 48), ScalePolicy(TILES, 48, input=64)]
    predict_views(lite.backend, photo, lite.backend.encode_prompts(["a", "b", "c"]), policies,
                  lambda done, total: calls.append((done, total)))
    total = 2 * len(window_grid(120, 90, 48))          # the model's own 64 px, named or not, is one group
    assert calls[-1] == (total, total)


def test_a_backend_of_fixed_input_refuses_another_side() -> None:
    photo = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(InputError, match=r"input: the pixels backend keeps its input size \(32\), not 48"):
        predict_views(PixelBackend(32), photo, torch.ones(1, 1), [ScalePolicy(TILES, 32, input=48)])


def test_a_policy_input_larger_than_the_model_input_is_refused(lite: Segmenter) -> None:
    side = lite.backend.input_size
    with pytest.raises(InputError, match=rf"input: {2 * side} is larger than the model's input side \({side}\)"):
        lite.predict(np.zeros((200, 200, 3), np.uint8), "segment crack", scale=ScalePolicy(TILES, 48, input=2 * side))


def test_tiling_modes_force_the_view(lite: Segmenter) -> None:
    photo = np.random.default_rng(3).integers(0, 256, (150, 100, 3), dtype=np.uint8)
    lite.backend.settings.scales = {"segment crack": ScalePolicy(TILES, 48)}
    lite.backend.tile_window = 40
    try:
        auto, = lite.predict(photo, "segment crack")
        off, = lite.predict(photo, "segment crack", tiling="off")
        other, = lite.predict(photo, "segment taping area", tiling="on")
    finally:
        lite.backend.settings.scales = {}
        del lite.backend.tile_window
    windows = len(window_grid(150, 100, 48))
    assert auto.view == describe(ScalePolicy(TILES, 48), 150, 100) == f"tiled: {windows} windows at 48 px"
    assert off.view == "whole image"
    assert other.view.startswith("tiled:") and other.policy == ScalePolicy(TILES, 40)
    with pytest.raises(InputError, match="tiling"):
        lite.predict(photo, "segment crack", tiling="sometimes")


def test_policy_round_trips_through_the_checkpoint(tiny_lite_dir: Path, tmp_path: Path) -> None:
    backend = load_backend(tiny_lite_dir, "cpu")
    settings = PostprocessSettings(scales={"segment crack": ScalePolicy(TILES, 640, input=32, zoom_out=(2, 4)),
                                           "segment wall crack": ScalePolicy(TILES, 320, zoom_out=(3,), fusion=MAX),
                                           "segment drywall seam": ScalePolicy(BOTH, 640, fusion=SELECT),
                                           "segment taping area": ScalePolicy(BOTH, 96)})
    backend.save_pretrained(tmp_path)
    settings.save_pretrained(tmp_path)
    assert load_backend(tmp_path, "cpu").settings.scales == settings.scales


@pytest.mark.parametrize("value, problem", [({"view": "zoom", "window": 640}, "view 'zoom'"),
                                            ({"view": "tiles", "window": 7}, "window 7"),
                                            ({"view": "tiles", "window": True}, "window True"),
                                            ({"view": "tiles", "window": 640, "input": 8}, "input 8"),
                                            ({"view": "tiles", "window": 640, "input": 384.0}, "input 384.0"),
                                            ({"view": "tiles", "window": 640, "side": 384}, "not an object"),
                                            ({"view": "tiles", "window": 640, "zoom_out": [4, 2]}, "zoom_out"),
                                            ({"view": "tiles", "window": 640, "zoom_out": [1]}, "zoom_out"),
                                            ({"view": "tiles", "window": 640, "zoom_out": 2}, "zoom_out 2"),
                                            ({"view": "whole", "window": 640, "zoom_out": [2]}, "tiled view"),
                                            ({"view": "tiles", "window": 640, "zoom_out": [2], "fusion": "median"},
                                             "fusion 'median'"),
                                            ("tiles", "not an object")])
def test_bad_policies_are_refused_by_name(value: object, problem: str) -> None:
    with pytest.raises(ModelLoadError, match=rf"postprocess.json: scales\['segment crack'\] = .*{problem}"):
        PostprocessSettings.from_dict({"scales": {"segment crack": value}}, "postprocess.json")


def test_the_bomb_guard_applies_before_any_window(lite: Segmenter) -> None:
    with pytest.raises(InputError, match="pixels"):
        lite.predict(png_header_only(10_000, 10_000), "segment crack", tiling="on")


def test_tiled_presence_reads_the_photo_not_the_padding() -> None:
    photo = np.zeros((10, 200, 3), np.uint8)                 # every photo pixel: logit -4; padding (mean): 0
    result, = predict_views(PixelBackend(32), photo, torch.ones(1, 1), [ScalePolicy(TILES, 32)])
    assert result.presence_logit == pytest.approx(-4.0)


@pytest.mark.parametrize("fusion, combine", [("mean", lambda a, b: (a + b) / 2), (MAX, np.maximum)])
def test_a_pyramid_fuses_its_passes_per_pixel(fusion: str, combine) -> None:
    photo = np.random.default_rng(4).integers(0, 256, (100, 150, 3), dtype=np.uint8)
    backend, prompt = PixelBackend(32), torch.ones(1, 1)
    fine, = predict_views(backend, photo, prompt, [ScalePolicy(TILES, 32)])
    coarse, = predict_views(backend, photo, prompt, [ScalePolicy(TILES, 64)])
    pyramid, = predict_views(backend, photo, prompt, [ScalePolicy(TILES, 32, zoom_out=(2,), fusion=fusion)])
    expected = combine(fine.probabilities.astype(np.float32), coarse.probabilities.astype(np.float32))
    np.testing.assert_allclose(pyramid.probabilities.astype(np.float32), expected, atol=2e-3)
    assert pyramid.view == f"tiled: {len(window_grid(100, 150, 32))} windows at 32 px, " \
                           f"{len(window_grid(100, 150, 64))} at 64 px ({fusion})"
    assert pyramid.presence_logit == max(fine.presence_logit, coarse.presence_logit)


def test_a_pyramid_of_a_pointwise_backend_is_the_mean_of_its_views_of_each_pixel() -> None:
    rows = np.repeat(np.linspace(40, 220, 120), 150).reshape(120, 150)          # smooth: shrinking keeps the values
    photo = np.repeat(rows[..., None], 3, axis=2).astype(np.uint8)
    pointwise = torch.sigmoid((torch.from_numpy(photo[..., 0]).float() - 128) / 32).numpy()
    whole = torch.sigmoid((torch.from_numpy(_shrunk(photo, 32)).float() - 128) / 32).numpy()
    result, = predict_views(PixelBackend(32), photo, torch.ones(1, 1),
                            [ScalePolicy(TILES, 32, zoom_out=(2, 8))])          # 32 px windows, 64 px, whole view
    inner = np.s_[8:-8, 8:-8]
    np.testing.assert_allclose(result.probabilities.astype(np.float32)[inner],
                               ((2 * pointwise + whole) / 3)[inner], atol=0.02)


def _shrunk(photo: np.ndarray, side: int) -> np.ndarray:
    """The photo's red channel as the whole view sees it: shrunk to ``side`` on its longer side, back to full size."""
    height, width = photo.shape[:2]
    scale = side / max(height, width)
    small = Image.fromarray(photo[..., 0]).resize((round(width * scale), round(height * scale)),
                                                  Image.Resampling.BILINEAR)
    return np.array(small.resize((width, height), Image.Resampling.BILINEAR))


def test_a_pyramid_on_a_photo_inside_one_window_is_the_whole_view(lite: Segmenter) -> None:
    photo = np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    whole, = lite.predict(photo, "segment crack", tiling="off")
    pyramid, = lite.predict(photo, "segment crack", scale=ScalePolicy(TILES, 64, input=32, zoom_out=(2, 4)))
    np.testing.assert_array_equal(pyramid.probabilities, whole.probabilities)
    assert pyramid.view == "whole image"
    off, = lite.predict(np.zeros((300, 300, 3), np.uint8), "segment crack", tiling="off",
                        scale=ScalePolicy(TILES, 64, zoom_out=(2,)))
    assert off.view == "whole image"


def test_select_keeps_one_pass_map_whole() -> None:
    photo = np.random.default_rng(6).integers(0, 256, (100, 150, 3), dtype=np.uint8)
    backend, prompt = PixelBackend(32), torch.ones(1, 1)
    maps = [predict_views(backend, photo, prompt, [ScalePolicy(TILES, w)])[0].probabilities for w in (32, 64)]
    chosen, = predict_views(backend, photo, prompt, [ScalePolicy(TILES, 32, zoom_out=(2,), fusion=SELECT)])
    same = [np.array_equal(chosen.probabilities, m) for m in maps]
    assert any(same)
    assert chosen.view.endswith(f"(select: {(32, 64)[same.index(True)]} px)")
    both = describe(ScalePolicy(BOTH, 32, fusion=SELECT), 100, 150)
    assert both.startswith("tiled: ") and both.endswith(" + whole image (select: whole image)")


def test_decidedness_prefers_fewer_hesitant_outputs_per_finding() -> None:
    decided = Decidedness(3)
    decided.add(0, torch.tensor([0.95, 0.9, 0.1, 0.3]))      # 2 found, 1 hesitant
    decided.add(1, torch.tensor([0.95, 0.6, 0.7, 0.3]))       # 3 found, 3 hesitant
    decided.add(2, torch.tensor([0.01, 0.02, 0.1, 0.15]))     # nothing found
    assert decided.cost(0) == 0.5 and decided.cost(1) == 1.0 and decided.cost(2) == float("inf")


def test_select_takes_a_later_pass_only_when_it_is_more_decided() -> None:
    from drywall_qa.core.views import _Maps

    state = _Maps(1)
    first, second, third = (np.full((2, 2), v, np.float16) for v in (0.1, 0.2, 0.3))
    state.take(0, first, -1.0, (0.5, None), SELECT)
    state.take(0, second, 2.0, (0.5, 64), SELECT)                    # a tie keeps the earlier pass
    assert state.maps[0] is first and state.presence[0] == -1.0          # the kept pass's presence
    state.take(0, third, 0.0, (0.25, 128), SELECT)
    assert state.maps[0] is third and state.passes[0] == 3 and state.chosen[0] == 128 and state.presence[0] == 0.0
