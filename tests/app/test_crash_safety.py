"""Nothing lost: review decisions and evaluation outputs survive a writer killed mid-write (SIGKILL, no clean-up)
and failed renames. The monkeypatched failures of :func:`drywall_qa.core.atomic.write_atomic` and of a review save are
in ``test_evaluate.py::test_write_atomic_keeps_old_file_on_failure`` and ``test_ui_review.py::
test_store_failed_write_keeps_the_previous_file``; a stopped evaluation in ``test_ui_evaluate.py`` and, over HTTP
with a cancelled one, in ``test_bad_input.py``."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from drywall_qa.app.evaluate.tab import EvaluateForm, EvaluateTab
from drywall_qa.app.models import ModelCache
from tests.helpers import make_split

REPO = Path(__file__).resolve().parents[2]
#: each payload is large enough that the writer spends nearly all its time inside write_atomic
PAYLOAD_BYTES = 8 * 2**20
#: acknowledged writes to wait for before the kill
ACKS_BEFORE_KILL = 3
#: writers killed per test, each at a different moment
KILLS = 3

#: a writer that never stops: prints the number of each write after it returned
WRITERS = {
    "file": f"""
import sys
from pathlib import Path
from drywall_qa.core.atomic import write_atomic
target = Path(sys.argv[1])
payloads = [bytes([k]) * {PAYLOAD_BYTES} for k in range(2)]
i = 0
while True:
    write_atomic(target, payloads[i % 2] + b"%12d" % i)
    print(i, flush=True)
    i += 1
""",
    "reviews": """
import sys
from pathlib import Path
from drywall_qa.review import DecisionStore
store = DecisionStore(Path(sys.argv[1]), "cracks/valid")
i = len(store.load())
while True:
    store.decide(f"img{i:05d}.png", "prediction_wrong" if i % 3 else "prediction_correct", "x" * 1900)
    print(i, flush=True)
    i += 1
""",
}


def run_and_kill(kind: str, target: Path, seed: int) -> int:
    """Start the ``kind`` writer on ``target``, SIGKILL it at a random moment after a few writes; the last write
    it acknowledged."""
    process = subprocess.Popen([sys.executable, "-c", WRITERS[kind], str(target)], cwd=REPO, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    acks = [int(process.stdout.readline()) for _ in range(ACKS_BEFORE_KILL)]
    try:
        process.wait(timeout=random.Random(seed).uniform(0.0, 0.2))
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read()
    acks += [int(line) for line in process.stdout.read().split()]
    return acks[-1]


def test_file_writer_killed_mid_write_leaves_a_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.write_bytes(b"\2" * PAYLOAD_BYTES + b"%12d" % -1)
    for seed in range(KILLS):
        acknowledged = run_and_kill("file", target, seed)
        data = target.read_bytes()
        number = int(data[-12:])
        assert len(data) == PAYLOAD_BYTES + 12 and data[:-12] == bytes([number % 2]) * PAYLOAD_BYTES
        assert acknowledged <= number <= acknowledged + 1     # the last acknowledged write, or the one after it


def test_review_writer_killed_mid_save_keeps_every_acknowledged_decision(tmp_path: Path) -> None:
    target = tmp_path / "reviews" / "cracks__valid.json"
    for seed in range(KILLS):                   # each writer carries on from the entries already saved
        acknowledged = run_and_kill("reviews", target, seed)
        reviews = json.loads(target.read_text(encoding="utf-8"))["images"]
        assert all(f"img{i:05d}.png" in reviews for i in range(acknowledged + 1))
        assert len(reviews) in {acknowledged + 1, acknowledged + 2}
        assert reviews["img00000.png"]["decision"] == "prediction_correct"


def test_failed_rename_of_an_evaluation_keeps_the_previous_one(tiny_lite_dir: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    make_split(tmp_path / "data" / "cracks" / "valid", n=3)
    tab = EvaluateTab(ModelCache(device="cpu"), [tmp_path / "data"], tmp_path / "out")

    def evaluate() -> str:
        form = EvaluateForm(model=str(tiny_lite_dir), split=str(tmp_path / "data" / "cracks" / "valid"),
                            selected=["segment crack"], limit=3, panels=1)
        return tab.run(form, SimpleNamespace(session_hash="s"), lambda *a, **k: None).status

    assert evaluate().startswith("Evaluated 3")
    [kept] = (tmp_path / "out" / "evaluations").iterdir()
    before = {p.relative_to(kept): p.read_bytes() for p in kept.rglob("*") if p.is_file()}

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("drywall_qa.app.evaluate.tab.os.replace", fail)
    status = evaluate()
    assert "No space left on device" in status
    assert list((tmp_path / "out" / "evaluations").iterdir()) == [kept]          # no partial folder left
    assert {p.relative_to(kept): p.read_bytes() for p in kept.rglob("*") if p.is_file()} == before
