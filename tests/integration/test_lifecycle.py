"""Account lifecycle on a real directory (SQLite and PostgreSQL): leavers, grace, protection, parents."""

from __future__ import annotations

import pandas as pd
import pytest

from mis_sync.directory.db import make_engine, migrate
from tests.helpers import TINY, demo_config, dump, read_drop, sync, with_table


@pytest.fixture
def engine(directory_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(directory_url)
    migrate(engine)
    yield engine
    engine.dispose()


def _users(engine) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    return {row[2]: row for row in dump(engine)["users"]}


def _without(extract, mis_id: str, hours_later: int):  # type: ignore[no-untyped-def]
    pupils = extract.tables["pupils"]
    return with_table(extract, "pupils", pupils[pupils["mis_id"] != mis_id], hours_later=hours_later)


def test_leaver_is_suspended_then_deleted_after_the_grace_period(engine) -> None:  # type: ignore[no-untyped-def]
    config, extract = demo_config(), read_drop(TINY)
    sync(engine, config, extract, "day-0")
    sync(engine, config, _without(extract, "P1", 24), "day-1")
    assert _users(engine)["P1"][-1] == "suspended"

    plan, _ = sync(engine, config, _without(extract, "P1", 24 * 30), "day-30")
    assert "delete" not in set(plan.users["action"]), "still inside the 60-day grace period"

    plan, _ = sync(engine, config, _without(extract, "P1", 24 * 62), "day-62")
    assert list(plan.users["action"]) == ["delete"]
    user = _users(engine)["P1"]
    assert user[-1] == "deleted"
    assert user[3] == "zobrien", "the username stays reserved"
    assert user[5] == user[6] == user[7] == user[8] == "", "personal fields are cleared"
    audit = dump(engine)["audit"]
    assert any(row[2] == "delete" and row[4] == "suspended" and row[5] == "deleted" for row in audit)


def test_a_returning_pupil_gets_the_same_username_before_and_after_deletion(engine) -> None:  # type: ignore[no-untyped-def]
    config, extract = demo_config(), read_drop(TINY)
    sync(engine, config, extract, "day-0")
    sync(engine, config, _without(extract, "P1", 24), "day-1")
    plan, _ = sync(
        engine, config, with_table(extract, "pupils", extract.tables["pupils"], hours_later=48), "day-2"
    )
    assert dict(zip(plan.users["mis_id"], plan.users["action"], strict=True)) == {"P1": "restore"}
    assert _users(engine)["P1"][3] == "zobrien"

    sync(engine, config, _without(extract, "P1", 72), "day-3")
    sync(engine, config, _without(extract, "P1", 24 * 70), "day-70")
    assert _users(engine)["P1"][-1] == "deleted"
    plan, _ = sync(
        engine, config, with_table(extract, "pupils", extract.tables["pupils"], hours_later=24 * 80), "day-80"
    )
    row = plan.users[plan.users["mis_id"] == "P1"].iloc[0]
    assert row["action"] == "restore" and "deleted" in row["reason"]
    user = _users(engine)["P1"]
    assert user[3] == "zobrien" and user[-1] == "active" and user[7] == "Zoë O'Brien"


def test_protected_usernames_are_never_suspended_or_deleted(engine) -> None:  # type: ignore[no-untyped-def]
    config = demo_config()
    config = config.model_copy(
        update={"accounts": config.accounts.model_copy(update={"protected_usernames": ("jbrown",)})}
    )
    extract = read_drop(TINY)
    sync(engine, config, extract, "day-0")
    staff = extract.tables["staff"]
    gone = with_table(extract, "staff", staff[staff["mis_id"] != "S1"], hours_later=24 * 90)
    plan, _ = sync(engine, config, gone, "day-90")
    assert "S1" not in set(plan.users["mis_id"])
    assert _users(engine)["S1"][-1] == "active"


def test_parents_are_invited_once_by_email_and_go_with_their_last_child(engine) -> None:  # type: ignore[no-untyped-def]
    config = demo_config()
    config = config.model_copy(
        update={"accounts": config.accounts.model_copy(update={"invite_parents": True})}
    )
    extract = read_drop(TINY)
    plan, _ = sync(engine, config, extract, "day-0")
    parents = plan.users[plan.users["role"] == "parent"]
    # C1 (P1), C2 (P2 and P3: one account across siblings), C3 (P3); C4 has no parental responsibility.
    assert sorted(parents["mis_id"]) == ["C1", "C2", "C3"]
    assert dict(zip(parents["mis_id"], parents["username"], strict=True))["C2"] == "tom@example.org"
    assert plan.notes == {"parents_without_email": 0, "parents_sharing_an_email": 0}

    pupils = extract.tables["pupils"]
    one_child_left = with_table(extract, "pupils", pupils[pupils["mis_id"] != "P2"], hours_later=24)
    plan, _ = sync(engine, config, one_child_left, "day-1")
    assert "C2" not in set(plan.users["mis_id"]), "C2 still has P3 on roll"
    both_left = with_table(extract, "pupils", pupils[~pupils["mis_id"].isin(["P2", "P3"])], hours_later=48)
    plan, _ = sync(engine, config, both_left, "day-2")
    suspended = set(plan.users.loc[plan.users["action"] == "suspend", "mis_id"])
    assert {"C2", "C3"} <= suspended


def test_parents_without_email_are_counted_not_invited(engine) -> None:  # type: ignore[no-untyped-def]
    config = demo_config()
    config = config.model_copy(
        update={"accounts": config.accounts.model_copy(update={"invite_parents": True})}
    )
    extract = read_drop(TINY)
    contacts = extract.tables["contacts"].copy()
    contacts.loc[contacts["mis_id"] == "C1", "email"] = pd.NA
    contacts.loc[contacts["mis_id"] == "C3", "email"] = "TOM@example.org"  # shares C2's address
    plan, _ = sync(engine, config, with_table(extract, "contacts", contacts, hours_later=0), "day-0")
    assert sorted(plan.users.loc[plan.users["role"] == "parent", "mis_id"]) == ["C2"]
    assert plan.notes == {"parents_without_email": 1, "parents_sharing_an_email": 1}
