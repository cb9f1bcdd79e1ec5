"""Segment one image from the command line: text prompts and/or a visual prompt → masks, coverage and presence,
optionally one semantic label map with a legend.

Writes ``masks/NN_<prompt>.png`` (white = mask), ``predictions.json`` (per prompt: threshold, coverage, presence,
whether it is an unknown concept and its closest trained prompt, mask file), ``support.png`` (the engineered example
image, with a visual prompt) and, with ``--semantic``, ``semantic.png`` (overlay + legend) and ``labels.png``
(0 = background, k = k-th prompt). An unknown concept's mask is written like any other, and a note says why not to
trust it.

    drywall-qa predict wall.jpg --prompts "segment crack" "segment taping area" --semantic --out out/wall
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from drywall_qa.cli.args import (
    add_model_arguments,
    add_visual_prompt_arguments,
    description,
    engine_from_args,
    folder_arg,
    path_arg,
    visual_prompt_from_arguments,
)
from drywall_qa.core.errors import InputError, ModelLoadError
from drywall_qa.core.imaging import load_image, short_path, write_png

if TYPE_CHECKING:
    from drywall_qa.core.result import Result
    from drywall_qa.core.segmenter import Condition
    from drywall_qa.core.visual_prompts import VisualPrompt

# torch and the model code are imported where they are first needed, so a bad argument is refused before they load


def write_outputs(result: Result, out_dir: Path, semantic: bool) -> None:
    """Write the masks and ``predictions.json`` (:meth:`Result.save`) and, with ``semantic``, the label map and its
    picture (named in ``predictions.json``)."""
    from drywall_qa.evaluation.semantic import render_semantic, semantic_map

    extra = {}
    if semantic:
        labels = semantic_map([p.probabilities for p in result], [p.mask for p in result])
        names = [p.prompt for p in result]
        out_dir.mkdir(parents=True, exist_ok=True)
        write_png(out_dir / "semantic.png", render_semantic(result.image, labels, names))
        write_png(out_dir / "labels.png", np.repeat(labels[..., None], 3, axis=2))
        extra["semantic"] = {"labels": ["background", *names], "file": "labels.png", "picture": "semantic.png"}
    result.save(out_dir, extra)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drywall-qa predict", description=description(__doc__))
    parser.add_argument("image", type=path_arg, help="image to segment")
    parser.add_argument("--prompts", nargs="+", help="text prompts (the first is mixed with a visual prompt "
                        "when --alpha < 1)")
    add_model_arguments(parser)
    parser.add_argument("--semantic", action="store_true", help="also write one label map of all prompts")
    parser.add_argument("--out", required=True, type=folder_arg, help="output folder (new or existing)")
    add_visual_prompt_arguments(parser)
    return parser


def _write(args: argparse.Namespace, example: VisualPrompt | None, result: Result) -> None:
    """Fill ``--out``: the engineered example image (a visual prompt), then :func:`write_outputs`."""
    args.out.mkdir(parents=True, exist_ok=True)
    if example is not None and not example.text_only:
        write_png(args.out / "support.png", example.support())
    write_outputs(result, args.out, args.semantic)


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
    from drywall_qa.core.presence import describe_presence
    from drywall_qa.core.segmenter import Segmenter

    try:
        prompts: list[Condition] = list(args.prompts or [])
        example = visual_prompt_from_arguments(args, prompts[0] if prompts else None)
        image = load_image(args.image)
        segmenter = Segmenter.load(args.model, device=args.device, engine=engine_from_args(args))
        result = segmenter.predict(image, prompts + ([example] if example else []), args.threshold,
                                   tiling=args.tiling, progress=_window_progress())
    except (InputError, ModelLoadError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    try:
        _write(args, example, result)
    except OSError as err:  # no permission, disk full, a file where a folder should be
        print(f"{parser.prog}: error: {short_path(args.out)}: cannot write the results ({err.strerror or err}). "
              "pass a writable folder with --out", file=sys.stderr)
        return 2
    for note in result.notes():
        print(f"{parser.prog}: note: {note}", file=sys.stderr)
    for prediction in result:
        verdict = describe_presence(prediction.presence, prediction.presence_calibrated, found=prediction.coverage > 0)
        print(f"{prediction.prompt[:48]:<48} coverage {prediction.coverage:7.2%}  {verdict}  ({prediction.view})")
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
