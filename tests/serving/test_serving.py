"""Serving many clients: the per-request work budget, one large request at a time, and forwarded headers trusted
only from the proxies the operator names."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
import uvicorn

from drywall_qa.cli.app import parse_args
from drywall_qa.core.errors import InputError
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.serving.budget import LargeRequests, ServerBusy
from drywall_qa.serving.clients import FORWARDED_ALLOW_IPS, client_address, proxy_entry, trust_proxies
from drywall_qa.serving.service import ModelService


@pytest.fixture(scope="module")
def tiny(tiny_lite_dir, one_thread) -> Segmenter:
    return Segmenter.load(tiny_lite_dir, "cpu")


def test_a_request_above_the_work_budget_is_refused_in_one_line(tiny: Segmenter, monkeypatch) -> None:
    monkeypatch.setattr("drywall_qa.serving.budget.MAX_WORK", 64 * 64 * 2)
    service, photo = ModelService(), np.zeros((64, 64, 3), np.uint8)
    assert len(service.predict(tiny, photo, ["segment crack", "segment taping area"], tiling="off")) == 2
    with pytest.raises(InputError, match=r"request size: the 64×64 photo with 3 prompt view\(s\) is 0 M "
                                         r"pixel-views of model work; the limit is 0 M\. use fewer prompts"):
        service.predict(tiny, photo, ["segment crack", "segment taping area", "segment seam"], tiling="off")


def test_views_count_each_prompts_passes(tiny: Segmenter) -> None:
    side = tiny.backend.tile_window
    assert tiny.views((side // 2, side // 2), ["a", "b"], "on") == 2     # one window holds the photo: whole view
    assert tiny.views((3 * side, 3 * side), ["a", "b", "c"], "off") == 3
    with pytest.raises(InputError, match="tiling: 'sideways' is not one of"):
        tiny.views((10, 10), ["a"], "sideways")


def test_one_large_request_at_a_time_and_small_ones_pass() -> None:
    gate, inside, release = LargeRequests(large=100, max_wait_s=0.2), threading.Event(), threading.Event()

    def large() -> None:
        with gate.admit(100):
            inside.set()
            release.wait(5)
    thread = threading.Thread(target=large, daemon=True)
    thread.start()
    assert inside.wait(5)
    with gate.admit(99):                                   # small: straight through
        pass
    with pytest.raises(ServerBusy, match="another very large photo"):
        with gate.admit(10**9):
            pass
    release.set()
    thread.join(5)
    with gate.admit(10**9):                                # free again
        pass


async def _seen_client(headers: list[tuple[bytes, bytes]], peer: str) -> str:
    """The client address an app behind uvicorn's proxy-header handling sees for a request from ``peer``."""
    seen = {}

    async def app(scope, receive, send) -> None:
        seen["client"] = scope["client"][0]

    config = uvicorn.Config(app)
    config.load()
    await config.loaded_app({"type": "http", "client": (peer, 5000), "headers": headers, "scheme": "http"},
                            None, None)
    return seen["client"]


@pytest.mark.parametrize(("proxies", "peer", "expected"), [
    ([], "127.0.0.1", "127.0.0.1"),                         # loopback is no longer trusted by default
    (["10.0.0.0/8"], "10.1.2.3", "203.0.113.9"),            # a named proxy: its client
    (["10.0.0.0/8"], "198.51.100.4", "198.51.100.4"),       # anyone else: the header is ignored
])
def test_forwarded_for_is_read_only_from_named_proxies(monkeypatch, proxies, peer, expected) -> None:
    monkeypatch.delenv(FORWARDED_ALLOW_IPS, raising=False)
    trust_proxies(proxies)
    forged = [(b"x-forwarded-for", b"1.2.3.4, 203.0.113.9")]
    assert asyncio.run(_seen_client(forged, peer)) == expected


def test_proxy_option_is_checked_and_client_address_falls_back_to_local() -> None:
    assert parse_args(["--trusted-proxies", "10.0.0.0/8, 127.0.0.1"]).trusted_proxies == ["10.0.0.0/8", "127.0.0.1"]
    assert parse_args([]).trusted_proxies == []
    with pytest.raises(ValueError, match="'proxy.example' is not an IP address"):
        proxy_entry("proxy.example")
    assert client_address(None) == "local"
