"""Per-client rate limiting with the `limits` library (memory, or Redis across replicas)."""

from __future__ import annotations

import math
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from shared.errors import DomainError


class RateLimited(DomainError):
    status, type_slug, title = 429, "rate-limited", "Too many requests"


class ClientRateLimiter:
    def __init__(self, rate: str, storage_uri: str = "memory://") -> None:
        self._item = parse(rate)
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self.rate = rate

    def check(self, client: str) -> None:
        """Count one request; raise RateLimited with Retry-After when over the rate."""
        if self._limiter.hit(self._item, client):
            return
        reset_at, _remaining = self._limiter.get_window_stats(self._item, client)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise RateLimited(
            f"more than {self.rate} requests; retry in {retry_after}s",
            headers={"Retry-After": str(retry_after)},
            retry_after=retry_after,
        )
