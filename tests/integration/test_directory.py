"""Create mode against a real directory database: SQLite and PostgreSQL (each test runs on both)."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import inspect

from mis_sync.directory import apply as apply_module
from mis_sync.directory.db import make_engine, migrate
from mis_sync.directory.state import load_state, sync_status
from mis_sync.errors import StalePlanError
from mis_sync.plan import make_plan
from tests.helpers import TINY, audit_count, demo_config, dump, read_drop, sync, with_table


@pytest.fixture
def engine(directory_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(directory_url)
    migrate(engine)
    yield engine
    engine.dispose()


def test_migrations_are_idempotent_and_create_every_table(engine) -> None:  # type: ignore[no-untyped-def]
    migrate(engine)
    tables = set(inspect(engine).get_table_names())
    assert {
        "directory_users",
        "directory_groups",
        "directory_memberships",
        "directory_audit_log",
        "directory_sync_state",
        "directory_sync_runs",
        "directory_alembic_version",
    } <= tables


def test_first_run_creates_and_second_run_changes_nothing(engine) -> None:  # type: ignore[no-untyped-def]
    config, extract = demo_config(), read_drop(TINY)
    _plan, result = sync(engine, config, extract, "run-1")
    assert result.applied and result.revision == 1
    state = dump(engine)
    usernames = {row[2]: row[3] for row in state["users"]}
    # Leaver P6 gets no account; pre-admission P5 does; "Smith" collision gets a suffix.
    assert set(usernames) == {"P1", "P2", "P3", "P4", "P5", "S1", "S2", "S3"}
    assert usernames["P2"] == "asmith" and usernames["P3"] == "asmith1"
    assert usernames["P4"] == "todegaard" and usernames["S2"] == "sosuilleabhain"
    assert len(state["groups"]) == 4
    assert len(state["memberships"]) == 15
    before = audit_count(engine)

    plan2, result2 = sync(engine, config, with_table(extract, "pupils", extract.tables["pupils"]), "run-2")
    assert plan2.change_count == 0 and result2.writes == 0
    assert audit_count(engine) == before
    assert result2.revision == 1


def test_changes_update_suspend_restore_and_never_rename(engine) -> None:  # type: ignore[no-untyped-def]
    config, extract = demo_config(), read_drop(TINY)
    sync(engine, config, extract, "run-1")
    pupils = extract.tables["pupils"].copy()
    pupils.loc[pupils["mis_id"] == "P2", "preferred_last_name"] = "Jones"  # name change
    pupils = pupils[pupils["mis_id"] != "P1"]  # gone from the MIS
    later = with_table(extract, "pupils", pupils)
    plan, _result = sync(engine, config, later, "run-2")
    actions = dict(zip(plan.users["mis_id"], plan.users["action"], strict=True))
    assert actions == {"P2": "update", "P1": "suspend"}
    users = {row[2]: row for row in dump(engine)["users"]}
    assert users["P2"][3] == "asmith"  # username kept
    assert users["P2"][7] == "Alex Jones"  # display name follows the MIS
    assert users["P1"][-1] == "suspended"
    memberships = dump(engine)["memberships"]
    assert not [m for m in memberships if m[2] == "P1"], "a suspended user keeps no memberships"
    audit = dump(engine)["audit"]
    assert ("user", "user:pupil:P2", "update", "last_name", "Smith", "Jones", "MIS data changed") in audit

    back = with_table(later, "pupils", extract.tables["pupils"])
    plan3, _ = sync(engine, config, back, "run-3")
    assert dict(zip(plan3.users["mis_id"], plan3.users["action"], strict=True))["P1"] == "restore"
    users = {row[2]: row for row in dump(engine)["users"]}
    assert users["P1"][3] == "zobrien" and users["P1"][-1] == "active"


def test_usernames_are_never_reissued(engine) -> None:  # type: ignore[no-untyped-def]
    config, extract = demo_config(), read_drop(TINY)
    sync(engine, config, extract, "run-1")
    pupils = extract.tables["pupils"]
    leaver_gone = with_table(extract, "pupils", pupils[pupils["mis_id"] != "P2"])
    sync(engine, config, leaver_gone, "run-2")
    # a different person with the same names (other UPN and date of birth: not a re-keyed P2)
    newcomer = pupils[pupils["mis_id"] == "P2"].assign(
        mis_id="P99", upn=pd.NA, former_upn=pd.NA, date_of_birth=pd.Timestamp("2014-03-03")
    )
    arrived = with_table(leaver_gone, "pupils", pd.concat([pupils[pupils["mis_id"] != "P2"], newcomer]))
    sync(engine, config, arrived, "run-3")
    users = {row[2]: row[3] for row in dump(engine)["users"]}
    assert users["P2"] == "asmith" and users["P99"] not in {"asmith", "asmith1"}


def test_older_snapshot_is_never_applied(engine) -> None:  # type: ignore[no-untyped-def]
    config, extract = demo_config(), read_drop(TINY)
    later = with_table(extract, "pupils", extract.tables["pupils"], hours_later=48)
    sync(engine, config, later, "run-new")
    before = dump(engine)
    pupils = extract.tables["pupils"]
    older = with_table(extract, "pupils", pupils[pupils["mis_id"] != "P1"], hours_later=0)
    plan, result = sync(engine, config, older, "backfill-old")
    assert not result.applied
    assert "older than the one already applied" in (plan.skipped_reason or "")
    assert dump(engine) == before
    assert sync_status(engine, config.id)["last_snapshot_at"] == later.snapshot_at.isoformat()


def test_stale_plan_is_refused(engine) -> None:  # type: ignore[no-untyped-def]
    config, extract = demo_config(), read_drop(TINY)
    stale = make_plan(extract, load_state(engine, config.id), config)
    sync(engine, config, extract, "run-1")
    with pytest.raises(StalePlanError, match="re-run the DAG"):
        apply_module.apply_plan(
            engine, config.id, stale, run_id="late-retry", extract_hash="x", extract_counts={}
        )


@pytest.mark.parametrize("fail_after", [0, 2, 5])
def test_interrupted_apply_then_rerun_equals_uninterrupted(
    directory_url: str, monkeypatch: pytest.MonkeyPatch, fail_after: int, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    config, extract = demo_config(), read_drop(TINY)
    # Reference: an uninterrupted run on a fresh database of the same kind.
    reference_url = (
        f"sqlite:///{tmp_path / 'reference.db'}" if directory_url.startswith("sqlite") else directory_url
    )
    engine = make_engine(directory_url)
    migrate(engine)
    original = apply_module._execute
    calls = {"n": 0}

    def failing(connection, statement, rows):  # type: ignore[no-untyped-def]
        if rows and calls["n"] >= fail_after:
            raise ConnectionError("simulated database outage")
        calls["n"] += 1 if rows else 0
        return original(connection, statement, rows)

    monkeypatch.setattr(apply_module, "_execute", failing)
    with pytest.raises(ConnectionError):
        sync(engine, config, extract, "run-1")
    assert dump(engine)["users"] == [] and audit_count(engine) == 0, "nothing half-applied"
    monkeypatch.setattr(apply_module, "_execute", original)
    sync(engine, config, extract, "run-1")  # the task's retry
    interrupted_then_rerun = dump(engine)
    engine.dispose()

    if reference_url == directory_url:  # PostgreSQL: rebuild the reference in the same database
        reference = make_engine(directory_url)
        with reference.begin() as connection:
            for table in (
                "directory_memberships",
                "directory_audit_log",
                "directory_user_identities",
                "directory_identity_pending",
                "directory_users",
                "directory_groups",
                "directory_sync_state",
                "directory_sync_runs",
            ):
                connection.exec_driver_sql(f"DELETE FROM {table}")
    else:
        reference = make_engine(reference_url)
        migrate(reference)
    sync(reference, config, extract, "run-1")
    assert dump(reference) == interrupted_then_rerun
    reference.dispose()


def test_mass_suspension_is_held_until_approved(engine) -> None:  # type: ignore[no-untyped-def]
    config = demo_config()
    config = config.model_copy(
        update={
            "safety": config.safety.model_copy(update={"max_suspend_count": 1, "max_suspend_fraction": 0.2})
        }
    )
    extract = read_drop(TINY)
    sync(engine, config, extract, "run-1")
    pupils = extract.tables["pupils"]
    shrunk = with_table(extract, "pupils", pupils[~pupils["mis_id"].isin(["P1", "P2"])])
    plan, _result = sync(engine, config, shrunk, "run-2")
    assert plan.held_reason and "pupil: 2 of 5" in plan.held_reason
    assert int(plan.users["held"].sum()) == 2
    statuses = {row[2]: row[-1] for row in dump(engine)["users"]}
    assert statuses["P1"] == statuses["P2"] == "active", "held suspensions are not applied"
    plan, _ = sync(
        engine,
        config,
        with_table(shrunk, "pupils", shrunk.tables["pupils"], hours_later=1),
        "run-3",
        approve=True,
    )
    statuses = {row[2]: row[-1] for row in dump(engine)["users"]}
    assert statuses["P1"] == statuses["P2"] == "suspended"


def test_database_errors_do_not_carry_personal_data(engine) -> None:  # type: ignore[no-untyped-def]
    """A constraint violation's message shows no parameter values (names, emails) in the task log."""
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from mis_sync.directory.schema import User

    config, extract = demo_config(), read_drop(TINY)
    sync(engine, config, extract, "run-1")
    duplicate = {
        "establishment_id": config.id,
        "person_kind": "pupil",
        "mis_id": "P999",
        "role": "pupil",
        "username": "zobrien",
        "first_name": "Secretname",
        "last_name": "Secretsurname",
        "status": "active",
        "created_at": pd.Timestamp.now(tz="UTC"),
        "updated_at": pd.Timestamp.now(tz="UTC"),
    }
    with pytest.raises(IntegrityError) as caught, engine.begin() as connection:
        connection.execute(insert(User), [duplicate])
    assert "Secretname" not in str(caught.value)
    assert "Secretsurname" not in str(caught.value)
