"""Issue 12 scenario 5: the MIS re-keys 40 % of pupils (same UPN, date of birth and names).

A generated secondary (1,020 pupils) synced once, then the next night's export gives 40 % of pupils new
MIS ids. Through the real stages (file drop → validate → plan → apply, on SQLite and PostgreSQL):
before this work 398 duplicate accounts were created (``mbrowne`` → ``mbrowne1``) and the old accounts
lost their classes. Now: no account is created and none suspended; the re-keys are above the brake's
limits (an MIS migration), so they wait for approval with the accounts and their classes untouched;
approved, every account takes its new MIS id with the same username and memberships, each re-key
audit-logged with old and new id (never a name), and neither Microsoft 365 nor Google Classroom (the
local emulators) sees a membership removed or added, while held or after.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from mis_sync.directory.db import make_engine, migrate
from mis_sync.directory.schema import AuditEntry
from mis_sync.directory.state import load_state
from mis_sync.fakes import running_fake_classroom, running_fake_graph
from mis_sync.identity.store import pending_pairs, record_identity_decision
from mis_sync.targets.settings import GoogleClassroomTarget, Microsoft365Target, OwnersPolicy, TargetsConfig
from mis_sync.targets.stages import run_target
from tests.helpers import demo_config
from tests.stage_helpers import (
    approve_held,
    context,
    first_night,
    later,
    read_csv,
    run_stages,
    write_csv,
)

DOMAIN = "school.example"
CONN_ID = "msgraph_identity"
GOOGLE_ID = "google_identity"


@pytest.fixture
def engine(directory_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(directory_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def night_one(engine, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """The school's drop folder after a first, clean night."""
    return first_night(engine, tmp_path)


def _rekey(drop: Path, share: float, seed: int = 5) -> dict[str, str]:
    """Give a share of pupils new MIS ids everywhere the export names them; old id -> new id."""
    pupils = read_csv(drop, "pupils.csv")
    chosen = pupils.sample(frac=share, random_state=seed)["PupilId"]
    renamed = {old: f"NEW-{old}" for old in chosen}
    pupils["PupilId"] = pupils["PupilId"].replace(renamed)
    write_csv(drop, "pupils.csv", pupils)
    for name, column in (("memberships.csv", "PersonId"), ("relationships.csv", "PupilId")):
        frame = read_csv(drop, name)
        frame[column] = frame[column].replace(renamed)
        write_csv(drop, name, frame)
    later(drop)
    return renamed


def _directory(engine) -> tuple[pd.DataFrame, set[tuple[str, str, str]]]:  # type: ignore[no-untyped-def]
    """Users, and memberships as (group, username, role): what a target sees."""
    state = load_state(engine, "demo-academy")
    users = state.users
    names = users.set_index(["person_kind", "mis_id"])["username"]
    keys = pd.MultiIndex.from_frame(state.memberships[["person_kind", "person_mis_id"]])
    usernames = names.reindex(keys).to_numpy()
    members = set(zip(state.memberships["group_mis_id"], usernames, state.memberships["role"], strict=True))
    return users, members


