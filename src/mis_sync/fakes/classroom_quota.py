"""Google's documented Classroom API quotas for the local emulator (a test emulator only).

Facts (https://developers.google.com/workspace/classroom/reference/limits, checked 2026-12): "Quota is
checked on a 60-second moving average, which allows for spikes in usage"; queries per minute per
client (project) 3,000; per user 1,200; per day per client 4,000,000 (not modelled: a night's sync is
far below it). Every call counts, also each call inside a batch. A call over a limit is answered
``429 RESOURCE_EXHAUSTED`` ("retry with exponential backoff"), without ``Retry-After``.

Choices where the documentation is silent, so tests can vary them:

* the window is a sliding log: a call is admitted when fewer than ``limit`` calls were admitted in the
  last ``seconds`` (the strictest reading of "moving average");
* a refused call does not use quota (``count_refused=False``); ``True`` makes it count, which punishes
  a client that retries at once;
* the error body follows Google's quota errors (``Quota exceeded for quota metric 'Queries' and limit
  'Queries per minute per user' of service 'classroom.googleapis.com' …``, ``errors[].reason``
  ``rateLimitExceeded``, an ``ErrorInfo`` detail with reason ``RATE_LIMIT_EXCEEDED``).

The per-project window can be shared by several emulators (``project=``): one service account (one
Cloud project) serving several schools, each its own Workspace tenant with its own admin subject.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from mis_sync.fakes.classroom_schema import GoogleError

PER_USER_PER_MINUTE = 1200
PER_PROJECT_PER_MINUTE = 3000
WINDOW_S = 60.0


class MovingWindow:
    """At most ``limit`` admitted calls in any ``seconds`` long window."""

    def __init__(self, limit: int, seconds: float = WINDOW_S) -> None:
        if limit < 1 or seconds <= 0:
            raise ValueError("a quota needs a positive limit and window")
        self.limit, self.seconds = limit, seconds
        self._times: deque[float] = deque()
        self.peak = 0
        """The most calls ever held in one window (what a test compares with the limit)."""

    def used(self, now: float) -> int:
        while self._times and self._times[0] <= now - self.seconds:
            self._times.popleft()
        return len(self._times)

    def has_room(self, now: float) -> bool:
        return self.used(now) < self.limit

    def take(self, now: float) -> None:
        self._times.append(now)
        self.peak = max(self.peak, len(self._times))


class ClassroomQuota:
    """The per-user and per-project per-minute quotas, on one clock (``clock``; tests pass a virtual one)."""

    def __init__(
        self,
        *,
        per_user: int = PER_USER_PER_MINUTE,
        per_project: int = PER_PROJECT_PER_MINUTE,
        seconds: float = WINDOW_S,
        project: MovingWindow | None = None,
        clock: Callable[[], float] = time.monotonic,
        count_refused: bool = False,
    ) -> None:
        self.user = MovingWindow(per_user, seconds)
        self.project = project or MovingWindow(per_project, seconds)
        self.clock, self.count_refused = clock, count_refused
        self.refused = 0

    def admit(self) -> GoogleError | None:
        """Count one call; the error to answer when a limit is reached, else ``None``."""
        now = self.clock()
        limit = None
        if not self.user.has_room(now):
            limit = "Queries per minute per user"
        elif not self.project.has_room(now):
            limit = "Queries per minute"
        if limit is None or self.count_refused:
            self.user.take(now)
            self.project.take(now)
        if limit is None:
            return None
        self.refused += 1
        return quota_error(limit)


def quota_error(limit: str) -> GoogleError:
    message = (
        f"Quota exceeded for quota metric 'Queries' and limit '{limit}' of service "
        "'classroom.googleapis.com' for consumer 'project_number:000000000000'."
    )
    return _QuotaError(message, limit)


class _QuotaError(GoogleError):
    def __init__(self, message: str, limit: str) -> None:
        super().__init__(429, "RESOURCE_EXHAUSTED", message, reason="rateLimitExceeded", domain="usageLimits")
        self.limit = limit

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["error"]["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": {
                    "service": "classroom.googleapis.com",
                    "quota_metric": "classroom.googleapis.com/default",
                    "quota_limit": self.limit,
                    "consumer": "projects/000000000000",
                },
            }
        ]
        return body
