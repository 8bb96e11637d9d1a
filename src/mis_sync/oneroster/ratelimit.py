"""Per-app rate limits: a token bucket per app, refilled continuously (requests per minute).

In memory, per process: with several workers each enforces the limit on its share of the traffic, so
the effective limit is the app's limit times the number of workers (docs/oneroster-api.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        """client id -> (tokens left, time of the last refill)"""
        self._lock = threading.Lock()

    def try_acquire(self, client_id: str, per_minute: int) -> float:
        """0 when the request may go ahead; otherwise the seconds until it may (for Retry-After)."""
        now = self._clock()
        rate = per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.get(client_id, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[client_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client_id] = (tokens, now)
            return (1.0 - tokens) / rate


def retry_after_header(wait_s: float) -> str:
    return str(max(1, math.ceil(wait_s)))
