"""Who a request comes from, as far as the server can tell.

A client is its network address. Behind a reverse proxy every request arrives from the proxy, and the client's own
address is in the ``X-Forwarded-For`` header the proxy adds, which any client can also send itself. The header is
therefore read only when the request comes from a proxy the operator named (:func:`trust_proxies`, the app's
``--trusted-proxies``); from anyone else it is ignored and the connecting address counts.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence

#: uvicorn's setting: the addresses whose forwarded headers it applies (read when the server starts)
FORWARDED_ALLOW_IPS = "FORWARDED_ALLOW_IPS"


def client_address(request: object | None) -> str:
    """The network address of a request's client (``"local"`` for a direct call without a request)."""
    client = getattr(request, "client", None)
    return str(getattr(client, "host", None) or "local")


def proxy_entry(text: str) -> str:
    """One ``--trusted-proxies`` entry, an address or a network (``10.0.0.0/8``), checked and written canonically;
    :class:`ValueError` naming it otherwise."""
    try:
        entry = ipaddress.ip_network(text.strip(), strict=False) if "/" in text else ipaddress.ip_address(text.strip())
    except ValueError as err:
        raise ValueError(f"{text[:60]!r} is not an IP address or network (e.g. 10.0.0.0/8)") from err
    return str(entry)


def trust_proxies(proxies: Sequence[str]) -> None:
    """Trust forwarded headers from ``proxies`` only (none: from nobody, loopback included). Call before the server
    starts: uvicorn reads the setting then."""
    os.environ[FORWARDED_ALLOW_IPS] = ",".join(proxy_entry(p) for p in proxies)
