"""The ``drywall-qa`` command: one subcommand per task, each a module of this package with its own ``main``.

    drywall-qa predict wall.jpg --prompts "segment crack" --out out/wall
    drywall-qa job site-visit/ --prompts "segment crack" --out jobs/visit --mm-per-pixel 0.5
    drywall-qa evaluate --split ../shared/data/cracks/valid --dataset cracks --out outputs/cracks
    drywall-qa app

A subcommand's module is imported only when it runs, so ``drywall-qa --help`` and a mistyped command answer at once.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import NamedTuple


class Command(NamedTuple):
    """A subcommand: the module under ``drywall_qa.cli`` whose ``main(argv)`` runs it, and what it does."""

    module: str
    summary: str


COMMANDS: dict[str, Command] = {
    "predict": Command("predict", "segment one image with text and/or visual prompts"),
    "job": Command("job", "inspect a folder, glob or zip of site photos: findings, report, exports"),
    "evaluate": Command("evaluate", "score a model on a COCO split (mIoU, Dice, crack scores, intervals)"),
    "train": Command("train", "fine-tune CLIPSeg's decoder or train drywall-qa-lite"),
    "calibrate": Command("calibrate", "tune thresholds, shapes, scales and presence on validation splits"),
    "review": Command("review", "export a reviewed split with its corrections"),
    "app": Command("app", "serve the web app"),
    "semantic": Command("semantic", "several prompts → one label map, with per-class scores"),
    "selection": Command("selection", "what choosing among checkpoints on a validation split costs"),
    "concepts": Command("concepts", "which prompts a model knows, and the similarity bar between them"),
    "width-bound": Command("width_bound", "the best score crack labels of varying width allow"),
}


def usage() -> str:
    """The top-level help: the subcommands, one line each."""
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()]
    return ("usage: drywall-qa <command> [options]   (drywall-qa <command> --help for its options)\n\n"
            "commands:\n" + "\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the subcommand named by the first argument with the rest of the arguments."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from drywall_qa import __version__

        print(f"drywall-qa {__version__}")
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"drywall-qa: error: unknown command {args[0]!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"{__name__}.{command.module}")
    return module.main(args[1:]) or 0