def test_an_mis_migration_waits_for_approval_then_keeps_every_account_and_class(
    engine, night_one: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    users_before, members_before = _directory(engine)
    pupils_before = users_before[users_before["role"] == "pupil"]
    renamed = _rekey(night_one, 0.4)
    on_roll_renamed = set(pupils_before["mis_id"]) & set(renamed)
    assert len(on_roll_renamed) > 350

    night = run_stages(engine, tmp_path / "runs", night_one, demo_config(), "night-2")
    plan = night["plan"]
    assert "create" not in plan["users"] and "suspend" not in plan["users"], "no duplicates, no suspensions"
    assert plan["held_by_role"] == {"pupil": {"rekey": len(on_roll_renamed)}}
    assert "MIS ids changed" in plan["held_reason"] and "upn" in plan["held_reason"]
    assert plan["notes"]["identity_rekeys_held"] == len(on_roll_renamed)
    assert plan["memberships"] == {}, "held means untouched: no class loses or gains anyone"
    users, members = _directory(engine)
    assert members == members_before
    assert set(users["mis_id"]) == set(users_before["mis_id"]) and set(users["status"]) == {"active"}

    approved = approve_held(engine, tmp_path / "runs", night_one, demo_config(), "night-2")
    assert approved["plan"]["users"] == {"rekey": len(on_roll_renamed)}
    assert approved["plan"]["memberships"] == {}, "memberships follow the account, not its MIS id"
    users, members = _directory(engine)
    assert len(users) == len(users_before), "never a second account for a person who has one"
    by_id = users.set_index("mis_id")["username"]
    old_names = pupils_before.set_index("mis_id")["username"]
    assert all(by_id[renamed[old]] == old_names[old] for old in on_roll_renamed), "same usernames"
    assert members == members_before
    assert set(users["status"]) == {"active"}

    with engine.connect() as connection:
        audit = connection.execute(
            select(AuditEntry.entity_key, AuditEntry.field, AuditEntry.old_value, AuditEntry.new_value).where(
                AuditEntry.action == "rekey"
            )
        ).all()
    assert len(audit) == len(on_roll_renamed)
    assert {(old, new) for _, _, old, new in audit} == {(o, renamed[o]) for o in on_roll_renamed}
    assert {field for _, field, _, _ in audit} == {"mis_id"}, "ids only, never names"

    again = run_stages(engine, tmp_path / "runs", night_one, demo_config(), "night-3")
    assert again["apply"]["writes"] == 0, "converged: the next night changes nothing"


def test_a_few_re_keys_are_applied_at_once(engine, night_one: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    users_before, members_before = _directory(engine)
    renamed = _rekey(night_one, 0.005, seed=9)
    moved = set(users_before["mis_id"]) & set(renamed)
    night = run_stages(engine, tmp_path / "runs", night_one, demo_config(), "night-2")
    assert night["plan"]["users"] == {"rekey": len(moved)} and night["plan"]["users_held"] == 0
    users, members = _directory(engine)
    assert members == members_before and len(users) == len(users_before)
    assert set(renamed.values()) & set(users["mis_id"]) == {renamed[m] for m in moved}


def test_ambiguous_pairs_wait_for_an_admin_decision(engine, night_one: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two new records both look like one vanished account: neither created, the account not suspended."""
    users_before, members_before = _directory(engine)
    pupils = read_csv(night_one, "pupils.csv")
    on_roll = pupils[(pupils["EnrolmentStatus"] == "on_roll") & (pupils["LeavingDate"] == "")]
    original = on_roll.iloc[0]
    twin = original.copy()
    first, second = f"NEW-{original['PupilId']}", f"DUP-{original['PupilId']}"
    pupils.loc[original.name, "PupilId"] = first
    pupils.loc[original.name, "UPN"] = ""
    twin["PupilId"], twin["UPN"] = second, ""
    write_csv(night_one, "pupils.csv", pd.concat([pupils, twin.to_frame().T], ignore_index=True))
    memberships = read_csv(night_one, "memberships.csv")
    memberships["PersonId"] = memberships["PersonId"].replace({original["PupilId"]: first})
    write_csv(night_one, "memberships.csv", memberships)
    relationships = read_csv(night_one, "relationships.csv")
    relationships["PupilId"] = relationships["PupilId"].replace({original["PupilId"]: first})
    write_csv(night_one, "relationships.csv", relationships)
    later(night_one)

    night = run_stages(engine, tmp_path / "runs", night_one, demo_config(), "night-2")
    assert night["plan"]["users"] == {} and night["plan"]["notes"]["identity_ambiguous_pairs"] == 2
    users, members = _directory(engine)
    assert len(users) == len(users_before) and members == members_before, "held means untouched"
    pending = pending_pairs(engine, "demo-academy")
    assert set(pending["new_mis_id"]) == {first, second}
    assert set(pending["old_mis_id"]) == {original["PupilId"]} and set(pending["reason"]) == {
        "several_candidates"
    }

    for decision, new_id in (("same", first), ("distinct", second)):
        record_identity_decision(
            engine,
            "demo-academy",
            decision,
            person_kind="pupil",
            old_mis_id=original["PupilId"],
            new_mis_id=new_id,
            decided_by="it.admin",
        )
    later(night_one)
    decided = run_stages(engine, tmp_path / "runs", night_one, demo_config(), "night-3")
    assert decided["plan"]["users"] == {"rekey": 1, "create": 1}
    users, _ = _directory(engine)
    usernames = users.set_index("mis_id")["username"]
    assert usernames[first] == users_before.set_index("mis_id")["username"][original["PupilId"]]
    assert usernames[second] != usernames[first], "the other record is a new account"
    assert pending_pairs(engine, "demo-academy").empty


@pytest.mark.parametrize("directory_url", ["sqlite"], indirect=True)
def test_microsoft_365_and_classroom_see_no_membership_change_after_the_re_key(
    engine, night_one: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    m365 = Microsoft365Target(
        enabled=True, connection_id=CONN_ID, tenant_domain=DOMAIN, owners=OwnersPolicy(admins=("it.admin",))
    )
    google = GoogleClassroomTarget(
        enabled=True, connection_id=GOOGLE_ID, domain=DOMAIN, owner="it.admin", group_kinds=["registration"]
    )
    config = demo_config(targets=TargetsConfig(microsoft365=m365, google_classroom=google))
    with running_fake_graph(seed=3) as graph, running_fake_classroom(seed=3) as classroom:
        extra = {"tenant_id": "0" * 8 + "-0000-0000-0000-" + "0" * 12, "base_url": graph.base_url + "/"}
        extra["allowed_hosts"] = "graph.microsoft.com"
        conn = {"conn_type": "msgraph", "login": "client-id", "password": "secret", "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        google_conn = {"conn_type": "generic", "extra": {"api_endpoint": classroom.base_url}}
        monkeypatch.setenv(f"AIRFLOW_CONN_{GOOGLE_ID.upper()}", json.dumps(google_conn))
        classroom.add_user(f"it.admin@{DOMAIN}", "It", "Admin", is_admin=True)
        for username in load_state(engine, "demo-academy").users["username"]:
            graph.add_user(f"{username}@{DOMAIN}")
            classroom.add_user(f"{username}@{DOMAIN}", "Test", "User")
        graph.add_user(f"it.admin@{DOMAIN}")

        def fan_out(run_id: str) -> dict[str, dict]:
            ctx = context(engine, tmp_path / "runs", night_one, config, run_id)
            return {
                t: run_target(ctx, t, sleep=lambda _s: None) for t in ("microsoft365", "google_classroom")
            }

        first = fan_out("night-1")
        assert first["microsoft365"]["writes"] > 1000 and first["google_classroom"]["writes"] > 500
        assert first["microsoft365"]["failed"] == first["google_classroom"]["failed"] == 0
        _rekey(night_one, 0.4)
        run_stages(engine, tmp_path / "runs", night_one, config, "night-2")
        held = fan_out("night-2-held")
        assert held["microsoft365"]["writes"] == held["google_classroom"]["writes"] == 0, "held: untouched"
        approve_held(engine, tmp_path / "runs", night_one, config, "night-2")
        graph.reset_counters()
        after = fan_out("night-2")
        assert after["microsoft365"]["writes"] == 0 and graph.counters["writes"] == 0, "no remove + add"
        assert after["google_classroom"]["writes"] == 0, "nor in Classroom"
        assert after["microsoft365"]["unresolved_users"] == after["google_classroom"]["unresolved_users"] == 0
