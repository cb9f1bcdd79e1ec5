"""Every hardening finding replayed against the running app (``bench.hostile`` with a tiny model, about 80 s)."""

from __future__ import annotations

import re

import pytest

from bench import hostile


def test_hostile_clients_neither_crash_nor_fool_the_app(capsys: pytest.CaptureFixture[str]) -> None:
    hostile.main(["--model", "tiny"])
    lines = capsys.readouterr().out.strip().splitlines()
    verdicts = [line for line in lines if re.match(r"^(ok|FAIL) ", line)]
    assert len(verdicts) == len(hostile.all_cases()), lines[-5:]
    assert [line for line in verdicts if not line.startswith("ok")] == []
    assert lines[-1] == f"hostile_cases: {len(hostile.all_cases())} failures: 0 crashes: 0"
