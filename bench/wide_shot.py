"""Whole-wall photos: quality, speed and memory of the default scale policy against the whole view (tiling off).

Run from the repository root: ``python -m bench.wide_shot [--data-root DIR] [--limit N] [--model DIR]``.

* Cracks: ``n×n`` mosaics (2, 3, 4) of the crack validation photos (a wider shot of several close-ups). Per-tile
  "segment crack" mIoU: each photo alone, inside the mosaic with tiling off, inside it with the default policy;
  and the tiles blank in the mosaic whose photo alone has a mask.
* Taping: the taping validation photos enlarged ×2, ×4 and to 4032×3024 (the same wall at more pixels).
  "segment taping area" mIoU at 640 px, and enlarged with tiling off and with the default policy.
* Cracks enlarged ×2 and ×4 (the same close-up at more pixels: a closer or sharper photo): "segment crack" mIoU of the
  default policy, the mask shrunk back to 640 px and scored against the photo's own ground truth.
* Findings invariance: the first ``--findings-photos`` crack photos measured at 640 px (1 mm per pixel) and enlarged
  ×5 (0.2 mm per pixel, the same wall): crack findings, total length and length-weighted mean width, and their
  ratios (enlarged / 640 px).
* Speed: seconds per megapixel of the default policy over the mosaics; a 4032×3024 photo with 2 and 4 prompts, and
  with 2 prompts without the pyramids' zoomed-out passes (in the same run).
* Memory: peak RSS of a fresh process predicting a 50 MP photo with 8 prompts, tiling on, against the same process
  loading the model and the photo only.

The last line: ``mosaic_4x4_miou: <x> solo_miou: <y> tiling_off_4x4_miou: <z> s_per_mp: <t> crack_x2_miou: <a>
crack_x4_miou: <b> findings_count_ratio: <c> findings_length_ratio: <d> pyramid_time_ratio: <e>`` (one line).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import examples
from drywall_qa.calibration.wide_shots import MosaicSplit, ZoomSplit
from drywall_qa.core.engine import ENGINES
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.data.coco import CocoSplit, data_root, split_dir
from drywall_qa.evaluation.metrics import score_masks
from drywall_qa.jobs.findings import MeasureSettings, measure

CRACK, TAPING = "segment crack", "segment taping area"
#: the 8 prompts of the memory check: the dataset prompts and three paraphrases
MEMORY_PROMPTS = [CRACK, "segment wall crack", TAPING, "segment joint/tape", "segment drywall seam",
                  "segment hairline crack", "segment joint tape", "segment seam"]
PHOTO_12MP, PHOTO_50MP = (4032, 3024), (8165, 6124)
#: the enlargement of the findings check: 640 px photos at 1 mm per pixel become 0.2 mm per pixel
FINDINGS_ZOOM = 5
DEMO_PHOTO = Path(examples.__file__).parent / "seam_and_crack.png"


def mosaic_scores(segmenter: Segmenter, split: CocoSplit, n: int, limit: int) -> dict[str, float]:
    """Per-tile mIoU alone / in the mosaic with tiling off / with the default policy, blank tiles, s per MP."""
    mosaics = MosaicSplit(split, n)
    solo, off, auto, blank, seconds, pixels = [], [], [], 0, 0.0, 0
    for i in range(min(len(mosaics), max(1, limit // (n * n)))):
        sample = mosaics[i]
        start = time.perf_counter()
        tiled = segmenter.predict(sample.image, CRACK)[0].mask
        seconds, pixels = seconds + time.perf_counter() - start, pixels + sample.mask.size
        whole = segmenter.predict(sample.image, CRACK, tiling="off")[0].mask
        for index, (top, left, height, width) in zip(mosaics.members(i), mosaics.tile_boxes(i)):
            truth, box = split[index].mask, np.s_[top:top + height, left:left + width]
            alone = segmenter.predict(split[index].image, CRACK)[0].mask
            solo.append(score_masks(alone, truth)[0])
            off.append(score_masks(whole[box], truth)[0])
            auto.append(score_masks(tiled[box], truth)[0])
            blank += bool(alone.any() and not tiled[box].any())
    return {"solo": np.mean(solo), "off": np.mean(off), "auto": np.mean(auto), "blank": blank, "tiles": len(solo),
            "s_per_mp": seconds / pixels * 1e6}


def zoom_scores(segmenter: Segmenter, split: CocoSplit, size: tuple[int, int], limit: int) -> dict[str, float]:
    """"segment taping area" mIoU at 640 px / enlarged with tiling off / enlarged with the default policy."""
    zooms = ZoomSplit(split, size)
    solo, off, auto = [], [], []
    for i in range(min(len(zooms), limit)):
        sample, big = split[i], zooms[i]
        solo.append(score_masks(segmenter.predict(sample.image, TAPING)[0].mask, sample.mask)[0])
        off.append(score_masks(segmenter.predict(big.image, TAPING, tiling="off")[0].mask, big.mask)[0])
        auto.append(score_masks(segmenter.predict(big.image, TAPING)[0].mask, big.mask)[0])
    return {"solo": np.mean(solo), "off": np.mean(off), "auto": np.mean(auto)}


def crack_zoom_scores(segmenter: Segmenter, split: CocoSplit, factors: tuple[int, ...],
                      limit: int) -> dict[int, float]:
    """"segment crack" mIoU of the default policy per enlargement factor (1: the photos as they are), each mask
    shrunk back to the photo's size (a pixel is set where at least half its block is) and scored against its truth."""
    scores: dict[int, list[float]] = {factor: [] for factor in factors}
    for i in range(min(len(split), limit)):
        sample = split[i]
        height, width = sample.mask.shape
        for factor in factors:
            big = ZoomSplit.resized(sample, (width * factor, height * factor))
            mask = segmenter.predict(big.image, CRACK)[0].mask
            shrunk = mask.reshape(height, factor, width, factor).mean(axis=(1, 3)) >= 0.5
            scores[factor].append(score_masks(shrunk, sample.mask)[0])
    return {factor: float(np.mean(values)) for factor, values in scores.items()}


