"""argparse value types shared by the command-line entry points.

Each refuses a bad value with one line, which argparse prints as ``prog: error: argument --x: <value>: <problem>.
<what to do>`` before exiting with status 2: a number that is not a number, not finite or out of range, a path the
file system cannot hold, an output folder that is an existing file.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path

from drywall_qa.core.engine import ENGINES, default_threads, set_threads
from drywall_qa.core.errors import InputError
from drywall_qa.core.imaging import path_problem, short_path
from drywall_qa.core.tiling import TILING_MODES
from drywall_qa.core.visual_prompts import DEFAULT_ENGINEERING, STEPS, VisualPrompt
from drywall_qa.data.coco import CocoSplit

#: most CPU threads a command may ask torch for (above any core count; stops typos such as 8000)
MAX_THREADS = 1024


#: a reST role with its target (``:mod:`a.b```, ``:meth:`~a.B.c```) or a literal (````x````)
_MARKUP = re.compile(r":[a-z]+:`~?([^`]+)`|``([^`]+)``")


def description(doc: str) -> str:
    """A command's ``--help`` description: the first paragraph of its module docstring, with the reST markup that
    documentation tools read (roles, double back-quotes) reduced to plain text."""
    return _MARKUP.sub(lambda m: m.group(1) or m.group(2), doc.split("\n\n")[0])


def _number_arg(kind: type[int] | type[float], wanted: str, accept: Callable[[float], bool],
                example: str) -> Callable[[str], int | float]:
    """A parser of finite ``kind`` values that ``accept`` takes; ``wanted`` describes them, ``example`` is one."""
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and accept(value)):
            raise argparse.ArgumentTypeError(f"{short_path(text)}: not {wanted}. pass e.g. {example}")
        return value
    return parse


#: a probability strictly between 0 and 1 (a threshold)
probability_arg = _number_arg(float, "a number between 0 and 1 (exclusive)", lambda v: 0 < v < 1, "0.5")
#: a number from 0 to 1, both included (a probability of an augmentation, a crop fraction)
fraction_arg = _number_arg(float, "a number from 0 to 1", lambda v: 0 <= v <= 1, "0.1")
#: a crop side as a fraction of the image side: above 1 zooms out
crop_fraction_arg = _number_arg(float, "a number above 0, at most 4", lambda v: 0 < v <= 4, "0.5")
#: a finite number above 0 (a learning rate)
positive_float_arg = _number_arg(float, "a finite number above 0", lambda v: v > 0, "0.0001")
#: a finite number of at least 0 (a weight decay)
non_negative_float_arg = _number_arg(float, "a finite number of at least 0", lambda v: v >= 0, "0.0001")


def count_arg(minimum: int, maximum: int | None = None, example: int | None = None) -> Callable[[str], int]:
    """A whole number from ``minimum`` to ``maximum`` (None: no upper bound)."""
    wanted = (f"a whole number of at least {minimum}" if maximum is None
              else f"a whole number from {minimum} to {maximum}")
    top = math.inf if maximum is None else maximum
    return _number_arg(int, wanted, lambda v: minimum <= v <= top, str(minimum if example is None else example))


#: a TCP port to listen on
port_arg = count_arg(1, 65535, 7860)
#: CPU threads per model call; 0: :func:`~drywall_qa.core.engine.default_threads`
threads_arg = count_arg(0, MAX_THREADS, 2)


def path_arg(text: str) -> Path:
    """A path the file system can hold (:func:`~drywall_qa.core.imaging.path_problem`: no NUL, names ≤ 255 bytes)."""
    problem = path_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{short_path(text)}: {problem}. rename it or pass another path")
    return Path(text)


def folder_arg(text: str) -> Path:
    """An output folder: new, or an existing folder — not an existing file."""
    path = path_arg(text)
    if _ask(path, lambda p: p.exists() and not p.is_dir()):
        raise argparse.ArgumentTypeError(f"{short_path(text)}: is an existing file, not a folder. pass a new or "
                                         "existing folder for the outputs")
    return path


def existing_folder_arg(text: str) -> Path:
    """An input folder that must exist."""
    path = path_arg(text)
    if not _ask(path, Path.is_dir):
        raise argparse.ArgumentTypeError(f"{short_path(text)}: no such folder. check the path")
    return path


def _ask(path: Path, question: Callable[[Path], bool]) -> bool:
    """``question(path)``, a file-system error (no permission to look) becoming an argument error."""
    try:
        return question(path)
    except OSError as err:
        raise argparse.ArgumentTypeError(f"{short_path(path)}: cannot be checked ({err.strerror or err}). check "
                                         "the path and its permissions") from None


def add_engine_argument(parser: argparse.ArgumentParser) -> None:
    """``--engine``: what runs the model (:mod:`drywall_qa.core.engine`)."""
    parser.add_argument("--engine", choices=ENGINES, default="auto",
                        help="auto: ONNX Runtime for the lite model on a CPU where it is installed, else PyTorch; "
                        "torch: PyTorch only (the reference); onnxruntime: insist on it (default auto)")


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--engine`` and ``--threads``, for the commands that load a model; read back by :func:`engine_from_args`."""
    add_engine_argument(parser)
    parser.add_argument("--threads", type=threads_arg, default=0,
                        help=f"CPU threads per model call, both engines (default 0: half the cores, at least one; "
                        f"here {default_threads()})")


