"""The package's layers: the core imports nothing above it, nor gradio, pycocotools or the command-line helpers; the
``drywall-qa`` command lists every subcommand; the commands' former module paths still run."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import drywall_qa
from drywall_qa._command_aliases import ALIASES
from drywall_qa.cli import COMMANDS, main

PACKAGE = Path(drywall_qa.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return found | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


def test_the_core_imports_no_layer_above_it() -> None:
    upward = {f"{path.relative_to(PACKAGE)}: {name}" for path in (PACKAGE / "core").rglob("*.py")
              for name in _imports(path)
              if name.startswith("drywall_qa.") and not name.startswith("drywall_qa.core")}
    assert upward == set()


def test_importing_the_core_loads_neither_gradio_nor_pycocotools() -> None:
    code = ("import sys, drywall_qa.core.segmenter, drywall_qa.core.result; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gradio', 'pycocotools') "
            "or m.startswith('drywall_qa.cli')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_feature_packages_do_not_import_the_app_or_the_commands() -> None:
    features = ("data", "evaluation", "calibration", "jobs", "review", "training", "serving")
    wrong = {f"{path.relative_to(PACKAGE)}: {name}" for feature in features
             for path in (PACKAGE / feature).rglob("*.py") if path.name != "__main__.py"   # the command's alias
             for name in _imports(path) if name.startswith(("drywall_qa.app", "drywall_qa.cli", "gradio"))}
    assert wrong == set()


def test_the_command_lists_its_subcommands(capsys: pytest.CaptureFixture) -> None:
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    assert all(f"  {name} " in listed for name in COMMANDS)
    assert main(["segment"]) == 2
    assert "unknown command 'segment'" in capsys.readouterr().err


def test_every_subcommand_has_a_main() -> None:
    for command in COMMANDS.values():
        module = __import__(f"drywall_qa.cli.{command.module}", fromlist=["main"])
        assert callable(module.main)


@pytest.mark.parametrize("old", sorted(ALIASES))
def test_former_module_paths_find_their_command(old: str) -> None:
    spec = importlib.util.find_spec(old)
    assert spec is not None and spec.name == old
    assert Path(spec.origin) == Path(importlib.util.find_spec(ALIASES[old]).origin)


def test_a_former_module_path_runs_as_its_command() -> None:
    done = subprocess.run([sys.executable, "-m", "drywall_qa.inspect", "--help"], capture_output=True, text=True,
                          timeout=300, cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: drywall-qa job ")