def crack_findings(segmenter: Segmenter, split: CocoSplit, photos: int, factor: int,
                   link: bool = True) -> dict[str, dict[str, float]]:
    """Crack findings of the first ``photos`` photos at their size (1 mm per pixel) and enlarged ``factor`` times
    (``1 / factor`` mm per pixel): count, total length (mm) of the thin ones and their length-weighted mean width;
    ``link``: pieces of one crack linked and specks dropped (:mod:`drywall_qa.jobs.linking`)."""
    totals = {}
    for name, scale in (("640 px", 1), (f"x{factor}", factor)):
        count, length, width_times_length = 0, 0.0, 0.0
        for i in range(min(photos, len(split))):
            sample = split[i]
            height, width = sample.mask.shape
            image = ZoomSplit.resized(sample, (width * scale, height * scale)).image
            prediction = segmenter.predict(image, CRACK)[0]
            settings = MeasureSettings(mm_per_pixel=1 / scale, link=link)
            findings = measure(prediction.mask, prediction.probabilities, settings)
            thin = [f for f in findings if f.thin]
            count += len(findings)
            length += sum(f.length for f in thin)
            width_times_length += sum(f.length * f.mean_width for f in thin)
        totals[name] = {"count": count, "length_mm": length, "width_mm": width_times_length / max(length, 1e-9)}
    return totals


def print_findings(segmenter: Segmenter, split: CocoSplit, photos: int, link: bool) -> tuple[float, float]:
    """Print :func:`crack_findings` and the ratios enlarged / 640 px; returns the count and length ratios."""
    found = crack_findings(segmenter, split, photos, FINDINGS_ZOOM, link)
    small, large = found["640 px"], found[f"x{FINDINGS_ZOOM}"]
    print(f"crack findings, {photos} photos, pieces {'linked' if link else 'apart'}: " + "; ".join(
        f"{name}: {v['count']} findings, {v['length_mm'] / 1000:.2f} m, mean width {v['width_mm']:.2f} mm"
        for name, v in found.items()))
    count_ratio, length_ratio = large["count"] / max(small["count"], 1), large["length_mm"] / max(small["length_mm"], 1)
    print(f"  ratios x{FINDINGS_ZOOM} / 640 px: count {count_ratio:.2f}, length {length_ratio:.2f}, "
          f"width {large['width_mm'] / max(small['width_mm'], 1e-9):.2f}")
    return count_ratio, length_ratio


def single_scale(segmenter: Segmenter) -> Segmenter:
    """The same model with every scale policy's pyramid removed (its training-scale windows only)."""
    settings = segmenter.backend.settings
    return segmenter.with_settings(replace(settings, scales={p: replace(policy, zoom_out=())
                                                             for p, policy in settings.scales.items()}))


