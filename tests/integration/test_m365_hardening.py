"""Issue 13, Microsoft 365 items 1–5, against the local fake Graph through the provider's hook.

- a removal answered 404 ``Request_ResourceNotFound`` (someone removed by hand) is done: the class,
  its memberships and its team are kept, and the next run sends nothing;
- an add whose stored user id is stale (the account was deleted and made again) is sent again with
  the user's new id, in the same run, and the new id is stored;
- 10 % throttling with nothing lost reports ``failed`` 0, and every wait is at least the server's
  ``Retry-After`` (outer ``$batch`` 429s, inner 429s and class creates alike);
- a teacher who leaves a class is removed from its teachers before its members; every teacher (the
  admin too) is a member, as Microsoft's educationClass docs ask.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine

from mis_sync.fakes import FakeGraph
from mis_sync.generator import generate_school
from mis_sync.model import Extract
from mis_sync.targets.stages import run_target
from mis_sync.targets.store import TargetStore
from tests.helpers import sync
from tests.integration.test_m365_sync import (
    DOMAIN,
    assert_converged,
    config,
    context,
    graph_for,
    make_directory,
    run,
)


@pytest.fixture(scope="module")
def school() -> Any:
    return generate_school("small-primary", seed=7, as_of=dt.date(2026, 10, 1))


@pytest.fixture
def directory(tmp_path: Path, school: Any) -> Engine:
    return make_directory(tmp_path, school)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, directory: Engine) -> Iterator[FakeGraph]:
    with graph_for(monkeypatch, directory) as server:
        yield server


def mis_without(directory: Engine, school: Any, rows: pd.Index, run_id: str) -> None:
    """The MIS an hour later, without the membership ``rows``."""
    tables = {**school.tables, "memberships": school.tables["memberships"].drop(index=rows)}
    sync(
        directory,
        config(),
        Extract(tables, school.snapshot_at + pd.Timedelta(hours=1), school.source),
        run_id,
    )


def test_a_404_on_a_removal_keeps_the_class_and_the_next_run_sends_nothing(
    directory: Engine, fake: FakeGraph, tmp_path: Path, school: Any
) -> None:
    run(directory, tmp_path, config(), "r1")
    assert run(directory, tmp_path, config(), "r1b")["drift_checked"], "the weekly check, now done"
    memberships, groups = school.tables["memberships"], school.tables["groups"]
    registration = set(groups.loc[groups["kind"] == "registration", "mis_id"])
    pupils = memberships[(memberships["role"] == "pupil") & memberships["group_id"].isin(registration)]
    leaver = pupils.index[:1]
    mis_without(directory, school, leaver, "mis-2")
    store = TargetStore(directory, "demo-academy", "microsoft365")
    classes_before = len(store.load().containers)
    pupil = fake.state.user_by_upn(_username(directory, school, leaver[0]) + f"@{DOMAIN}")["id"]
    for members in fake.state.members.values():  # someone removed the pupil by hand already
        if pupil in members:
            members.remove(pupil)
    fake.store.removal_errors = ("not_found",)  # Graph's usual answer: 404 Request_ResourceNotFound
    fake.reset_counters()
    summary = run(directory, tmp_path, config(), "r2")
    removes = [s for m, p, s in fake.inner_requests if m == "DELETE"]
    assert removes == [404], "the removal was answered 404"
    assert summary["noops"] == 1 and summary["writes"] == 0 and summary["failed"] == 0
    assert summary["gone"] == 0 and len(store.load().containers) == classes_before, "class kept"
    fake.reset_counters()
    again = run(directory, tmp_path, config(), "r3")
    assert again["writes"] == again["write_requests"] == fake.counters["write_attempts"] == 0
    assert_converged(directory, fake)


def _username(directory: Engine, school: Any, row: Any) -> str:
    from mis_sync.directory.state import load_state

    person = school.tables["memberships"].loc[row]
    users = load_state(directory, "demo-academy").users
    match = users[(users["mis_id"] == person["person_id"])]
    return str(match["username"].iloc[0])


def test_an_add_with_a_stale_user_id_is_sent_again_with_the_new_id(
    directory: Engine, fake: FakeGraph, tmp_path: Path
) -> None:
    run(directory, tmp_path, config(), "r1")
    store = TargetStore(directory, "demo-academy", "microsoft365")
    stored_ids = dict(zip(store.load().users["user_key"], store.load().users["remote_id"], strict=True))
    upn = next(u for u in stored_ids if not u.startswith("it.admin"))
    fake.delete_user(stored_ids[upn])  # the account deleted and made again: a new object id
    new_id = fake.add_user(upn)
    summary = run(directory, tmp_path, config(), "r2", force_drift_check=True)
    assert summary["stale_user_ids"] == 1 and summary["failed"] == 0 and summary["gone"] == 0
    assert summary["drift"]["drift_gone"] == 0
    again = dict(zip(store.load().users["user_key"], store.load().users["remote_id"], strict=True))
    assert again[upn] == new_id
    assert_converged(directory, fake)
    fake.reset_counters()
    assert run(directory, tmp_path, config(), "r3", force_drift_check=True)["writes"] == 0


def test_ten_percent_throttling_loses_nothing_reports_no_failures_and_honours_retry_after(
    directory: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retry-After 200 s: above the hook's own 180 s limit, so every retry is the engine's to time."""
    waits: list[float] = []
    with graph_for(monkeypatch, directory, seed=6, throttle_rate=0.1, retry_after=200) as server:
        ctx = context(directory, tmp_path, config(), "r1")
        summary = run_target(ctx, "microsoft365", sleep=waits.append)
        throttled_creates = [
            s for m, p, s in server.inner_requests if m == "POST" and p == "/education/classes" and s == 429
        ]
        outer_throttles = [s for m, p, s in server.requests if p.endswith("$batch") and s == 429]
        assert throttled_creates and outer_throttles, "the seed throttles creates and whole batches"
        assert summary["throttles"] > 0 and summary["failed"] == 0
        assert waits and min(waits) >= 200, "no retry sooner than the server asked"
        assert_converged(directory, server)


