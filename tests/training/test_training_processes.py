"""``drywall-qa train`` in real processes: a run killed with SIGKILL mid-epoch resumes losing at most that epoch, and
a 2-process data-parallel run (torchrun, gloo on CPU) equals a 1-process run with the same global batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.distributed
from safetensors.torch import load_file

from drywall_qa.training.checkpoint import STATE_FILE
from drywall_qa.training.history import read_history
from drywall_qa.training.loop import train
from tests.helpers import make_data_root, state_of, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}


def cli_args(config) -> list[str]:
    """The command-line flags of a ``tiny_config``."""
    return ["--model", config.model, "--dataset", config.dataset, "--data-root", str(config.data_root),
            "--output-dir", str(config.output_dir), "--epochs", str(config.epochs), "--batch-size",
            str(config.batch_size), "--lr", str(config.lr), "--prompts", config.prompts, "--negatives",
            str(config.negatives), "--loss", config.loss, *(["--train-size", str(config.train_size)]
                                                            if config.train_size else [])]


def load_state_when_present(out: Path) -> int | None:
    """The completed epochs in the training state, or None before the first checkpoint; fails if it is corrupt."""
    try:
        return torch.load(out / STATE_FILE, map_location="cpu", weights_only=False)["epoch"]
    except FileNotFoundError:
        return None


def test_sigkill_mid_epoch_loses_at_most_that_epoch(tiny_lite_dir: Path, tmp_path: Path) -> None:
    data = make_data_root(tmp_path / "data", train_count=12)
    config = tiny_config(tiny_lite_dir, data, tmp_path / "run", epochs=3, batch_size=2, train_size=32)
    command = [sys.executable, "-m", "train", *cli_args(config)]
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: set[int | None] = set()
    try:
        deadline = time.monotonic() + 300
        while load_state_when_present(config.output_dir) != 1:  # every read checks the file is whole
            seen.add(load_state_when_present(config.output_dir))
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "epoch 1 did not finish in time"
            time.sleep(0.02)
        time.sleep(0.1)  # into epoch 2, which takes far longer (12 steps, validation, plotting)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert seen <= {None, 1}
    assert load_state_when_present(config.output_dir) == 1  # epoch 2 was lost, epoch 1 was not
    assert [r["epoch"] for r in read_history(config.output_dir)] in ([0], [0, 1])  # killed before or after logging

    resumed = subprocess.run([*command, "--resume"], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed after epoch 1" in resumed.stderr
    assert [r["epoch"] for r in read_history(config.output_dir)] == [0, 1, 2]
    assert load_state_when_present(config.output_dir) == 3
    assert (config.output_dir / "best" / "model.safetensors").is_file()


@pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                    reason="torch.distributed with the gloo backend is not available in this torch build")
def test_two_process_data_parallel_equals_one_process_with_the_global_batch(tiny_clipseg_dir: Path,
                                                                            tmp_path: Path) -> None:
    data = make_data_root(tmp_path / "data", train_count=4)  # 8 samples: 2 steps of 2 × 2
    parallel = tiny_config(tiny_clipseg_dir, data, tmp_path / "parallel", epochs=1, batch_size=2)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "train", *cli_args(parallel)]
    result = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]

    single = replace(parallel, output_dir=tmp_path / "single", batch_size=4)
    train(single)
    ours, reference = state_of(parallel.output_dir), state_of(single.output_dir)
    assert ours["epoch"] == reference["epoch"] == 1
    start = load_file(tiny_clipseg_dir / "model.safetensors")
    assert any(not torch.equal(start[name], weight) for name, weight in reference["model"].items())
    # attention ignores a bias shared by all keys: its gradient is rounding noise, which Adam scales to lr-sized steps
    compared = [name for name in reference["model"] if not name.endswith("k_proj.bias")]
    for name in compared:
        torch.testing.assert_close(ours["model"][name], reference["model"][name], rtol=1e-4, atol=1e-5, msg=name)
    (record,) = read_history(parallel.output_dir)  # validated and logged once, by the main process
    assert record["train_loss"] == pytest.approx(read_history(single.output_dir)[0]["train_loss"], rel=1e-4)
    assert (parallel.output_dir / "best" / "model.safetensors").is_file()
    assert not list(parallel.output_dir.glob("best.*"))
