"""The brake over groups and memberships, and its rolling window (pure: plans and states as frames)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from mis_sync.brake import Window, evaluate, evaluate_plan
from mis_sync.config import SafetyLimits
from mis_sync.directory_state import DirectoryState

TERM = dt.date(2026, 2, 3)
YEAR = "2025/26"


def _state(classes: int = 40, pupils_per_class: int = 20) -> DirectoryState:
    """``classes`` teaching groups of ``pupils_per_class`` pupils each (pupil i in class i % classes)."""
    pupils = classes * pupils_per_class
    users = pd.DataFrame(
        {
            "person_kind": "pupil",
            "mis_id": [f"P{i}" for i in range(pupils)],
            "role": "pupil",
            "year_group": "8",
            "status": "active",
        }
    ).astype("string")
    groups = pd.DataFrame(
        {
            "mis_id": [f"G{i}" for i in range(classes)],
            "academic_year": YEAR,
            "kind": "teaching",
            "status": "active",
        }
    ).astype("string")
    memberships = pd.DataFrame(
        {
            "group_mis_id": [f"G{i % classes}" for i in range(pupils)],
            "academic_year": YEAR,
            "person_kind": "pupil",
            "person_mis_id": [f"P{i}" for i in range(pupils)],
            "role": "member",
        }
    ).astype("string")
    return DirectoryState(users=users, groups=groups, memberships=memberships)


def _no_users() -> pd.DataFrame:
    return pd.DataFrame({"action": [], "person_kind": [], "mis_id": [], "role": [], "year_group": []}).astype(
        "string"
    )


def _archives(state: DirectoryState, count: int, year: str = YEAR) -> pd.DataFrame:
    rows = state.groups.head(count).assign(action="archive", academic_year=year)
    return rows[["action", "mis_id", "academic_year", "kind"]]


def _removals(state: DirectoryState, rows: pd.Series) -> pd.DataFrame:
    return state.memberships[rows].assign(action="remove")


NO_GROUPS = pd.DataFrame({"action": [], "mis_id": [], "academic_year": [], "kind": []}).astype("string")
NO_MEMBERSHIPS = pd.DataFrame(
    {c: [] for c in ["action", "group_mis_id", "academic_year", "person_kind", "person_mis_id", "role"]}
).astype("string")


def _judge(state: DirectoryState, groups=NO_GROUPS, memberships=NO_MEMBERSHIPS, users=None, **kw):  # type: ignore[no-untyped-def]
    users = _no_users() if users is None else users
    return evaluate_plan(users, groups, memberships, state, TERM, SafetyLimits(), current_year=YEAR, **kw)


def test_archiving_70_percent_of_teaching_groups_waits_for_approval() -> None:
    state = _state()
    decision = _judge(state, groups=_archives(state, 28))
    assert decision.held
    assert decision.reasons == ("teaching groups: 28 of 40 (70%)",)
    assert decision.counts["group archives"] == 28


def test_a_few_archived_groups_and_the_year_end_rollover_go_ahead() -> None:
    state = _state()
    assert not _judge(state, groups=_archives(state, 5)).held, "5 is within the count limit"
    rollover = _archives(state, 40, year="2024/25")
    assert not _judge(state, groups=rollover).held, "last year's groups leave at the rollover"


def test_a_class_losing_more_than_half_its_pupils_waits_for_approval() -> None:
    state = _state()
    in_g0 = state.memberships["group_mis_id"] == "G0"
    eleven = in_g0 & (state.memberships.index < 40 * 11)
    decision = _judge(state, memberships=_removals(state, eleven))
    assert decision.held and decision.reasons == ("group G0/2025/26: 11 of 20 pupils (55%)",)
    six = in_g0 & (state.memberships.index < 40 * 6)
    assert not _judge(state, memberships=_removals(state, six)).held, "30 % of a class is a timetable change"


def test_school_wide_membership_removals_over_the_limit_wait() -> None:
    state = _state()
    # one pupil out of each of 40 classes, many times: 320 of 800 memberships, at most 8 per class of 20
    spread = state.memberships.index < 320
    decision = _judge(state, memberships=_removals(state, spread))
    assert decision.held
    assert "memberships: 320 of 800 (40%)" in decision.reasons


def test_removals_that_follow_a_leaver_or_an_archive_are_not_counted_twice() -> None:
    state = _state()
    leavers = state.users.head(100).assign(action="suspend")[
        ["action", "person_kind", "mis_id", "role", "year_group"]
    ]
    theirs = state.memberships["person_mis_id"].isin(leavers["mis_id"])
    decision = _judge(state, memberships=_removals(state, theirs), users=leavers)
    assert decision.reasons == ("pupil: 100 of 800 (12%)",), "year 8 (12%) is within its 20% limit"
    assert "memberships" not in decision.losses, "the account brake judged those removals"


def test_the_window_adds_up_repeated_small_losses_and_names_itself() -> None:
    school = pd.DataFrame({"role": ["pupil"] * 1000, "year_group": ["8"] * 1000}).astype("string")
    night = pd.DataFrame({"action": "suspend", "role": "pupil", "year_group": ["8"] * 90}).astype("string")
    assert not evaluate(night, school, TERM, SafetyLimits(), window=Window(7, {})).held
    decision = evaluate(
        night, school.head(910), TERM, SafetyLimits(), window=Window(7, {"role:pupil": 90}, runs=1)
    )
    assert decision.held
    assert decision.reasons == (
        "pupil: 180 of 1000 (18%) within the 7-day window (1 earlier run and this one)",
    )
    assert decision.losses == {"role:pupil": 90, "year:8": 90}
    off = evaluate(night, school.head(910), TERM, SafetyLimits(), window=Window(0, {"role:pupil": 90}))
    assert not off.held, "window_days: 0 turns the window off"
