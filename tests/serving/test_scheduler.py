"""The model scheduler: interactive units before batch ones, round-robin over clients, and a small request waiting
at most one unit of a large tiled prediction between its own units."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from drywall_qa.core.segmenter import Segmenter
from drywall_qa.core.tiling import window_grid
from drywall_qa.core.views import WINDOW_BATCH
from drywall_qa.serving.lanes import HeavyLane
from drywall_qa.serving.scheduler import Caller, Priority, Scheduler, acting_for, current_caller

BATCH, INTERACTIVE = Priority.BATCH, Priority.INTERACTIVE


def queue_units(scheduler: Scheduler, callers: list[Caller], order: list[str]) -> list[threading.Thread]:
    """One thread per caller asking for a turn (in this order, each queued before the next starts); each records
    its client when served."""
    threads = []
    for caller in callers:
        def unit(caller: Caller = caller) -> None:
            with scheduler.turn(caller):
                order.append(caller.client)
        threads.append(threading.Thread(target=unit, daemon=True))
        waiting = scheduler.waiting()
        threads[-1].start()
        deadline = time.monotonic() + 5
        while scheduler.waiting() == waiting and time.monotonic() < deadline:
            time.sleep(0.001)
    return threads


def served_after_release(callers: list[Caller]) -> list[str]:
    """The order in which ``callers``' units are served once a unit holding the model ends."""
    scheduler, order = Scheduler(), []
    with scheduler.turn(Caller("holder")):
        threads = queue_units(scheduler, callers, order)
        assert scheduler.waiting() == len(callers)
    for thread in threads:
        thread.join(5)
    return order


def test_interactive_units_go_before_batch_units_queued_earlier() -> None:
    order = served_after_release([Caller("job", BATCH), Caller("evaluation", BATCH), Caller("inspect", INTERACTIVE)])
    assert order == ["inspect", "job", "evaluation"]


def test_clients_take_turns_and_one_client_keeps_its_own_order() -> None:
    callers = [Caller("a", BATCH), Caller("a", BATCH), Caller("a", BATCH), Caller("b", BATCH), Caller("c", BATCH)]
    order = served_after_release(callers)
    assert order == ["a", "b", "c", "a", "a"]


def test_a_free_model_is_granted_at_once_and_counted() -> None:
    scheduler = Scheduler()
    with scheduler.turn():
        pass
    with scheduler.turn(Caller("x", BATCH)):
        assert scheduler.waiting() == 0
    assert scheduler.turns == 2


def test_the_heavy_lane_runs_its_body_for_its_client_at_batch_priority() -> None:
    assert current_caller() == Caller()
    with HeavyLane().admit("10.0.0.7"):
        assert current_caller() == Caller("10.0.0.7", BATCH)
    assert current_caller() == Caller()


@pytest.fixture(scope="module")
def tiny(tiny_lite_dir, one_thread) -> Segmenter:
    return Segmenter.load(tiny_lite_dir, "cpu")


def test_a_small_request_waits_at_most_one_unit_of_a_large_tiled_one(tiny: Segmenter) -> None:
    scheduler, turns = Scheduler(), []
    small_asked = threading.Event()

    @contextmanager
    def turn() -> Iterator[None]:
        caller = current_caller()
        if caller.client == "small":
            small_asked.set()
        with scheduler.turn():
            turns.append(caller.client)
            if caller.client == "large" and turns.count("large") == 3:
                assert small_asked.wait(5)                  # the small request arrives mid-way
                while not scheduler.waiting():
                    time.sleep(0.001)
            yield

    photo = np.random.default_rng(0).integers(0, 255, (3 * tiny.backend.tile_window,) * 2 + (3,), np.uint8)

    def large() -> None:
        with acting_for(Caller("large", BATCH)):
            tiny.predict(photo, ["segment crack", "segment taping area"], tiling="on", turn=turn)

    thread = threading.Thread(target=large, daemon=True)
    thread.start()
    while turns.count("large") < 3:
        time.sleep(0.001)
    with acting_for(Caller("small", INTERACTIVE)):
        tiny.predict(photo[:64, :64], ["segment crack"], turn=turn)
    thread.join(30)
    first, last = turns.index("small"), len(turns) - 1 - turns[::-1].index("small")
    between = turns[first:last + 1]
    assert first == 3                                       # served right after the unit running when it came
    assert between.count("small") >= 2                      # prompts, then the whole view: two units
    assert "large large" not in " ".join(between)            # never two large units between the small one's
    windows = len(window_grid(*photo.shape[:2], tiny.backend.tile_window))
    assert turns.count("large") == 1 + -(-windows // WINDOW_BATCH)   # prompts, then every batch of windows
    assert turns[-1] == "large"
