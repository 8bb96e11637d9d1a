"""The dashboard's at-a-glance state: each rule, from the sync record and the latest report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mis_sync.console.queries import health

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
RECENT = (NOW - timedelta(hours=8)).isoformat()
STATUS = {"last_success_at": RECENT, "data_changed_at": RECENT}
REPORT = {"outcome": "applied", "findings": {"error": 0, "warning": 3}, "targets": {}, "users_held": 0}


@pytest.mark.parametrize(
    ("status", "report", "state", "reason"),
    [
        (STATUS, REPORT, "ok", "nothing waits"),
        (None, None, "needs attention", "no run"),
        (
            STATUS,
            {**REPORT, "outcome": "skipped", "skipped_reason": "snapshot is older"},
            "failing",
            "skipped",
        ),
        (STATUS, {**REPORT, "targets": {"microsoft365": {"failed": 2}}}, "failing", "2 change(s) failed"),
        (STATUS, {**REPORT, "held_reason": "too many", "users_held": 40}, "needs attention", "40 change(s)"),
        ({**STATUS, "last_success_at": None}, REPORT, "failing", "no successful run"),
        (
            {**STATUS, "last_success_at": (NOW - timedelta(hours=40)).isoformat()},
            REPORT,
            "needs attention",
            "since",
        ),
        (STATUS, {**REPORT, "findings": {"error": 5}}, "needs attention", "5 error finding(s)"),
    ],
    ids=[
        "ok",
        "never-ran",
        "skipped",
        "target-failures",
        "held",
        "never-succeeded",
        "stale",
        "error-findings",
    ],
)
def test_state_and_reason(status, report, state: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    result = health(status, report, NOW)
    assert result.state == state and reason in result.reason