def photo_seconds(segmenter: Segmenter, prompts: list[str], repeats: int = 3) -> float:
    """Median seconds of one 4032×3024 photo (the demo wall enlarged) with ``prompts``, default policy."""
    photo = np.asarray(Image.open(DEMO_PHOTO).convert("RGB").resize(PHOTO_12MP, Image.Resampling.BICUBIC))
    segmenter.predict(photo[:640, :640], prompts)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        segmenter.predict(photo, prompts)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _peak_rss_child(model: str | None, predict: bool, queue: multiprocessing.Queue) -> None:
    torch.set_num_threads(2)
    segmenter = Segmenter.load(model)
    photo = np.full((*PHOTO_50MP[::-1], 3), 128, np.uint8)
    photo[::97] = 40                                          # thin dark lines: something to find
    if predict:
        predictions = segmenter.predict(photo, MEMORY_PROMPTS, tiling="on")
        assert predictions[0].probabilities.shape == photo.shape[:2]
    queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def peak_rss_mb(model: str | None, predict: bool) -> float:
    """Peak RSS (MiB) of a fresh process that loads the model and a 50 MP photo, and predicts when ``predict``."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_peak_rss_child, args=(model, predict, queue))
    process.start()
    value = queue.get(timeout=1800)
    process.join()
    return value


def print_quality(segmenter: Segmenter, cracks: CocoSplit, taping: CocoSplit, limit: int) -> dict[str, float]:
    """Print the mosaic, taping zoom and crack zoom tables; the figures of the last line."""
    print(f"{'cracks mosaic':<16} {'tiles':>5} {'alone':>6} {'off':>6} {'default':>7} {'blank':>5} {'s/MP':>6}")
    mosaics = {}
    for n in (2, 3, 4):
        m = mosaics[n] = mosaic_scores(segmenter, cracks, n, limit)
        print(f"{f'{n}x{n} ({640 * n} px)':<16} {m['tiles']:5d} {m['solo']:6.3f} {m['off']:6.3f} {m['auto']:7.3f} "
              f"{m['blank']:5d} {m['s_per_mp']:6.3f}")
    print(f"{'taping zoom':<16} {'640 px':>6} {'off':>6} {'default':>7}")
    for size in ((1280, 1280), (2560, 2560), PHOTO_12MP):
        z = zoom_scores(segmenter, taping, size, limit)
        print(f"{f'{size[0]}x{size[1]}':<16} {z['solo']:6.3f} {z['off']:6.3f} {z['auto']:7.3f}")
    zooms = crack_zoom_scores(segmenter, cracks, (1, 2, 4), limit)
    print(f"{'cracks zoom':<16} {'x1':>6} {'x2':>6} {'x4':>6}")
    print(f"{'segment crack':<16} {zooms[1]:6.3f} {zooms[2]:6.3f} {zooms[4]:6.3f}")
    return {"mosaic_4x4_miou": mosaics[4]["auto"], "solo_miou": mosaics[4]["solo"],
            "tiling_off_4x4_miou": mosaics[4]["off"], "s_per_mp": np.mean([m["s_per_mp"] for m in mosaics.values()]),
            "crack_x2_miou": zooms[2], "crack_x4_miou": zooms[4]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, help="datasets folder (default: $DRYWALL_QA_DATA or ../shared/data)")
    parser.add_argument("--model", help="checkpoint (default: the bundled model)")
    parser.add_argument("--limit", type=int, default=64, help="photos per split (default 64)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine", choices=ENGINES, default="auto", help="inference engine (default auto)")
    parser.add_argument("--findings-photos", type=int, default=8, help="crack photos of the findings check")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 50 MP memory check")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = data_root(args.data_root)
    segmenter = Segmenter.load(args.model, engine=args.engine)
    cracks, taping = CocoSplit(split_dir(root, "cracks", "valid")), CocoSplit(split_dir(root, "taping", "valid"))
    policies = {p: segmenter.scale_policy(p) for p in (CRACK, TAPING)}
    print(f"model: {segmenter.name}, engine {args.engine}; default policies: "
          + ", ".join(f"{p} → {v}" for p, v in policies.items()))
    figures = print_quality(segmenter, cracks, taping, args.limit)
    for link in (False, True):
        figures["findings_count_ratio"], figures["findings_length_ratio"] = print_findings(
            segmenter, cracks, args.findings_photos, link)
    two, four = photo_seconds(segmenter, [CRACK, TAPING]), photo_seconds(segmenter, MEMORY_PROMPTS[:4])
    single = photo_seconds(single_scale(segmenter), [CRACK, TAPING])
    figures["pyramid_time_ratio"] = two / single
    print(f"4032x3024 photo: {two:.2f} s with 2 prompts, {four:.2f} s with 4: {(four - two) / 2:.2f} s per added "
          f"prompt; 2 prompts without the pyramids' zoomed-out passes: {single:.2f} s (ratio {two / single:.2f})")
    if not args.skip_memory:
        base, peak = peak_rss_mb(args.model, False), peak_rss_mb(args.model, True)
        print(f"50 MP photo, 8 prompts, tiling on: peak RSS {peak:.0f} MiB; model + photo alone {base:.0f} MiB "
              f"(+{peak - base:.0f} MiB, ratio {peak / base:.2f})")
    print(" ".join(f"{name}: {value:.3f}" for name, value in figures.items()))


if __name__ == "__main__":
    main()
