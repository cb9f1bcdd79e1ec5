"""Segment one image from the command line: text prompts and/or a visual prompt → masks, coverage and presence,
optionally one semantic label map with a legend.

Writes ``masks/NN_<prompt>.png`` (white = mask), ``predictions.json`` (per prompt: threshold, coverage, presence,
whether it is an unknown concept and its closest trained prompt, mask file), ``support.png`` (the engineered example
image, with a visual prompt) and, with ``--semantic``, ``semantic.png`` (overlay + legend) and ``labels.png``
(0 = background, k = k-th prompt). An unknown concept's mask is written like any other, and a note says why not to
trust it.

    python -m drywall_qa.predict wall.jpg --prompts "segment crack" "segment taping area" --semantic --out out/wall
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from drywall_qa import visual_prompts
from drywall_qa.atomic import write_atomic
from drywall_qa.cli_args import add_model_arguments, description, engine_from_args, folder_arg, path_arg
from drywall_qa.errors import InputError, ModelLoadError
from drywall_qa.file_names import safe_name
from drywall_qa.imaging import load_image, short_path

if TYPE_CHECKING:
    from drywall_qa.segmenter import Condition, Prediction

# torch and the model code are imported where they are first needed, so a bad argument is refused before they load


def write_outputs(image: np.ndarray, predictions: Sequence[Prediction], out_dir: Path, semantic: bool,
                  calibrated: Sequence[str] = ()) -> dict:
    """Write the masks, ``predictions.json`` and (``semantic``) the label map and its picture; return the JSON.
    ``calibrated``: the prompts whose presence is calibrated (a prediction's ``settings_from`` counts)."""
    from drywall_qa.evaluation import write_png
    from drywall_qa.semantic import render_semantic, semantic_map

    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    report: dict = {"predictions": []}
    for index, prediction in enumerate(predictions):
        name = f"masks/{index:02d}_{safe_name(prediction.prompt, 'prompt')}.png"
        write_png(out_dir / name, np.repeat(prediction.mask[..., None].astype(np.uint8) * 255, 3, axis=2))
        report["predictions"].append({"prompt": prediction.prompt, "threshold": prediction.threshold,
                                      "coverage": prediction.coverage, "presence": prediction.presence,
                                      "presence_calibrated": prediction.settings_from in calibrated,
                                      "settings_from": prediction.settings_from,
                                      "truncated": prediction.truncated,
                                      "unknown_concept": prediction.unknown_concept,
                                      "closest_concept": prediction.closest_concept,
                                      "concept_similarity": prediction.concept_similarity,
                                      "view": prediction.view, "mask": name})
    if semantic:
        labels = semantic_map([p.probabilities for p in predictions], [p.mask for p in predictions])
        names = [p.prompt for p in predictions]
        write_png(out_dir / "semantic.png", render_semantic(image, labels, names))
        write_png(out_dir / "labels.png", np.repeat(labels[..., None], 3, axis=2))
        report["semantic"] = {"labels": ["background", *names], "file": "labels.png", "picture": "semantic.png"}
    write_atomic(out_dir / "predictions.json", json.dumps(report, indent=2) + "\n")
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m drywall_qa.predict", description=description(__doc__))
    parser.add_argument("image", type=path_arg, help="image to segment")
    parser.add_argument("--prompts", nargs="+", help="text prompts (the first is mixed with a visual prompt "
                        "when --alpha < 1)")
    add_model_arguments(parser)
    parser.add_argument("--semantic", action="store_true", help="also write one label map of all prompts")
    parser.add_argument("--out", required=True, type=folder_arg, help="output folder (new or existing)")
    visual_prompts.add_arguments(parser)
    return parser


def _write(args: argparse.Namespace, image: np.ndarray, example: visual_prompts.VisualPrompt | None,
           predictions: Sequence[Prediction], calibrated: Sequence[str]) -> None:
    """Fill ``--out``: the engineered example image (a visual prompt), then :func:`write_outputs`."""
    from drywall_qa.evaluation import write_png

    args.out.mkdir(parents=True, exist_ok=True)
    if example is not None and not example.text_only:
        write_png(args.out / "support.png", example.support())
    write_outputs(image, predictions, args.out, args.semantic, calibrated)


def _window_progress() -> Callable[[int, int], None]:
    """A progress bar over the windows of a tiled prediction (shown on a terminal, once windows run)."""
    from tqdm import tqdm

    bar: list[tqdm] = []

    def update(done: int, total: int) -> None:
        if not bar:
            bar.append(tqdm(total=total, desc="windows", unit="window", disable=None, leave=False))
        bar[0].update(done - bar[0].n)
        if done == total:
            bar[0].close()
    return update


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.prompts is None and args.support is None and args.support_split is None:
        parser.error("give --prompts and/or a visual prompt (--support/--support-split)")
    from drywall_qa.presence import describe_presence
    from drywall_qa.segmenter import Segmenter, borrowed_settings_note, truncation_note, unknown_concept_note

    try:
        prompts: list[Condition] = list(args.prompts or [])
        example = visual_prompts.from_arguments(args, prompts[0] if prompts else None)
        image = load_image(args.image)
        segmenter = Segmenter.load(args.model, device=args.device, engine=engine_from_args(args))
        predictions = segmenter.predict(image, prompts + ([example] if example else []), args.threshold,
                                        tiling=args.tiling, progress=_window_progress())
    except (InputError, ModelLoadError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    calibrated = list(segmenter.backend.settings.presence)
    try:
        _write(args, image, example, predictions, calibrated)
    except OSError as err:  # no permission, disk full, a file where a folder should be
        print(f"{parser.prog}: error: {short_path(args.out)}: cannot write the results ({err.strerror or err}). "
              "pass a writable folder with --out", file=sys.stderr)
        return 2
    limit = segmenter.backend.max_prompt_tokens
    notes = [truncation_note(p.prompt, limit) for p in predictions if p.truncated]
    notes += [borrowed_settings_note(p) for p in predictions if p.borrowed_settings]
    notes += [unknown_concept_note(p, segmenter.backend.family) for p in predictions if p.unknown_concept]
    for note in notes:
        print(f"{parser.prog}: note: {note}", file=sys.stderr)
    for prediction in predictions:
        verdict = describe_presence(prediction.presence, prediction.settings_from in calibrated,
                                    found=prediction.coverage > 0)
        print(f"{prediction.prompt[:48]:<48} coverage {prediction.coverage:7.2%}  {verdict}  ({prediction.view})")
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
