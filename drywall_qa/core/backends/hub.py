"""Whether the Hugging Face hub can be reached, asked once and quickly before a hub id is loaded.

Without a network, ``from_pretrained`` retries each file with growing pauses (about half a minute for one model)
before it reports what a two-second connection attempt can tell: the hub is not there. A checkpoint is then read
from the local cache only, or refused at once.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

#: seconds a connection to the hub may take before it counts as unreachable
CONNECT_TIMEOUT_S = 2.0
#: variables that send requests through a proxy, which a direct connection attempt would not use
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def hub_endpoint() -> str:
    """The hub's address (``HF_ENDPOINT``, else huggingface.co)."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_reachable(timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
    """False when ``HF_HUB_OFFLINE`` is set or the hub's host does not accept a connection within ``timeout_s``;
    True behind a proxy, whose own answer ``from_pretrained`` then waits for."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return True
    url = urlsplit(hub_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout_s):
            return True
    except OSError:          # no route, refused, timed out, or a host name that does not resolve
        return False
