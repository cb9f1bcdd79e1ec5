"""Bad command-line values give one line, ``prog: error: <field>: <problem>. <what to do>``, and exit code 2 — never
a traceback (issue 13, item 10): non-finite or out-of-range numbers, ports, thread counts, unusable paths, an
output folder that is a file, a damaged checkpoint."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drywall_qa.cli.app import parse_args as app_args
from drywall_qa.cli.args import (
    count_arg,
    existing_folder_arg,
    folder_arg,
    fraction_arg,
    non_negative_float_arg,
    path_arg,
    port_arg,
    positive_float_arg,
    probability_arg,
    threads_arg,
)
from drywall_qa.cli.predict import main as predict_main
from drywall_qa.cli.train import parse_args as train_args
from drywall_qa.core.errors import InputError
from drywall_qa.training.loop import TrainConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("parse", "text", "message"), [
    (positive_float_arg, "nan", "nan: not a finite number above 0. pass e.g. 0.0001"),
    (positive_float_arg, "inf", "inf: not a finite number above 0"),
    (positive_float_arg, "0", "0: not a finite number above 0"),
    (positive_float_arg, "-1e-3", "-1e-3: not a finite number above 0"),
    (positive_float_arg, "fast", "fast: not a finite number above 0"),
    (non_negative_float_arg, "-inf", "-inf: not a finite number of at least 0"),
    (probability_arg, "nan", "nan: not a number between 0 and 1 (exclusive). pass e.g. 0.5"),
    (probability_arg, "1", "1: not a number between 0 and 1 (exclusive)"),
    (fraction_arg, "1.5", "1.5: not a number from 0 to 1. pass e.g. 0.1"),
    (port_arg, "99999", "99999: not a whole number from 1 to 65535. pass e.g. 7860"),
    (port_arg, "0", "0: not a whole number from 1 to 65535"),
    (port_arg, "80.5", "80.5: not a whole number from 1 to 65535"),
    (threads_arg, "-3", "-3: not a whole number from 0 to 1024. pass e.g. 2"),
    (count_arg(1), "0", "0: not a whole number of at least 1. pass e.g. 1"),
    (count_arg(1), "9" * 5000, "not a whole number of at least 1"),
])
def test_number_validators(parse, text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse(text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_number_validators_accept_good_values() -> None:
    assert positive_float_arg("1e-5") == 1e-5 and non_negative_float_arg("0") == 0.0
    assert port_arg("65535") == 65535 and threads_arg("0") == 0 and count_arg(0, 3)("3") == 3
    assert math.isclose(probability_arg("0.25"), 0.25) and fraction_arg("1") == 1.0


def test_path_validators(tmp_path: Path) -> None:
    file = tmp_path / "taken.txt"
    file.write_text("x")
    assert folder_arg(str(tmp_path / "new")) == tmp_path / "new" and existing_folder_arg(str(tmp_path)) == tmp_path
    cases = [(folder_arg, str(file), "taken.txt: is an existing file, not a folder. pass a new or existing folder"),
             (existing_folder_arg, str(tmp_path / "none"), "none: no such folder. check the path"),
             (path_arg, "x" * 300, "a file or folder name in it is 300 bytes long; the limit is 255. rename it"),
             (path_arg, "a\0b", "a\\x00b: the path contains a NUL character")]
    for parse, text, message in cases:
        with pytest.raises(argparse.ArgumentTypeError) as info:
            parse(text)
        assert message in str(info.value)


def _last_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The last line on stderr (transformers' weight-loading progress bars may come before it)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def _exit_message(capsys: pytest.CaptureFixture[str], run, *args: str) -> str:
    """The error line of a command that must exit with status 2."""
    with pytest.raises(SystemExit) as info:
        run(list(args))
    assert info.value.code == 2
    return _last_line(capsys)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "wall.png"
    Image.fromarray(np.full((16, 16, 3), 120, np.uint8)).save(path)
    return path


def test_predict_refuses_an_existing_file_as_out(image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _exit_message(capsys, predict_main, str(image), "--prompts", "segment crack", "--out", str(image))
    assert line == (f"drywall-qa predict: error: argument --out: {image}: is an existing file, not a "
                    "folder. pass a new or existing folder for the outputs")


@pytest.mark.parametrize(("args", "message"), [
    (["/tmp/" + "w" * 300 + ".png"], "argument image: /tmp/www"),
    (["--threshold", "nan"], "argument --threshold: nan: not a number between 0 and 1"),
])
def test_predict_argument_errors(image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                 message: str) -> None:
    full = [*args, "--prompts", "segment crack", "--out", str(tmp_path / "out")]
    line = _exit_message(capsys, predict_main, *(full if args[0].startswith("/") else [str(image), *full]))
    assert line.startswith(f"drywall-qa predict: error: {message}")


def test_predict_reports_an_unwritable_out_and_a_damaged_model(image: Path, tiny_lite_dir: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    below_a_file = image / "out"  # a path through a file: mkdir raises NotADirectoryError
    assert predict_main([str(image), "--prompts", "segment crack", "--model", str(tiny_lite_dir),
                         "--out", str(below_a_file)]) == 2
    assert _last_line(capsys) == (f"drywall-qa predict: error: {below_a_file}: cannot write "
                                               "the results (Not a directory). pass a writable folder with --out")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "config.json").write_text('{"model_type": "drywall-qa-lite", "prompt_thresholds": {"x": NaN}}')
    assert predict_main([str(image), "--prompts", "segment crack", "--model", str(damaged),
                         "--out", str(tmp_path / "out")]) == 2
    assert _last_line(capsys) == (
        f"drywall-qa predict: error: {damaged / 'config.json'}: prompt_thresholds['x'] = nan is not a "
        "probability in [0, 1]. run `drywall-qa calibrate --model DIR` again, or delete the entry")


@pytest.mark.parametrize(("args", "message"), [
    (["--lr", "nan"], "argument --lr: nan: not a finite number above 0. pass e.g. 0.0001"),
    (["--lr", "0"], "argument --lr: 0: not a finite number above 0"),
    (["--lr", "-1"], "argument --lr: -1: not a finite number above 0"),
    (["--weight-decay", "inf"], "argument --weight-decay: inf: not a finite number of at least 0"),
    (["--negatives", "nan"], "argument --negatives: nan: not a number from 0 to 1"),
    (["--image-size", "100000"], "argument --image-size: 100000: not a whole number from 32 to 2048"),
    (["--seed", "-1"], "argument --seed: -1: not a whole number from 0 to 4294967295"),
    (["--epochs", "0"], "argument --epochs: 0: not a whole number of at least 1"),
])
def test_train_argument_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                               message: str) -> None:
    line = _exit_message(capsys, train_args, "--dataset", "cracks", "--data-root", str(tmp_path), "--output-dir",
                         str(tmp_path / "run"), *args)
    assert line.startswith(f"drywall-qa train: error: {message}")


def test_train_output_dir_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "run"
    file.write_text("")
    line = _exit_message(capsys, train_args, "--dataset", "cracks", "--data-root", str(tmp_path), "--output-dir",
                         str(file))
    assert line.startswith(f"drywall-qa train: error: argument --output-dir: {file}: is an existing file")


@pytest.mark.parametrize(("field", "value", "message"), [("lr", math.nan, "lr: nan is not a finite number above 0"),
                                                         ("weight_decay", -1.0, "weight_decay: -1.0 is not")])
def test_train_config_refuses_non_finite_numbers(tmp_path: Path, field: str, value: float, message: str) -> None:
    with pytest.raises(InputError, match=message):
        TrainConfig(dataset="cracks", data_root=tmp_path, output_dir=tmp_path, **{field: value})


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "99999"], "argument --port: 99999: not a whole number from 1 to 65535. pass e.g. 7860"),
    (["--port", "-1"], "argument --port: -1: not a whole number from 1 to 65535"),
    (["--threads", "-3"], "argument --threads: -3: not a whole number from 0 to 1024. pass e.g. 2"),
    (["--data-root", "/no/such/folder"], "argument --data-root: /no/such/folder: no such folder. check the path"),
    (["--out", __file__], f"argument --out: {__file__}: is an existing file, not a folder"),
])
def test_app_argument_errors(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert _exit_message(capsys, app_args, *args).startswith(f"drywall-qa app: error: {message}")


@pytest.mark.parametrize("command", [
    ["-m", "drywall_qa.cli.predict", "x.png", "--prompts", "crack", "--out", __file__],
    ["-m", "train", "--dataset", "cracks", "--data-root", ".", "--output-dir", "out", "--lr", "nan"],
    ["app.py", "--port", "99999"],
])
def test_commands_exit_2_with_one_line_and_no_traceback(command: list[str]) -> None:
    done = subprocess.run([sys.executable, *command], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(("drywall-qa predict: error: argument --out",
                                                            "drywall-qa train: error: argument --lr: nan",
                                                            "python app.py: error: argument --port: 99999"))


@pytest.mark.parametrize("argv, message", [
    (["--split", "SPLIT", "--out", "FILE"], "argument --out: FILE: is an existing file, not a folder"),
    (["--split", "a\0b", "--out", "OUT"], "argument --split"),
])
def test_evaluate_command_line_paths_give_one_line(argv: list[str], message: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from drywall_qa.cli.evaluate import build_parser

    file = tmp_path / "taken"
    file.write_text("x")
    names = {"SPLIT": str(tmp_path), "FILE": str(file), "OUT": str(tmp_path / "out")}
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([names.get(arg, arg) for arg in argv])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert info.value.code == 2 and message.replace("FILE", str(file)) in error


def test_visual_prompt_alpha_must_be_a_fraction(capsys: pytest.CaptureFixture[str]) -> None:
    from drywall_qa.cli.args import add_visual_prompt_arguments as add_arguments

    parser = argparse.ArgumentParser(prog="x")
    add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--alpha", "nan"])
    assert "argument --alpha: nan: not a number from 0 to 1" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["x.png", "--prompts", "crack", "--threshold", "7", "--out", "out"],
                                  ["x.png", "--out", "out"]])
def test_predict_refuses_a_bad_argument_before_loading_torch(argv: list[str]) -> None:
    """A typo is answered without the seconds of importing torch and the model code (a fresh interpreter)."""
    code = ("import sys, json; from drywall_qa.cli.predict import main\n"
            f"try: main({argv!r})\nexcept SystemExit as e: print(json.dumps([e.code, 'torch' in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [2, False], done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_help_descriptions_are_plain_text() -> None:
    from drywall_qa.cli.args import description

    doc = "Runs a job (see :mod:`drywall_qa.jobs`, :meth:`~a.B.c`) into ``report.html``.\n\nMore."
    assert description(doc) == "Runs a job (see drywall_qa.jobs, a.B.c) into report.html."
    from drywall_qa.cli.job import build_parser

    assert "`" not in build_parser().format_help()
