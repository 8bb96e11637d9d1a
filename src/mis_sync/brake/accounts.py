"""The brake on accounts: suspensions and deletions per role and per year group.

A wrong MIS extract (a failed report, a filter left on) looks exactly like "a third of Year 8 left".
The account scopes count the suspensions and deletions a run would make, per role and per year group.

It knows the school calendar: in the summer window the final-year cohorts (Y6, Y11, Y13 in England and
Wales; P7, S4–S6 in Scotland) leave, which is expected and passes; the same losses in term time do not.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pandas as pd

from mis_sync.brake.scopes import Scope

if TYPE_CHECKING:
    from mis_sync.config import SafetyLimits

LEAVING_YEARS = {
    "england": ("6", "11", "13"),
    "wales": ("6", "11", "13"),
    "northern_ireland": ("7", "12", "14"),
    "scotland": ("P7", "S4", "S5", "S6"),
}
"""Year groups whose pupils normally leave at the end of the school year."""

DESTRUCTIVE = ("suspend", "delete")


def in_summer_window(day: dt.date, window: tuple[str, str]) -> bool:
    start, end = (dt.date(day.year, *map(int, part.split("-"))) for part in window)
    return start <= day <= end


def expected_departures(changes: pd.DataFrame, day: dt.date, limits: SafetyLimits, country: str) -> pd.Series:
    """Pupil suspensions that the calendar explains: final-year cohorts in the summer window."""
    if not in_summer_window(day, limits.summer_window):
        return pd.Series(False, index=changes.index)
    leaving = limits.expected_leaving_years or LEAVING_YEARS.get(country, LEAVING_YEARS["england"])
    return (changes["role"] == "pupil") & changes["year_group"].isin(leaving).fillna(False)


def destructive_counts(changes: pd.DataFrame) -> dict[str, int]:
    """Suspensions and deletions per role (for the approval page; counts only)."""
    destructive = changes[changes["action"].isin(DESTRUCTIVE)]
    return {str(k): int(v) for k, v in destructive.groupby("role").size().items()}


def account_scopes(
    changes: pd.DataFrame, active_users: pd.DataFrame, day: dt.date, limits: SafetyLimits, country: str
) -> list[Scope]:
    """Per role and per pupil year group: the suspensions and deletions the calendar does not explain.

    ``changes``: the plan's user rows (action, role, year_group). ``active_users``: the directory's
    active users before the run (role, year_group) — the base the shares are measured against.
    """
    destructive = changes[changes["action"].isin(DESTRUCTIVE)]
    judged = destructive[~expected_departures(destructive, day, limits, country)]
    by_role = active_users.groupby("role").size()
    scopes = [
        Scope(
            key=f"role:{role}",
            label=str(role),
            count=int(count),
            base=int(by_role.get(role, 0)),
            max_count=limits.max_suspend_count,
            max_fraction=limits.max_suspend_fraction,
        )
        for role, count in judged.groupby("role").size().items()
    ]
    by_year = active_users[active_users["role"] == "pupil"].groupby("year_group").size()
    pupils = judged[judged["role"] == "pupil"]
    scopes += [
        Scope(
            key=f"year:{year}",
            label=f"year {year}",
            count=int(count),
            base=int(by_year.get(year, 0)),
            max_count=limits.max_year_group_count,
            max_fraction=limits.max_year_group_fraction,
            unit=" pupils",
        )
        for year, count in pupils.groupby("year_group").size().items()
    ]
    return scopes
