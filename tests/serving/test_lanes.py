"""The heavy-job lane: bounded places, a per-client share, Stop while waiting; and the per-request job size."""

from __future__ import annotations

import threading
import time

import pytest

from drywall_qa.core.errors import InputError
from drywall_qa.evaluation.robustness import PERTURBATIONS
from drywall_qa.serving.lanes import HeavyLane, JobStopped, ServerBusy
from drywall_qa.serving.limits import MAX_JOB_PASSES, check_job_size, job_passes


def hold(lane: HeavyLane, client: str, release: threading.Event, entered: threading.Event) -> threading.Thread:
    def body() -> None:
        with lane.admit(client):
            entered.set()
            release.wait(10)
    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def test_one_client_holds_at_most_its_share() -> None:
    lane, release, entered = HeavyLane(running=1, waiting=3, per_client=1), threading.Event(), threading.Event()
    thread = hold(lane, "10.0.0.1", release, entered)
    assert entered.wait(5)
    with pytest.raises(ServerBusy, match="this client already has 1"):
        with lane.admit("10.0.0.1"):
            pass
    release.set()
    thread.join(5)
    with lane.admit("10.0.0.1"):             # the place is free again
        assert lane.admitted() == 1
    assert lane.admitted() == 0


def test_a_full_lane_refuses_at_once_and_waiters_run_in_turn() -> None:
    lane, release = HeavyLane(running=1, waiting=1, per_client=1), threading.Event()
    first, second = threading.Event(), threading.Event()
    threads = [hold(lane, "a", release, first)]
    assert first.wait(5)
    threads.append(hold(lane, "b", release, second))          # waits for the running one
    time.sleep(0.3)
    assert not second.is_set() and lane.admitted() == 2
    start = time.monotonic()
    with pytest.raises(ServerBusy, match="the server is busy: 2"):
        with lane.admit("c"):
            pass
    assert time.monotonic() - start < 0.5
    release.set()
    assert second.wait(5)
    for thread in threads:
        thread.join(5)
    assert lane.admitted() == 0


def test_stop_while_waiting_gives_up_the_place() -> None:
    lane, release, entered = HeavyLane(running=1, waiting=2), threading.Event(), threading.Event()
    thread = hold(lane, "a", release, entered)
    assert entered.wait(5)
    ahead: list[int] = []
    with pytest.raises(JobStopped):
        with lane.admit("b", stopped=lambda: bool(ahead), waiting=ahead.append):
            pass
    assert ahead == [1] and lane.admitted() == 1
    release.set()
    thread.join(5)


def test_job_size_counts_perturbed_passes_and_negatives() -> None:
    assert job_passes(images=10, negatives=5, prompts=2, perturbations=["blur", "noise", "jpeg"]) == (10 * 7 + 5) * 2
    check_job_size(MAX_JOB_PASSES, 0, 1)
    with pytest.raises(InputError, match="model passes, the limit per request"):
        check_job_size(500, 500, 8, list(PERTURBATIONS))
