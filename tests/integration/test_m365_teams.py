"""Class teams (``targets.microsoft365.teams: true``) against the local fake Graph.

Every class gets one team made from its group after its owners are in; a rerun sends nothing; a group
too new for a team is tried again after a pause and, if still not ready, left for the next run; a
team that already exists counts as made; a crash mid-run converges with no team requested twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from mis_sync.fakes import FakeGraph
from mis_sync.generator import generate_school
from mis_sync.targets.stages import run_target
from mis_sync.targets.sync import TEAM_ROUNDS, TEAM_WAIT_S
from tests.integration.test_m365_sync import (
    assert_converged,
    config,
    context,
    expected,
    graph_for,
    make_directory,
)
from tests.integration.test_m365_sync import run as run_once


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


def run(engine: Engine, tmp_path: Path, run_id: str, waits: list[float] | None = None, **cfg: Any) -> Any:
    sleep = waits.append if waits is not None else (lambda _s: None)
    ctx = context(engine, tmp_path, config(teams=True, **cfg), run_id)
    return run_target(ctx, "microsoft365", sleep=sleep)


def teams_of(fake: FakeGraph) -> dict[str, str]:
    """externalId → team id, for every class with a team."""
    return {cls["externalId"]: cid for cid, cls in fake.state.classes.items() if cid in fake.state.teams}


def test_every_class_gets_one_team_and_a_rerun_sends_nothing(
    directory: Engine, fake: FakeGraph, tmp_path: Path
) -> None:
    first = run(directory, tmp_path, "r1")
    assert_converged(directory, fake)
    classes = len(expected(directory))
    assert first["teams_created"] == classes == len(fake.state.teams) and first["teams_pending"] == 0
    assert first["changes"]["teams"] == classes and first["failed"] == 0
    for team_id in fake.state.teams:
        assert team_id in fake.state.classes and fake.state.owners[team_id], "made from an owned class"
    posts = [s for m, p, s in fake.inner_requests if m == "POST" and p.endswith("/teams")]
    assert posts == [202] * classes, "one request per team, none repeated"

    fake.reset_counters()
    second = run(directory, tmp_path, "r2")
    assert second["writes"] == fake.counters["writes"] == 0 and second["changes"]["teams"] == 0


def test_teams_for_classes_made_before_the_setting_was_turned_on(
    directory: Engine, fake: FakeGraph, tmp_path: Path
) -> None:
    run_once(directory, tmp_path, config(), "r1")
    assert not fake.state.teams
    fake.reset_counters()
    later = run(directory, tmp_path, "r2")
    assert later["teams_created"] == len(expected(directory)) == len(fake.state.teams)
    assert later["writes"] == later["teams_created"], "only the teams are new"


def test_a_group_too_new_for_a_team_is_tried_again_after_a_pause(
    directory: Engine, fake: FakeGraph, tmp_path: Path
) -> None:
    fake.team_not_ready_attempts = 1
    waits: list[float] = []
    summary = run(directory, tmp_path, "r1", waits)
    assert summary["teams_created"] == len(expected(directory)) and summary["teams_pending"] == 0
    assert TEAM_WAIT_S in waits and summary["failed"] == 0


def test_a_team_still_not_possible_waits_for_the_next_run(
    directory: Engine, fake: FakeGraph, tmp_path: Path
) -> None:
    fake.team_not_ready_attempts = TEAM_ROUNDS
    first = run(directory, tmp_path, "r1")
    classes = len(expected(directory))
    assert first["teams_pending"] == classes and first["teams_created"] == 0 and first["failed"] == 0
    assert not fake.state.teams
    again = run(directory, tmp_path, "r2")
    assert again["teams_created"] == classes == len(fake.state.teams) and again["teams_pending"] == 0


def test_an_existing_team_counts_as_made(directory: Engine, fake: FakeGraph, tmp_path: Path) -> None:
    run_once(directory, tmp_path, config(), "r1")
    some = list(fake.state.classes)[:3]
    for cid in some:  # a teacher made these teams by hand
        body = {
            "template@odata.bind": "https://graph.microsoft.com/v1.0/teamsTemplates('educationClass')",
            "group@odata.bind": f"https://graph.microsoft.com/v1.0/groups('{cid}')",
        }
        status, _, _ = fake.handle("POST", "/v1.0/teams", json.dumps(body).encode())
        assert status == 202
    summary = run(directory, tmp_path, "r2")
    assert summary["teams_created"] == len(expected(directory)) == len(fake.state.teams)
    assert summary["failed"] == 0
    conflicts = [s for m, p, s in fake.inner_requests if m == "POST" and p.endswith("/teams") and s == 409]
    assert len(conflicts) == len(some)


class Killed(Exception):
    """The worker dies (the first wait after the fake's outage begins)."""


def _killed(_seconds: float) -> None:
    raise Killed


def test_a_crash_while_teams_are_made_then_a_rerun_converges_without_asking_twice(
    directory: Engine, fake: FakeGraph, tmp_path: Path
) -> None:
    run_once(directory, tmp_path, config(), "r1")
    fake.fail_after_writes = fake.counters["writes"] + 5  # five teams in, then an outage
    with pytest.raises(Killed):
        run_target(context(directory, tmp_path, config(teams=True), "r2"), "microsoft365", sleep=_killed)
    assert 0 < len(fake.state.teams) < len(expected(directory))
    fake.fail_after_writes = None
    summary = run(directory, tmp_path, "r3")
    assert_converged(directory, fake)
    assert len(teams_of(fake)) == len(expected(directory)) and summary["failed"] == 0
    asked = [s for m, p, s in fake.inner_requests if m == "POST" and p.endswith("/teams") and s in (202, 409)]
    assert len(asked) == len(fake.state.teams), "no team asked for twice"


def test_a_team_deleted_by_hand_is_made_again_at_the_drift_check(
    directory: Engine, fake: FakeGraph, tmp_path: Path
) -> None:
    run(directory, tmp_path, "r1")
    assert run(directory, tmp_path, "r1b")["drift_checked"], "the first check, finding nothing"
    cid = next(iter(fake.state.teams))
    del fake.state.teams[cid]  # deleted in Teams (or its background build failed)
    assert run(directory, tmp_path, "r2")["writes"] == 0, "no drift check due: delta only"
    ctx = context(directory, tmp_path, config(teams=True), "r3")
    summary = run_target(ctx, "microsoft365", sleep=lambda _s: None, force_drift_check=True)
    assert summary["drift"]["drift_teams_missing"] == 1
    assert summary["teams_created"] == summary["writes"] == 1 and cid in fake.state.teams
    fake.reset_counters()
    ctx = context(directory, tmp_path, config(teams=True), "r4")
    again = run_target(ctx, "microsoft365", sleep=lambda _s: None, force_drift_check=True)
    assert again["drift"]["drift_teams_missing"] == 0 and again["writes"] == 0
