"""The brake on groups and memberships: archives per group kind, removals school-wide and per class.

A cut-short memberships report or a timetable export with most teaching groups missing looks exactly
like "the classes were dissolved". These scopes count what the plan would tear down:

- group archives per kind (year, registration, teaching) against the kind's active groups;
- membership removals school-wide against all memberships;
- per class: pupils removed from a group that stays, against its pupils (a class losing half of them).

Removals that follow a leaver's suspension are judged by the account brake, and removals from a group
being archived by the archive limit, so one departure is not counted twice. Groups of an earlier
academic year than the extract's newest are the year-end rollover: expected, never held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from mis_sync.brake.accounts import DESTRUCTIVE
from mis_sync.brake.scopes import Scope

if TYPE_CHECKING:
    from mis_sync.config import SafetyLimits
    from mis_sync.directory_state import DirectoryState

GROUP_SCOPE_PREFIX = "group:"
"""Per-class scopes: judged on this run only (a class's history is not kept in the window)."""


def _pairs(frame: pd.DataFrame, kind: str, mis_id: str) -> pd.Series:
    return frame[kind].astype("string") + "\x1f" + frame[mis_id].astype("string")


def _group_key(frame: pd.DataFrame, mis_id: str = "group_mis_id") -> pd.Series:
    return frame[mis_id].astype("string") + "/" + frame["academic_year"].astype("string")


def rollover(groups: pd.DataFrame, current_year: str | None) -> pd.Series:
    """Archives of groups from an academic year before the extract's newest: the year-end rollover."""
    if current_year is None or groups.empty:
        return pd.Series(False, index=groups.index)
    return (groups["academic_year"].astype("string") < current_year).fillna(False)


def group_scopes(
    groups: pd.DataFrame,
    memberships: pd.DataFrame,
    users: pd.DataFrame,
    state: DirectoryState,
    limits: SafetyLimits,
    current_year: str | None,
) -> list[Scope]:
    """Scopes for the plan's group archives and membership removals (see the module docstring)."""
    archives = groups[groups["action"] == "archive"]
    judged = archives[~rollover(archives, current_year)]
    active = state.groups[state.groups["status"] == "active"] if len(state.groups) else state.groups
    by_kind = active.groupby("kind").size() if len(active) else pd.Series(dtype="int64")
    scopes = [
        Scope(
            key=f"groups:{kind}",
            label=f"{kind} groups",
            count=int(count),
            base=int(by_kind.get(kind, 0)),
            max_count=limits.max_group_archive_count,
            max_fraction=limits.max_group_archive_fraction,
        )
        for kind, count in judged.groupby("kind").size().items()
    ]

    removes = memberships[memberships["action"] == "remove"]
    leavers = users[users["action"].isin(DESTRUCTIVE)]
    leaving = _pairs(removes, "person_kind", "person_mis_id").isin(_pairs(leavers, "person_kind", "mis_id"))
    archived = _group_key(removes).isin(_group_key(archives, "mis_id"))
    staying = removes[~leaving & ~archived]
    if len(staying):
        scopes.append(
            Scope(
                key="memberships",
                label="memberships",
                count=len(staying),
                base=len(state.memberships),
                max_count=limits.max_membership_removal_count,
                max_fraction=limits.max_membership_removal_fraction,
            )
        )
    pupils_out = staying[staying["role"] == "member"]
    if len(pupils_out):
        current = state.memberships[state.memberships["role"] == "member"]
        base = _group_key(current).value_counts()
        for key, count in _group_key(pupils_out).value_counts().items():
            scopes.append(
                Scope(
                    key=f"{GROUP_SCOPE_PREFIX}{key}",
                    label=f"group {key}",
                    count=int(count),
                    base=int(base.get(key, 0)),
                    max_count=limits.max_group_member_loss_count,
                    max_fraction=limits.max_group_member_loss_fraction,
                    unit=" pupils",
                )
            )
    return scopes