def test_a_leaving_teacher_is_removed_from_teachers_before_members(
    directory: Engine, fake: FakeGraph, tmp_path: Path, school: Any
) -> None:
    run(directory, tmp_path, config(), "r1")
    memberships = school.tables["memberships"]
    leaving = memberships[memberships["role"] == "teacher"].index[:2]
    mis_without(directory, school, leaving, "mis-2")
    fake.store.teacher_removals = ("refuse",)  # a member removal of a teacher is refused
    fake.reset_counters()
    summary = run(directory, tmp_path, config(), "r2")
    assert summary["failed"] == 0 and summary["writes"] == 4 and summary["skipped_still_teacher"] == 0
    deletes = [p.split("/")[4] for m, p, s in fake.inner_requests if m == "DELETE" and s == 204]
    assert deletes == ["teachers", "teachers", "members", "members"]
    assert_converged(directory, fake)


def test_a_recreated_account_added_back_by_hand_is_kept_not_removed_as_a_stranger(
    directory: Engine, fake: FakeGraph, tmp_path: Path
) -> None:
    run(directory, tmp_path, config(), "r1")
    store = TargetStore(directory, "demo-academy", "microsoft365")
    stored_ids = dict(zip(store.load().users["user_key"], store.load().users["remote_id"], strict=True))
    upn = next(u for u in stored_ids if not u.startswith("it.admin"))
    classes = [cid for cid, members in fake.state.members.items() if stored_ids[upn] in members]
    fake.delete_user(stored_ids[upn])
    new_id = fake.add_user(upn)
    fake.state.members[classes[0]].append(new_id)  # a teacher put the new account back in one class
    summary = run(directory, tmp_path, config(), "r2", force_drift_check=True)
    assert summary["drift"]["drift_extra"] == 1, "the new id looked like a stranger to the drift check"
    assert summary["stale_user_ids"] == 1 and summary["failed"] == 0
    assert new_id in fake.state.members[classes[0]], "kept: it is the same person under a new id"
    assert_converged(directory, fake)
    fake.reset_counters()
    assert run(directory, tmp_path, config(), "r3", force_drift_check=True)["writes"] == 0