def engine_from_args(args: argparse.Namespace) -> str:
    """Set the thread count ``--threads`` asks for and return the ``--engine`` to load the model with."""
    set_threads(args.threads)
    return args.engine


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--device``, ``--threshold``, ``--tiling``, ``--engine`` and ``--threads``, shared by the
    commands that run a Segmenter."""
    parser.add_argument("--model", help="checkpoint folder, alias (lite, clipseg) or hub id; default: bundled model")
    parser.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--threshold", type=probability_arg,
                        help="threshold for every prompt (default: the model's per-prompt thresholds, else 0.5)")
    parser.add_argument("--tiling", choices=TILING_MODES, default="auto",
                        help="auto: each prompt's scale policy (whole photo, overlapping windows, or both); off: the "
                        "whole photo only; on: windows for every prompt (default auto)")
    add_engine_arguments(parser)


def add_visual_prompt_arguments(parser: argparse.ArgumentParser) -> None:
    """The visual-prompt options shared by the command-line tools."""
    group = parser.add_argument_group("visual prompt (CLIPSeg backend)")
    group.add_argument("--support", type=path_arg, help="example image showing the object to look for")
    group.add_argument("--support-mask", type=path_arg, help="mask of the object in --support (white on black PNG)")
    group.add_argument("--support-split", type=path_arg, help="take the example from this COCO split instead")
    group.add_argument("--support-index", type=int, default=0, help="image index in --support-split (default 0)")
    group.add_argument("--engineering", default=DEFAULT_ENGINEERING,
                       help=f"'+'-joined subset of {', '.join(STEPS)} (default {DEFAULT_ENGINEERING})")
    group.add_argument("--alpha", type=fraction_arg, default=1.0,
                       help="example weight vs the first text prompt: c = α·image + (1−α)·text (default 1)")


def visual_prompt_from_arguments(args: argparse.Namespace, text: str | None) -> VisualPrompt | None:
    """The visual prompt the options describe (None without --support/--support-split); mixed with ``text``."""
    options = {"engineering": args.engineering, "alpha": args.alpha, "text": text}
    if args.support is not None and args.support_split is not None:
        raise InputError("--support / --support-split", "both given", "take the example from one of them")
    if args.support_split is not None:
        return VisualPrompt.from_split(CocoSplit(args.support_split), args.support_index, **options)
    if args.support is None:
        return None
    if args.support_mask is None:
        raise InputError("--support-mask", "missing", "give the mask of the object in the --support image")
    return VisualPrompt.from_source(args.support, args.support_mask, name=args.support.name, **options)
