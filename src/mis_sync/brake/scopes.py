"""One measure the brake judges: how many of something a run would remove, against how many there are.

Every limit is a pair (count, share), both of which must be exceeded, so a small school's small numbers
do not trip it. A scope is judged twice: on this run's changes alone, and on the rolling window (the
losses already applied in the last ``SafetyLimits.window_days`` plus this run's), so repeated
sub-threshold losses are held once their sum crosses the limit. Reasons carry labels and counts only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    key: str
    """Stable name in the run history, e.g. ``role:pupil``, ``year:8``, ``groups:teaching``."""
    label: str
    """What the approval page says, e.g. ``year 8``."""
    count: int
    """This run's destructive changes in the scope (expected ones left out)."""
    base: int
    """How many there are before this run (active users, active groups, memberships)."""
    max_count: int
    max_fraction: float
    unit: str = ""
    """Appended to the base, e.g. `` pupils``."""


@dataclass(frozen=True)
class Window:
    """The losses already applied within the rolling window (since the last approval), per scope key."""

    days: int
    losses: Mapping[str, int]
    runs: int = 0
    """Earlier runs in the window that removed anything (for the approval page)."""


def _over(count: int, base: int, scope: Scope) -> bool:
    return count > scope.max_count and count / max(base, 1) > scope.max_fraction


def _line(scope: Scope, count: int, base: int) -> str:
    return f"{scope.label}: {count} of {base}{scope.unit} ({count / max(base, 1):.0%})"


def judge(scope: Scope, window: Window | None) -> list[str]:
    """Reasons to hold (empty when the scope is within its limits). The window line names the window."""
    if scope.count == 0:
        return []
    if _over(scope.count, scope.base, scope):
        return [_line(scope, scope.count, scope.base)]
    past = int(window.losses.get(scope.key, 0)) if window and window.days > 0 else 0
    if past == 0 or window is None:
        return []
    total, base = scope.count + past, scope.base + past
    if _over(total, base, scope):
        runs = f"{window.runs} earlier run{'s' if window.runs != 1 else ''} and this one"
        return [f"{_line(scope, total, base)} within the {window.days}-day window ({runs})"]
    return []
