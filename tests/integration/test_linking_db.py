"""Link mode against a real directory database (SQLite and PostgreSQL): sticky decisions, link state.

Output and assertion messages carry usernames of the synthetic CSV (``userNNNNN``), MIS ids and
counts only.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from mis_sync.directory.db import make_engine, migrate
from mis_sync.directory.schema import Base
from mis_sync.generator import generate_school
from mis_sync.linking import (
    DecisionError,
    LinkResult,
    LinkToCreateRefused,
    check_link_to_create,
    confirmations,
    link_report,
    load_decisions,
    load_link_state,
    parse_existing_users,
    record_decision,
    record_decisions,
    run_matching,
    save_link_state,
)
from mis_sync.linking.schema import LinkDecision, LinkState
from tests.unit.test_linking import AS_OF, build_case

SCHOOL = "secondary-3"
LINK_TABLES = {LinkDecision.__tablename__, LinkState.__tablename__}


@pytest.fixture
def engine(directory_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(directory_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def school():  # type: ignore[no-untyped-def]
    extract = generate_school("secondary", 3, AS_OF)
    case = build_case(extract, seed=11)
    return extract, parse_existing_users(case.csv_text), case.truth


def _row(result: LinkResult, username: str) -> pd.Series:
    return result.links[result.links["username"] == username].iloc[0]


def _mis_id(result: LinkResult, username: str) -> str | None:
    value = _row(result, username)["mis_id"]
    return None if pd.isna(value) else str(value)


def _pick(result: LinkResult, category: str, n: int) -> list[pd.Series]:
    rows = result.links[result.links["category"] == category].sort_values("username")
    return [row for _, row in rows.head(n).iterrows()]


def test_migrations_create_link_tables_as_modelled(engine) -> None:  # type: ignore[no-untyped-def]
    migrate(engine)
    assert set(inspect(engine).get_table_names()) >= LINK_TABLES
    only_link_tables = {
        "include_name": lambda name, type_, _parent: type_ != "table" or name in LINK_TABLES,
        "include_object": lambda _obj, name, type_, _reflected, _other: (
            type_ != "table" or name in LINK_TABLES
        ),
        "compare_type": True,
    }
    with engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection, opts=only_link_tables), Base.metadata)
    assert diffs == []


def test_decisions_round_trip_and_are_validated(engine) -> None:  # type: ignore[no-untyped-def]
    first = record_decision(engine, SCHOOL, "user1", "link", "P1", "pupil", actor="it-admin", note="checked")
    record_decision(engine, SCHOOL, "user2", "not_in_mis", actor="it-admin")
    record_decision(engine, SCHOOL, None, "has_no_account", "S9", "staff", actor="it-admin")
    record_decision(engine, "another-school", "user1", "reject", "P1", "pupil", actor="it-admin")
    decisions = load_decisions(engine, SCHOOL)
    assert decisions["decision"].tolist() == ["link", "not_in_mis", "has_no_account"]
    assert decisions["id"].iloc[0] == first
    assert decisions["decided_by"].eq("it-admin").all()
    assert decisions["decided_at"].notna().all()
    with pytest.raises(DecisionError, match="needs person_kind and mis_id"):
        record_decision(engine, SCHOOL, "user3", "reject", actor="it-admin")
    with pytest.raises(DecisionError, match="needs an actor"):
        record_decision(engine, SCHOOL, "user3", "not_in_mis", actor=" ")
    assert len(load_decisions(engine, SCHOOL)) == 3


def test_decisions_are_sticky_across_runs(engine, school) -> None:  # type: ignore[no-untyped-def]
    extract, users, truth = school
    first = run_matching(users, extract, load_decisions(engine, SCHOOL))
    reject, confirm, hidden = _pick(first, "likely", 3)
    carried = _pick(first, "linked", 1)[0]
    possible = _pick(first, "possible", 1)[0]
    at = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)

    def decide(*args: object, **kwargs: object) -> None:
        nonlocal at
        at += dt.timedelta(minutes=1)
        record_decision(engine, SCHOOL, *args, actor="it-admin", at=at, **kwargs)  # type: ignore[arg-type]

    decide(reject["username"], "reject", reject["mis_id"], str(reject["person_kind"]))
    decide(confirm["username"], "link", confirm["mis_id"], str(confirm["person_kind"]))
    decide(None, "has_no_account", hidden["mis_id"], str(hidden["person_kind"]))
    decide(carried["username"], "not_in_mis")
    decide(carried["username"].upper(), "reject", carried["mis_id"], str(carried["person_kind"]))
    decide(possible["username"], "link", possible["mis_id"], str(possible["person_kind"]))

    for run in range(3):  # nightly runs: each reloads the decisions, and auto-linking is on
        result = run_matching(users, extract, load_decisions(engine, SCHOOL), auto_link_likely=True)
        rejected = _row(result, reject["username"])
        assert _mis_id(result, reject["username"]) != reject["mis_id"], run
        assert rejected["category"] != "linked" or rejected["source"] == "likely", run
        assert tuple(_row(result, confirm["username"])[["category", "source"]]) == ("linked", "admin")
        assert _row(result, carried["username"])["category"] == "not_in_mis"
        assert _mis_id(result, carried["username"]) is None
        assert _mis_id(result, hidden["username"]) != hidden["mis_id"]
        no_account = result.links[result.links["category"] == "mis_no_account"]
        assert no_account["mis_id"].tolist() == [hidden["mis_id"]]
        assert (
            hidden["mis_id"]
            not in result.links.loc[result.links["username"].notna(), "mis_id"].dropna().tolist()
        )
        assert hidden["mis_id"] not in {m for alts in result.links["alternatives"] for m in alts}
        linked = _row(result, possible["username"])
        assert (linked["category"], linked["mis_id"], linked["source"]) == (
            "linked",
            possible["mis_id"],
            "admin",
        )
        assert result.counts["not_in_mis"] == 1
        if run == 0:
            before = result.links.drop(columns=["alternatives"])
        else:
            pd.testing.assert_frame_equal(result.links.drop(columns=["alternatives"]), before)
    assert truth[confirm["username"]][1] == confirm["mis_id"]

    decide(carried["username"], "clear")  # undo "not in MIS": the rejection of the pair still holds
    result = run_matching(users, extract, load_decisions(engine, SCHOOL))
    assert _mis_id(result, carried["username"]) != carried["mis_id"]


def test_link_state_round_trip_and_mode_switch(engine, school) -> None:  # type: ignore[no-untyped-def]
    extract, users, _ = school
    result = run_matching(users, extract, load_decisions(engine, SCHOOL))
    assert save_link_state(engine, SCHOOL, result.links, run_id="manual__1") == len(result.links)
    state = load_link_state(engine, SCHOOL)
    pd.testing.assert_frame_equal(link_report(state), link_report(result))
    with pytest.raises(LinkToCreateRefused) as refused:
        check_link_to_create(link_report(state))
    assert f"{result.counts['possible']} possible" in str(refused.value)
    linked = state[state["category"] == "linked"].iloc[0]
    assert linked["agreed_fields"] and linked["score"] > 0.9
    save_link_state(engine, SCHOOL, result.links.iloc[:0], run_id="manual__2")
    assert load_link_state(engine, SCHOOL).empty
    assert set(result.counts.values()) != {0}


def test_confirming_all_likely_matches_links_them(engine, school) -> None:  # type: ignore[no-untyped-def]
    extract, users, truth = school
    before = run_matching(users, extract, load_decisions(engine, SCHOOL))
    stored = record_decisions(engine, SCHOOL, confirmations(before.links), actor="it-admin")
    assert stored == before.counts["likely"] > 0
    after = run_matching(users, extract, load_decisions(engine, SCHOOL))
    assert after.counts["likely"] == 0
    assert after.counts["linked"] == before.counts["linked"] + before.counts["likely"]
    admin = after.links[after.links["source"] == "admin"]
    assert all(truth[u][1] == m for u, m in zip(admin["username"], admin["mis_id"], strict=True))
    with pytest.raises(DecisionError):
        record_decisions(engine, SCHOOL, [{"username": "x", "decision": "link"}], actor="it-admin")
    assert len(load_decisions(engine, SCHOOL)) == stored
