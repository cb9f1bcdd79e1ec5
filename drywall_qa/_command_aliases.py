"""The commands' former module paths, ``python -m drywall_qa.evaluate`` and the like, kept working: each names the
module of ``drywall_qa.cli`` that now holds the command, found when the old name is imported or run."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys

#: former module → the command module that replaced it
ALIASES = {
    "drywall_qa.predict": "drywall_qa.cli.predict",
    "drywall_qa.evaluate": "drywall_qa.cli.evaluate",
    "drywall_qa.calibrate": "drywall_qa.cli.calibrate",
    "drywall_qa.inspect": "drywall_qa.cli.job",
    "drywall_qa.semantic": "drywall_qa.cli.semantic",
    "drywall_qa.selection": "drywall_qa.cli.selection",
    "drywall_qa.concepts": "drywall_qa.cli.concepts",
    "drywall_qa.width_bound": "drywall_qa.cli.width_bound",
}


class CommandAliasFinder(importlib.abc.MetaPathFinder):
    """Finds a former module path as the source file of its command module, under the former name (so that
    ``python -m`` can run it as ``__main__``)."""

    def find_spec(self, fullname, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in ALIASES:
            return None
        current = importlib.util.find_spec(ALIASES[fullname])
        return importlib.util.spec_from_file_location(fullname, current.origin)


def install() -> None:
    """Add the finder once, after the standard ones (a real module of the same name would win)."""
    if not any(isinstance(finder, CommandAliasFinder) for finder in sys.meta_path):
        sys.meta_path.append(CommandAliasFinder())
