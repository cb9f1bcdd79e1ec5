"""A photo encoded once: the image encoder's features of its views, kept so that more prompts on the same photo
(added, changed) only run the decoder — as SAM 2's ``set_image`` then ``predict``.

One :class:`FeatureCache` belongs to one photo, one model and one set of views; the caller keeps it beside the photo
(the app: one per session's last run, inside the ``--state-mb`` budget) and passes it to ``Segmenter.predict``. The
views key their entries (the whole view, or a batch of windows at a side), so a prompt whose scale policy needs views
not yet encoded encodes just those. Features are kept as computed (float32), so a reused prediction is the one a
fresh encoding gives. Past ``budget`` bytes nothing more is kept; those views are encoded again each time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from drywall_qa.core.backends.base import Features


class FeatureCache:
    """Encoded views of one photo, at most ``budget`` bytes of them (None: no limit)."""

    def __init__(self, identity: Hashable = None, budget: int | None = None) -> None:
        #: what the features belong to (e.g. the photo's digest, the model, the tiling); see :meth:`belongs_to`
        self.identity = identity
        self.budget = budget
        #: views answered from the cache since it was made
        self.hits = 0
        #: its key where a store keeps it (the app's result store); None until kept
        self.key: str | None = None
        self._entries: dict[Hashable, Features] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def belongs_to(self, identity: Hashable) -> bool:
        return identity == self.identity

    def encode(self, view: Hashable, encode: Callable[[], Features]) -> Features:
        """The features of ``view``: kept ones, else ``encode()``'s, kept while they fit the budget."""
        with self._lock:
            if view in self._entries:
                self.hits += 1
                return self._entries[view]
        features = encode()
        size = sum(f.numel() * f.element_size() for f in features)
        with self._lock:
            if self.budget is None or self._bytes + size <= self.budget:
                self._entries[view], self._bytes = features, self._bytes + size
        return features

    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


def encoded(cache: FeatureCache | None, view: Hashable, encode: Callable[[], Features]) -> Features:
    """``encode()``, through ``cache`` where there is one."""
    return encode() if cache is None else cache.encode(view, encode)
