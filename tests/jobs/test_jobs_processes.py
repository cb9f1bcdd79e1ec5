"""``drywall-qa job`` in real processes: a job killed with SIGKILL mid-job and run again equals an
uninterrupted job, and a 2-process run (Accelerate, gloo on CPU) equals a 1-process run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch.distributed

from tests.jobs.test_jobs import PROMPTS, make_photos, outputs

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}


def job_args(model: Path, photos: Path, out: Path) -> list[str]:
    return [str(photos), "--prompts", *PROMPTS, "--out", str(out), "--model", str(model), "--threshold", "0.45",
            "--min-area", "4"]


def inspect(model: Path, photos: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "drywall_qa.cli.job", *job_args(model, photos, out)], cwd=REPO,
                          env=ENV, capture_output=True, text=True, timeout=600)


def test_sigkill_mid_job_then_rerun_equals_an_uninterrupted_job(tiny_lite_dir: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    make_photos(photos, 10, size=(1200, 900))
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "drywall_qa.cli.job", *job_args(tiny_lite_dir, photos, killed)]
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while len(list((killed / "photos").glob("*.json"))) < 2:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "two photos were not done in time"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    done = len(list((killed / "photos").glob("*.json")))
    assert 2 <= done < 10 and not (killed / "report.html").exists()

    resumed = inspect(tiny_lite_dir, photos, killed)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{done} done earlier, {10 - done} to run" in resumed.stderr
    whole = inspect(tiny_lite_dir, photos, tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert outputs(killed) == outputs(tmp_path / "whole")
    assert not list(killed.rglob("*.tmp"))


@pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                    reason="torch.distributed with the gloo backend is not available in this torch build")
def test_two_processes_equal_one(tiny_lite_dir: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    make_photos(photos, 5, size=(320, 240))
    (photos / "broken.jpg").write_bytes(b"broken")
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m",
               "drywall_qa.cli.job", *job_args(tiny_lite_dir, photos, tmp_path / "two")]
    two = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "6 to run on 2 processes" in two.stderr
    one = inspect(tiny_lite_dir, photos, tmp_path / "one")
    assert one.returncode == 0, one.stderr[-2000:]
    assert outputs(tmp_path / "two") == outputs(tmp_path / "one")
    assert (tmp_path / "two" / "report.html").read_text() == (tmp_path / "one" / "report.html").read_text()
