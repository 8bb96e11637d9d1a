"""The brake: destructive changes over the safety limits wait for a human.

Every destructive change a plan would make is counted in scopes (``scopes.Scope``): suspensions and
deletions per role and per year group (``accounts``), group archives per kind, membership removals
school-wide and per class (``changes``). Each scope is judged on this run and on the rolling window
(``window``: what earlier runs applied in the last ``SafetyLimits.window_days``). When any scope is
over its limits, every destructive change of the run is held — all or nothing, as Entra Connect's
export deletion threshold and GCDS's delete limits do — and waits for Approve / Reject in the Airflow
UI. Creates, updates, restores and membership additions go ahead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from mis_sync.brake.accounts import (
    DESTRUCTIVE,
    LEAVING_YEARS,
    account_scopes,
    destructive_counts,
    expected_departures,
    in_summer_window,
)
from mis_sync.brake.changes import GROUP_SCOPE_PREFIX, group_scopes
from mis_sync.brake.scopes import Scope, Window, judge

if TYPE_CHECKING:
    from mis_sync.config import SafetyLimits
    from mis_sync.directory_state import DirectoryState

__all__ = [
    "DESTRUCTIVE",
    "LEAVING_YEARS",
    "BrakeDecision",
    "Scope",
    "Window",
    "evaluate",
    "evaluate_plan",
    "expected_departures",
    "in_summer_window",
]

MAX_CLASS_LINES = 3
"""Classes named one by one on the approval page; beyond that they are counted."""


@dataclass(frozen=True)
class BrakeDecision:
    held: bool
    reasons: tuple[str, ...]
    counts: dict[str, int]
    """Destructive changes per role (and group archives, membership removals), counts only."""
    losses: dict[str, int] = field(default_factory=dict)
    """This run's judged destructive changes per scope key (what the window remembers once applied)."""

    @property
    def message(self) -> str:
        if not self.held:
            return ""
        return (
            "Suspensions, deletions, group archives and membership removals are waiting for approval: "
            + "; ".join(self.reasons)
            + ". Check the MIS extract; approve in the Airflow UI (or trigger with approve_suspensions)."
        )


def _reasons(scopes: list[Scope], window: Window | None) -> tuple[str, ...]:
    reasons: list[str] = []
    classes: list[str] = []
    for scope in scopes:
        found = judge(scope, None if scope.key.startswith(GROUP_SCOPE_PREFIX) else window)
        (classes if scope.key.startswith(GROUP_SCOPE_PREFIX) else reasons).extend(found)
    if len(classes) > MAX_CLASS_LINES:
        reasons.append(
            f"{len(classes)} classes lose more than their limit of pupils, e.g. "
            + "; ".join(classes[:MAX_CLASS_LINES])
        )
    else:
        reasons.extend(classes)
    return tuple(reasons)


def _losses(scopes: list[Scope]) -> dict[str, int]:
    return {s.key: s.count for s in scopes if s.count and not s.key.startswith(GROUP_SCOPE_PREFIX)}


def evaluate(
    changes: pd.DataFrame,
    active_users: pd.DataFrame,
    day: dt.date,
    limits: SafetyLimits,
    country: str = "england",
    window: Window | None = None,
) -> BrakeDecision:
    """Accounts only: whether this run's suspensions and deletions must wait for approval."""
    scopes = account_scopes(changes, active_users, day, limits, country)
    reasons = _reasons(scopes, window)
    return BrakeDecision(bool(reasons), reasons, destructive_counts(changes), _losses(scopes))


def evaluate_plan(
    users: pd.DataFrame,
    groups: pd.DataFrame,
    memberships: pd.DataFrame,
    state: DirectoryState,
    day: dt.date,
    limits: SafetyLimits,
    *,
    country: str = "england",
    current_year: str | None = None,
    window: Window | None = None,
) -> BrakeDecision:
    """Every destructive change of a plan: accounts, group archives, membership removals."""
    active = state.users[state.users["status"] == "active"]
    scopes = account_scopes(users, active, day, limits, country)
    scopes += group_scopes(groups, memberships, users, state, limits, current_year)
    counts = destructive_counts(users)
    archives = int((groups["action"] == "archive").sum())
    removals = int((memberships["action"] == "remove").sum())
    counts |= {k: v for k, v in (("group archives", archives), ("membership removals", removals)) if v}
    reasons = _reasons(scopes, window)
    return BrakeDecision(bool(reasons), reasons, counts, _losses(scopes))
