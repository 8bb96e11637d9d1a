"""Delta merge (``connectors.delta``): previous snapshot + changes == the full extract; the delta state."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mis_sync.connections import ConnectionInfo
from mis_sync.connectors.delta import (
    ChangeSet,
    CursorError,
    DeltaConnector,
    DeltaState,
    apply_changes,
    changes_between,
    load_delta_state,
    save_delta_state,
)
from mis_sync.generator import generate_school
from mis_sync.model import ENTITIES, Extract

AS_OF = dt.date(2026, 1, 15)


def canonical(extract: Extract) -> dict[str, pd.DataFrame]:
    """Tables in key order with canonical dtypes: what "identical canonical data" compares."""
    out = {}
    for name, entity in ENTITIES.items():
        frame = entity.coerce(extract.tables[name])
        out[name] = frame.sort_values(list(entity.key), kind="stable", ignore_index=True)
    return out


def assert_same(got: Extract, want: Extract) -> None:
    a, b = canonical(got), canonical(want)
    for name in ENTITIES:
        pd.testing.assert_frame_equal(a[name], b[name], obj=name)


def evolve_school(extract: Extract, seed: int = 7, days: int = 1) -> Extract:
    """The same school ``days`` later: renames, leavers, deleted and new pupils, a form move, a deleted
    and a new teaching group, changed, deleted and new contacts and links, a staff leaver and starter.
    Consistent the way an MIS is (leavers leave their groups; a form move changes both the pupil's
    registration group and the membership), so every source shape can carry it."""
    rng = np.random.default_rng(seed)
    at = extract.snapshot_at + pd.Timedelta(days=days)
    today = at.tz_convert(None).normalize()
    t = {name: frame.copy() for name, frame in extract.tables.items()}
    pupils, members, groups, links = t["pupils"], t["memberships"], t["groups"], t["relationships"]
    on_roll = pupils.index[pupils["enrolment_status"] == "on_roll"].to_numpy()
    picked = rng.choice(on_roll, 30, replace=False)
    renamed, leaving, moving = picked[:20], picked[20:25], picked[25:30]
    pupils.loc[renamed, "preferred_first_name"] = "Sky"
    pupils.loc[leaving, ["enrolment_status", "leaving_date", "registration_group_id"]] = [
        "leaver",
        today,
        pd.NA,
    ]
    gone = set(pupils.loc[leaving, "mis_id"])
    members = members[~((members["role"] == "pupil") & members["person_id"].isin(gone))]
    for i in moving:
        old = pupils.at[i, "registration_group_id"]
        same_year = groups[
            (groups["kind"] == "registration") & (groups["year_group"] == pupils.at[i, "year_group"])
        ]
        new = same_year.loc[same_year["mis_id"] != old, "mis_id"].iloc[0]
        pupils.at[i, "registration_group_id"] = new
        hit = (members["person_id"] == pupils.at[i, "mis_id"]) & (members["group_id"] == old)
        members.loc[hit, "group_id"] = new
    deleted = pupils.index[pupils["enrolment_status"] == "leaver"][:3]
    deleted_ids = set(pupils.loc[deleted, "mis_id"])
    pupils = pupils.drop(deleted)
    links = links[~links["pupil_id"].isin(deleted_ids)]
    new_pupils = pupils.iloc[:4].copy()
    new_pupils["mis_id"] = [f"P9{n:05d}" for n in range(4)]
    new_pupils[["enrolment_status", "registration_group_id", "leaving_date"]] = [
        "pre_admission",
        pd.NA,
        pd.NaT,
    ]
    new_pupils["admission_date"] = today + pd.Timedelta(days=30)
    pupils = pd.concat([pupils, new_pupils], ignore_index=True)
    contact = links["contact_id"].iloc[0]
    new_links = pd.DataFrame(
        {"contact_id": contact, "pupil_id": new_pupils["mis_id"], "relationship": "Mother"}
    )
    links = pd.concat([links, new_links.assign(parental_responsibility=True, priority=1)], ignore_index=True)
    teaching = groups[groups["kind"] == "teaching"]
    dropped = teaching["mis_id"].iloc[3]
    groups = groups[groups["mis_id"] != dropped]
    members = members[members["group_id"] != dropped]
    template = teaching.iloc[5].copy()
    template[["mis_id", "name", "code"]] = ["G99999", "Extra Maths", "XMa"]
    groups = pd.concat([groups, template.to_frame().T], ignore_index=True)
    year_pupils = members[(members["group_id"] == teaching["mis_id"].iloc[5]) & (members["role"] == "pupil")]
    extra = year_pupils.head(10).assign(group_id="G99999")
    teacher = t["staff"].loc[t["staff"]["enrolment_status"] == "on_roll", "mis_id"].iloc[-1]
    members = pd.concat([members, extra, pd.DataFrame([{"group_id": "G99999", "person_id": teacher,
                                                        "role": "teacher"}])], ignore_index=True)  # fmt: skip
    contacts = t["contacts"]
    contacts.loc[contacts.index[:10], "email"] = [f"changed{n}@example.org" for n in range(10)]
    unlinked = contacts["staff_mis_id"].isna() & ~contacts["mis_id"].isin(links["contact_id"].iloc[:1])
    removed = set(contacts.loc[unlinked, "mis_id"].iloc[-2:])
    contacts = contacts[~contacts["mis_id"].isin(removed)]
    links = links[~links["contact_id"].isin(removed)].copy()
    links.loc[links.index[5:10], "priority"] = 9
    staff = t["staff"]
    quitting = staff.index[(staff["enrolment_status"] == "on_roll") & (staff["mis_id"] != teacher)][-1]
    staff.loc[quitting, ["enrolment_status", "leaving_date"]] = ["leaver", today]
    members = members[
        ~((members["role"] == "teacher") & (members["person_id"] == staff.at[quitting, "mis_id"]))
    ]
    starter = staff.loc[[quitting]].assign(
        mis_id="S99999", enrolment_status="pre_admission", start_date=today + pd.Timedelta(days=14),
        leaving_date=pd.NaT, staff_code="ZZZ",
    )  # fmt: skip
    staff = pd.concat([staff, starter], ignore_index=True)
    raw = {"pupils": pupils, "staff": staff, "contacts": contacts, "groups": groups,
           "memberships": members, "relationships": links}  # fmt: skip
    tables = {name: ENTITIES[name].coerce(frame.reset_index(drop=True)) for name, frame in raw.items()}
    return Extract(tables=tables, snapshot_at=at, source=extract.source)


@pytest.fixture(scope="module")
def school() -> Extract:
    return generate_school("secondary", 3, AS_OF)


@pytest.fixture(scope="module")
def later(school: Extract) -> Extract:
    return evolve_school(school)


def test_evolved_school_really_changed(school: Extract, later: Extract) -> None:
    counts = changes_between(school, later).counts()
    assert set(counts) == set(ENTITIES)
    assert counts["pupils"] == {"upserted": 20 + 5 + 5 + 4, "deleted": 3}
    assert counts["groups"]["deleted"] == 1
    assert later.snapshot_at > school.snapshot_at


def test_changes_between_then_apply_gives_the_new_snapshot(school: Extract, later: Extract) -> None:
    merged = apply_changes(school, changes_between(school, later))
    assert_same(merged, later)
    assert merged.snapshot_at == later.snapshot_at
    for name, entity in ENTITIES.items():  # canonical order: sorted by key
        keys = merged.tables[name][list(entity.key)]
        assert keys.equals(keys.sort_values(list(entity.key), ignore_index=True))


def test_no_changes_is_the_same_snapshot(school: Extract) -> None:
    assert_same(apply_changes(school, ChangeSet(snapshot_at=school.snapshot_at)), school)


def test_deleting_parents_cascades_to_memberships_and_relationships(school: Extract) -> None:
    t = school.tables
    group = t["groups"]["mis_id"].iloc[0]
    pupil = t["relationships"]["pupil_id"].iloc[0]
    contact = t["relationships"]["contact_id"].iloc[-1]
    deletes = {
        "groups": pd.DataFrame({"mis_id": [group]}),
        "pupils": pd.DataFrame({"mis_id": [pupil]}),
        "contacts": pd.DataFrame({"mis_id": [contact]}),
    }
    merged = apply_changes(school, ChangeSet(snapshot_at=school.snapshot_at, deletes=deletes)).tables
    assert group not in set(merged["groups"]["mis_id"])
    assert group not in set(merged["memberships"]["group_id"])
    pupil_rows = (merged["memberships"]["role"] == "pupil") & (merged["memberships"]["person_id"] == pupil)
    assert not pupil_rows.any()
    assert pupil not in set(merged["relationships"]["pupil_id"])
    assert contact not in set(merged["relationships"]["contact_id"])
    # only what hung off the deleted rows went
    lost = len(t["memberships"]) - len(merged["memberships"])
    expected = (t["memberships"]["group_id"] == group) | (
        (t["memberships"]["role"] == "pupil") & (t["memberships"]["person_id"] == pupil)
    )
    assert lost == int(expected.sum())


def test_upsert_wins_over_delete_and_scopes_replace_children(school: Extract) -> None:
    t = school.tables
    pupil = t["pupils"].iloc[[0]].assign(enrolment_status="leaver")
    group = t["groups"]["mis_id"].iloc[0]
    only = t["memberships"][t["memberships"]["group_id"] == group].head(1)
    changes = ChangeSet(
        snapshot_at=school.snapshot_at,
        upserts={"pupils": pupil, "memberships": only},
        deletes={"pupils": pupil[["mis_id"]]},
        scopes={"memberships": ("group_id", frozenset({group}))},
    )
    merged = apply_changes(school, changes).tables
    row = merged["pupils"][merged["pupils"]["mis_id"] == pupil["mis_id"].iloc[0]]
    assert row["enrolment_status"].tolist() == ["leaver"]
    assert (merged["memberships"]["group_id"] == group).sum() == 1
    assert (
        len(merged["memberships"])
        == len(t["memberships"]) - int((t["memberships"]["group_id"] == group).sum()) + 1
    )


def test_complete_tables_replace_and_cascade(school: Extract) -> None:
    staff = school.tables["staff"].iloc[1:]
    gone = school.tables["staff"]["mis_id"].iloc[0]
    merged = apply_changes(
        school,
        ChangeSet(snapshot_at=school.snapshot_at, upserts={"staff": staff}, complete=frozenset({"staff"})),
    ).tables
    assert len(merged["staff"]) == len(staff)
    teacher_rows = (merged["memberships"]["role"] == "teacher") & (merged["memberships"]["person_id"] == gone)
    assert not teacher_rows.any()


def test_delta_state_round_trips_through_storage(school: Extract, tmp_path: Path) -> None:
    assert load_delta_state(tmp_path) is None
    state = DeltaState(school, {"updated_after": "2026-01-15T06:00:00+00:00", "spec": "abc"}, "wonde", 2)
    save_delta_state(tmp_path, state)
    loaded = load_delta_state(tmp_path)
    assert loaded is not None
    assert (loaded.cursor, loaded.source, loaded.deltas_since_full) == (state.cursor, "wonde", 2)
    assert_same(loaded.snapshot, school)


class StubDelta(DeltaConnector):
    """A source whose full read is ``full`` and whose delta is ``changes``; records what it was asked."""

    type = "stub"
    digest = "d1"

    def __init__(self, full: Extract, changes: ChangeSet, options: dict[str, object] | None = None) -> None:
        super().__init__(ConnectionInfo(conn_id="stub"), options or {})
        self.full, self.changes, self.calls = full, changes, []

    def spec_digest(self) -> str:
        return self.digest

    def read_full(self) -> tuple[Extract, dict[str, str]]:
        self.calls.append("full")
        return self.full, {"token": "t0"}

    def read_changes(self, state: DeltaState) -> tuple[ChangeSet, dict[str, str]]:
        self.calls.append(f"delta from {state.cursor['token']}")
        return self.changes, {"token": "t1"}


def test_delta_connector_decides_between_full_and_delta(school: Extract, later: Extract) -> None:
    connector = StubDelta(school, changes_between(school, later), {"full_after_deltas": 2})
    first = connector.extract_delta(None)
    assert (first.mode, first.reason) == ("full", "no previous delta state")
    assert first.state.cursor == {"token": "t0", "spec": "d1"}
    second = connector.extract_delta(first.state)
    assert second.mode == "delta" and second.reason == ""
    assert_same(second.extract, later)
    assert second.changes["pupils"]["deleted"] == 3
    third = connector.extract_delta(second.state)
    fourth = connector.extract_delta(third.state)
    assert fourth.mode == "full" and "2 deltas" in fourth.reason
    assert connector.extract_delta(second.state, full=True).reason == "a full extract was requested"
    connector.digest = "d2"
    assert "mapping" in connector.extract_delta(second.state).reason
    other = DeltaState(school, second.state.cursor, "wonde")
    assert "from source 'wonde'" in connector.extract_delta(other).reason
    assert connector.calls[:3] == ["full", "delta from t0", "delta from t1"]
    assert_same(connector.extract(), school)  # the plain interface always reads in full


def test_an_unusable_cursor_means_a_full_read(school: Extract) -> None:
    connector = StubDelta(school, ChangeSet(snapshot_at=school.snapshot_at))
    state = connector.extract_delta(None).state

    def broken(state: DeltaState) -> tuple[ChangeSet, dict[str, str]]:
        raise CursorError("the stored cursor has no token")

    connector.read_changes = broken  # type: ignore[method-assign]
    result = connector.extract_delta(state)
    assert (result.mode, result.reason) == ("full", "the stored cursor has no token")
    assert result.state.deltas_since_full == 0
