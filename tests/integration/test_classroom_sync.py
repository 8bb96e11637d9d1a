"""Google Classroom sync against the local fake Classroom, through google-api-python-client.

Mirrors ``test_m365_sync.py``: convergence (every selected group is one course, by alias, whose
students and teachers equal the directory, owned by the configured owner), a second run with zero
writes, convergence under 20 % injected 429/5xx, a crash after N writes then a rerun (no duplicate
courses or memberships), archiving at year end (never deleting), unresolved users, drift checks.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine
from upath import UPath

from mis_sync.config import Establishment
from mis_sync.connections import ConnectionInfo
from mis_sync.directory.db import make_engine, migrate
from mis_sync.directory.state import load_state
from mis_sync.fakes import FakeClassroom, running_fake_classroom
from mis_sync.generator import generate_school
from mis_sync.model import Extract
from mis_sync.pipeline import RunContext
from mis_sync.targets.classroom import course_alias
from mis_sync.targets.settings import DriftCheck, GoogleClassroomTarget, TargetsConfig
from mis_sync.targets.stages import run_target
from tests.helpers import demo_config, sync

DOMAIN = "school.example"
CONN_ID = "google_classroom_fake"
OWNER = "it.admin"
TARGET = "google_classroom"


def config(**google: Any) -> Establishment:
    target = GoogleClassroomTarget(enabled=True, connection_id=CONN_ID, domain=DOMAIN, owner=OWNER, **google)
    return demo_config(targets=TargetsConfig(google_classroom=target))


@pytest.fixture(scope="module")
def school() -> Any:
    return generate_school("small-primary", seed=7, as_of=dt.date(2026, 10, 1))


@pytest.fixture
def directory(tmp_path: Path, school: Any) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'directory.db'}")
    migrate(engine)
    sync(engine, config(), school, "mis-run-1")
    return engine


def connect(monkeypatch: pytest.MonkeyPatch, server: FakeClassroom, directory: Engine) -> None:
    """The Connection the DAG would use, pointed at the emulator (api_endpoint: no credentials)."""
    conn = {"conn_type": "generic", "extra": {"api_endpoint": server.base_url}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    server.add_user(f"{OWNER}@{DOMAIN}", "It", "Admin", is_admin=True)
    for username in load_state(directory, "demo-academy").users["username"]:
        server.add_user(f"{username}@{DOMAIN}", "Test", "User")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, directory: Engine) -> Iterator[FakeClassroom]:
    with running_fake_classroom(seed=3) as server:
        connect(monkeypatch, server, directory)
        yield server


def context(engine: Engine, tmp_path: Path, cfg: Establishment, run_id: str) -> RunContext:
    ctx = RunContext(
        establishment=cfg,
        run_id=run_id,
        folder=UPath(tmp_path / "runs" / run_id),
        source=ConnectionInfo(conn_id="unused"),
        directory_url="unused",
    )
    ctx.__dict__["engine"] = engine  # the cached_property, pointed at the test's directory
    return ctx


def run(engine: Engine, tmp_path: Path, cfg: Establishment, run_id: str, **kw: Any) -> dict[str, Any]:
    return run_target(context(engine, tmp_path, cfg, run_id), TARGET, sleep=lambda _s: None, **kw)


def expected(engine: Engine) -> dict[str, tuple[set[str], set[str]]]:
    """Course alias → (student emails, teacher emails), straight from the directory tables."""
    state = load_state(engine, "demo-academy")
    kinds = ("registration", "teaching")
    groups = state.groups[(state.groups["status"] == "active") & state.groups["kind"].isin(kinds)]
    users = state.users[state.users["status"] == "active"][["person_kind", "mis_id", "username"]]
    joined = state.memberships.merge(
        users.rename(columns={"mis_id": "person_mis_id"}), on=["person_kind", "person_mis_id"]
    )
    out = {}
    for mis_id, year in zip(groups["mis_id"], groups["academic_year"], strict=True):
        rows = joined[(joined["group_mis_id"] == mis_id) & (joined["academic_year"] == year)]
        teachers = {f"{u}@{DOMAIN}" for u in rows.loc[rows["role"] == "teacher", "username"]}
        students = {f"{u}@{DOMAIN}" for u in rows.loc[rows["role"] != "teacher", "username"]} - teachers
        alias = course_alias(f"misync:demo-academy:{mis_id}:{year}")
        out[alias] = (students, teachers | {f"{OWNER}@{DOMAIN}"})
    return out


def live(fake: FakeClassroom) -> dict[str, tuple[set[str], set[str]]]:
    email = {uid: u["primaryEmail"] for uid, u in fake.state.users.items()}
    out = {}
    for cid in fake.state.courses:
        aliases = fake.state.aliases_of(cid)
        assert len(aliases) == 1, "every course has exactly its one d: alias"
        students = [email[u] for u in fake.state.students[cid]]
        teachers = [email[u] for u in fake.state.teachers[cid]]
        assert len(students) == len(set(students)) and len(teachers) == len(set(teachers)), "duplicates"
        out[aliases[0]] = (set(students), set(teachers))
    return out


def assert_converged(engine: Engine, fake: FakeClassroom, state: str = "ACTIVE") -> None:
    want, have = expected(engine), live(fake)
    assert len(fake.state.courses) == len(have), "one course per alias"
    assert set(want) <= set(have)
    owner = fake.state.user_by_email(f"{OWNER}@{DOMAIN}")["id"]  # type: ignore[index]
    for alias, (students, teachers) in want.items():
        assert have[alias] == (students, teachers), alias
        assert not students & teachers, "nobody is both student and teacher"
        course = fake.state.course_by_alias(alias)
        assert course is not None and course["ownerId"] == owner and course["courseState"] == state


def test_initial_sync_converges_and_second_run_sends_no_writes(
    directory: Engine, fake: FakeClassroom, tmp_path: Path
) -> None:
    cfg = config()
    first = run(directory, tmp_path, cfg, "r1")
    assert_converged(directory, fake)
    courses = len(expected(directory))
    assert first["created"] == courses == len(fake.state.courses) > 0
    assert first["unresolved_users"] == 0 and first["failed"] == 0
    # courses.create makes the owner a teacher: no teachers.create is sent for it, nothing is refused
    owner = fake.state.user_by_email(f"{OWNER}@{DOMAIN}")["id"]  # type: ignore[index]
    assert not [p for m, p, s in fake.inner_requests if s >= 400], "no call refused"
    assert fake.counters["writes"] == first["writes"] == fake.counters["write_attempts"]
    assert all(fake.state.teachers[cid].count(owner) == 1 for cid in fake.state.courses)
    # no courses.get before a create: the alias makes the create itself idempotent
    assert not [p for m, p, s in fake.inner_requests if m == "GET" and "/courses/" in p]
    assert first["write_requests"] <= -(-first["writes"] // 50) * 1.1 + 1
    assert fake.counters["batches"] == first["requests"]
    assert not [s for m, p, s in fake.inner_requests if p.endswith("/students") and s == 409]
    course = next(iter(fake.state.courses.values()))
    assert course["section"] and "/" in course["section"], "section = the academic year"
    fake.reset_counters()
    second = run(directory, tmp_path, cfg, "r2")
    assert second["writes"] == second["write_requests"] == 0
    assert fake.counters["write_attempts"] == fake.counters["writes"] == 0


def test_converges_with_20_percent_throttling_and_faults(
    directory: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_fake_classroom(seed=11, throttle_rate=0.1, fault_rate=0.1) as server:
        connect(monkeypatch, server, directory)
        summary = run(directory, tmp_path, config(), "r1")
        assert summary["throttles"] > 0 and summary["retries"] > 0
        assert server.counters["faults"] > 0
        assert summary["failed"] == 0, "a create retried until it went through is no failure"
        assert_converged(directory, server)
        checked = run(directory, tmp_path, config(), "r1b", force_drift_check=True)
        assert checked["drift_checked"] and checked["failed"] == 0, "faulty reads do not stop the check"
        server.throttle_rate = server.fault_rate = 0.0
        assert run(directory, tmp_path, config(), "r2")["writes"] == 0


class Killed(BaseException):
    """Stands for the worker being killed: not an Exception, so nothing in the sync catches it."""


def test_crash_after_n_writes_then_rerun_converges_without_duplicates(
    directory: Engine, fake: FakeClassroom, tmp_path: Path
) -> None:
    """The fake refuses every write after 150; the first wait after that kills the run mid-flight."""
    fake.fail_after_writes = 150

    def killed(_seconds: float) -> None:
        if fake.counters["writes"] >= 150:  # earlier waits are the quota pacing
            raise Killed

    with pytest.raises(Killed):
        run_target(context(directory, tmp_path, config(), "r1"), TARGET, sleep=killed)
    assert fake.counters["writes"] == 150
    courses_before = len(fake.state.courses)
    fake.fail_after_writes = None
    run(directory, tmp_path, config(), "r2")
    assert_converged(directory, fake)
    assert len(fake.state.courses) >= courses_before
    fake.reset_counters()
    assert run(directory, tmp_path, config(), "r3")["writes"] == 0


def test_a_run_that_gives_up_reports_failures_and_the_next_run_finishes(
    directory: Engine, fake: FakeClassroom, tmp_path: Path
) -> None:
    fake.fail_after_writes = 40
    summary = run(directory, tmp_path, config(), "r1")
    assert summary["failed"] > 0 and fake.counters["writes"] == 40
    fake.fail_after_writes = None
    assert run(directory, tmp_path, config(), "r2")["failed"] == 0
    assert_converged(directory, fake)


def test_drift_check_reverts_manual_changes(directory: Engine, fake: FakeClassroom, tmp_path: Path) -> None:
    run(directory, tmp_path, config(), "r1")
    assert run(directory, tmp_path, config(), "r1b")["drift_checked"], "the first check, finding nothing"
    cid = next(c for c in fake.state.courses if fake.state.students[c])
    stranger = fake.add_user(f"stranger@{DOMAIN}", "Test", "Stranger")
    removed = fake.state.students[cid].pop(0)
    fake.state.students[cid].append(stranger)
    assert run(directory, tmp_path, config(), "r2")["writes"] == 0, "no drift check yet: delta only"
    summary = run(directory, tmp_path, config(), "r3", force_drift_check=True)
    assert summary["drift"]["drift_extra"] == 1 and summary["drift"]["drift_missing"] == 1
    assert summary["writes"] == 2
    assert stranger not in fake.state.students[cid] and removed in fake.state.students[cid]
    assert_converged(directory, fake)


def test_drift_check_adopts_manual_changes_when_configured(
    directory: Engine, fake: FakeClassroom, tmp_path: Path
) -> None:
    cfg = config(drift_check=DriftCheck(policy="adopt"))
    run(directory, tmp_path, cfg, "r1")
    cid = next(c for c in fake.state.courses if fake.state.students[c])
    co_teacher = fake.add_user(f"co.teacher@{DOMAIN}", "Test", "Teacher")
    fake.state.teachers[cid].append(co_teacher)
    summary = run(directory, tmp_path, cfg, "r2", force_drift_check=True)
    assert summary["writes"] == 0 and co_teacher in fake.state.teachers[cid]


def test_a_course_deleted_by_hand_is_made_again_by_the_drift_check(
    directory: Engine, fake: FakeClassroom, tmp_path: Path
) -> None:
    run(directory, tmp_path, config(), "r1")
    cid = next(iter(fake.state.courses))
    alias = fake.state.aliases_of(cid)[0]
    for store in (fake.state.courses, fake.state.students, fake.state.teachers):
        del store[cid]
    del fake.state.aliases[alias]
    summary = run(directory, tmp_path, config(), "r2", force_drift_check=True)
    assert summary["drift"]["drift_gone"] == 1 and summary["created"] == 1 and summary["failed"] == 0
    assert_converged(directory, fake)


def test_courses_gone_from_the_mis_are_archived_not_deleted(
    directory: Engine, fake: FakeClassroom, tmp_path: Path, school: Any
) -> None:
    run(directory, tmp_path, config(), "r1")
    groups, memberships = school.tables["groups"], school.tables["memberships"]
    gone = groups[groups["kind"] == "registration"]["mis_id"].iloc[0]
    tables = {
        **school.tables,
        "groups": groups[groups["mis_id"] != gone],
        "memberships": memberships[memberships["group_id"] != gone],
    }
    later = school.snapshot_at + pd.Timedelta(hours=1)
    sync(directory, config(), Extract(tables, later, school.source), "mis-2")
    count = len(fake.state.courses)
    summary = run(directory, tmp_path, config(), "r2")
    assert summary["changes"]["archives"] == 1 and summary["failed"] == 0
    assert len(fake.state.courses) == count, "never deleted"
    archived = [c for c in fake.state.courses.values() if c["courseState"] == "ARCHIVED"]
    assert len(archived) == 1 and fake.state.aliases_of(archived[0]["id"])[0].split("_")[2] == gone
    assert fake.state.students[archived[0]["id"]], "an archived course keeps its last roster"
    assert run(directory, tmp_path, config(), "r3")["writes"] == 0
    sync(directory, config(), Extract(school.tables, later + pd.Timedelta(hours=1), school.source), "mis-3")
    back = run(directory, tmp_path, config(), "r4")
    assert back["changes"]["updates"] == 1 and back["failed"] == 0
    assert archived[0]["courseState"] == "ACTIVE", "back in the MIS: active again"
    assert_converged(directory, fake)


def test_unresolved_users_are_reported_not_fatal(
    directory: Engine, fake: FakeClassroom, tmp_path: Path
) -> None:
    pupil = next(uid for uid, u in fake.state.users.items() if not u.get("isAdmin"))
    del fake.state.users[pupil]
    summary = run(directory, tmp_path, config(), "r1")
    assert summary["unresolved_users"] == 1 and summary["failed"] == 0
    assert summary["skipped_unresolved"] >= 1


def test_provisioned_state_and_section_room_templates(
    directory: Engine, fake: FakeClassroom, tmp_path: Path
) -> None:
    cfg = config(course_state="PROVISIONED", section="{code}", room="{year_group}")
    run(directory, tmp_path, cfg, "r1")
    assert_converged(directory, fake, state="PROVISIONED")
    assert all(c.get("section") and c["courseState"] == "PROVISIONED" for c in fake.state.courses.values())
    renamed = config(course_state="PROVISIONED", section="{code}", room="{year_group}", naming="{name} class")
    summary = run(directory, tmp_path, renamed, "r2")
    assert summary["changes"]["updates"] == len(fake.state.courses) and summary["failed"] == 0
    assert all(c["name"].endswith(" class") for c in fake.state.courses.values())


def test_mis_changes_are_sent_as_deltas(
    directory: Engine, fake: FakeClassroom, tmp_path: Path, school: Any
) -> None:
    run(directory, tmp_path, config(), "r1")
    memberships = school.tables["memberships"]
    pupils = memberships[memberships["role"] == "pupil"]
    dropped = pupils.sample(n=30, random_state=1).index
    tables = {**school.tables, "memberships": memberships.drop(index=dropped)}
    changed = Extract(tables, school.snapshot_at + pd.Timedelta(hours=1), school.source)
    sync(directory, config(), changed, "mis-run-2")
    fake.reset_counters()
    summary = run(directory, tmp_path, config(), "r2")
    assert_converged(directory, fake)
    assert 0 < summary["writes"] <= 30
    assert summary["write_requests"] <= 1


def test_rosters_read_back_over_many_pages(
    directory: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_fake_classroom(seed=5, page_size=4) as server:
        connect(monkeypatch, server, directory)
        run(directory, tmp_path, config(), "r1")
        summary = run(directory, tmp_path, config(), "r2", force_drift_check=True)
        assert summary["drift"]["drift_extra"] == summary["drift"]["drift_missing"] == 0
        assert summary["writes"] == 0 and summary["requests"] > 1
        assert_converged(directory, server)


def test_a_create_that_landed_before_is_found_by_its_alias_not_duplicated(
    directory: Engine, fake: FakeClassroom, tmp_path: Path
) -> None:
    """Creates go without a look-up: a create whose course landed earlier is answered 409
    ALREADY_EXISTS, looked up by its alias, adopted (a no-op, not a second course) and brought in line."""
    aliases = list(expected(directory))
    landed = fake.add_course("Landed earlier", f"{OWNER}@{DOMAIN}", alias=aliases[0])
    summary = run(directory, tmp_path, config(), "r1")
    assert summary["created"] == len(aliases) - 1 and summary["adopted"] == 1 and summary["failed"] == 0
    assert fake.state.course_by_alias(aliases[0])["id"] == landed  # type: ignore[index]
    assert fake.state.courses[landed]["name"] != "Landed earlier", "its fields are brought in line"
    assert len(fake.state.courses) == len(aliases), "no duplicate course"
    refused = sorted(p for m, p, s in fake.inner_requests if s == 409)
    # the adopted course's owner is not known to be ours, so its teacher add goes (and is a no-op)
    assert refused == ["/v1/courses", f"/v1/courses/{landed}/teachers"]
    lookups = [p for m, p, s in fake.inner_requests if m == "GET" and p.startswith("/v1/courses/")]
    assert lookups == [f"/v1/courses/{aliases[0]}"], "one look-up, after the 409"
    assert_converged(directory, fake)
