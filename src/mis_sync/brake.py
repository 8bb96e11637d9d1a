"""The deletion brake: destructive changes over the safety limits wait for a human.

A wrong MIS extract (a failed report, a filter left on) looks exactly like "a third of Year 8 left".
The brake counts the suspensions and deletions a run would make, per role and per year group, and holds
them for approval in the Airflow UI when they exceed the limits. Creates and updates go ahead.

It knows the school calendar: in the summer window the final-year cohorts (Y6, Y11, Y13 in England and
Wales; P7, S4–S6 in Scotland) leave, which is expected and passes; the same losses in term time do not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

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


@dataclass(frozen=True)
class BrakeDecision:
    held: bool
    reasons: tuple[str, ...]
    counts: dict[str, int]
    """Destructive changes per role, for the approval page (counts only)."""

    @property
    def message(self) -> str:
        if not self.held:
            return ""
        return (
            "Suspensions and deletions are waiting for approval: "
            + "; ".join(self.reasons)
            + ". Check the MIS extract; approve in the Airflow UI (or trigger with approve_suspensions)."
        )


def in_summer_window(day: dt.date, window: tuple[str, str]) -> bool:
    start, end = (dt.date(day.year, *map(int, part.split("-"))) for part in window)
    return start <= day <= end


def expected_departures(changes: pd.DataFrame, day: dt.date, limits: SafetyLimits, country: str) -> pd.Series:
    """Pupil suspensions that the calendar explains: final-year cohorts in the summer window."""
    if not in_summer_window(day, limits.summer_window):
        return pd.Series(False, index=changes.index)
    leaving = limits.expected_leaving_years or LEAVING_YEARS.get(country, LEAVING_YEARS["england"])
    return (changes["role"] == "pupil") & changes["year_group"].isin(leaving).fillna(False)


def evaluate(
    changes: pd.DataFrame,
    active_users: pd.DataFrame,
    day: dt.date,
    limits: SafetyLimits,
    country: str = "england",
) -> BrakeDecision:
    """Decide whether this run's destructive changes must wait for approval.

    ``changes``: the plan's user rows (action, role, year_group). ``active_users``: the directory's
    active users before the run (role, year_group) — the base the shares are measured against.
    """
    destructive = changes[changes["action"].isin(DESTRUCTIVE)]
    counts = {str(k): int(v) for k, v in destructive.groupby("role").size().items()}
    judged = destructive[~expected_departures(destructive, day, limits, country)]
    reasons: list[str] = []

    by_role = active_users.groupby("role").size()
    for role, count in judged.groupby("role").size().items():
        base = int(by_role.get(role, 0))
        share = count / max(base, 1)
        if count > limits.max_suspend_count and share > limits.max_suspend_fraction:
            reasons.append(f"{role}: {count} of {base} ({share:.0%})")

    pupils = active_users[active_users["role"] == "pupil"]
    by_year = pupils.groupby("year_group").size()
    leaving_pupils = judged[judged["role"] == "pupil"]
    for year, count in leaving_pupils.groupby("year_group").size().items():
        base = int(by_year.get(year, 0))
        share = count / max(base, 1)
        if count > limits.max_year_group_count and share > limits.max_year_group_fraction:
            reasons.append(f"year {year}: {count} of {base} pupils ({share:.0%})")
    return BrakeDecision(held=bool(reasons), reasons=tuple(reasons), counts=counts)
