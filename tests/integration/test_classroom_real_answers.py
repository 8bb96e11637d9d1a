"""Google Classroom as real Classroom answers (issue 22), against the local emulator through
google-api-python-client: users without a profile (403), users of another domain (invited, never looked
up), suspended accounts (pending, not failed), rosters that will not read (that course skipped, the read
resumed from its failed page), follow-up calls paced like every other call, and a first sync under
Google's quotas with no call refused."""

# ruff: noqa: F811  (the shared fixtures are imported from test_classroom_sync)
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

from mis_sync.directory.schema import Group, Membership, User
from mis_sync.fakes import FakeClassroom, running_fake_classroom
from mis_sync.fakes.classroom_quota import ClassroomQuota
from mis_sync.fakes.classroom_schema import GoogleError
from mis_sync.targets.engine import Engine
from mis_sync.targets.stages import run_target
from tests.integration.test_classroom_sync import (  # noqa: F401
    DOMAIN,
    TARGET,
    assert_converged,
    config,
    connect,
    context,
    directory,
    expected,
    fake,
    run,
    school,
)


def profile_reads(fake: FakeClassroom, email: str) -> int:
    return sum(1 for m, p, _s in fake.inner_requests if p == f"/v1/userProfiles/{email}")


def a_pupil(engine: Engine) -> tuple[int, str]:
    """The pupil in the most classes: (directory id, email)."""
    counts: dict[str, int] = {}
    for students, _teachers in expected(engine).values():
        for email in students:
            counts[email] = counts.get(email, 0) + 1
    email = max(sorted(counts), key=counts.__getitem__)
    with engine.connect() as conn:
        user_id = conn.execute(select(User.id).where(User.username == email.split("@")[0])).scalar_one()
    return int(user_id), email


def test_a_user_without_a_profile_is_listed_once_and_looked_up_again_only_when_the_directory_changes(
    directory: Engine, fake: FakeClassroom, tmp_path: Path
) -> None:
    user_id, email = a_pupil(directory)
    record = fake.state.user_by_email(email)
    assert record is not None
    del fake.state.users[record["id"]]  # no Workspace account: userProfiles.get answers 403
    first = run(directory, tmp_path, config(), "r1")
    assert first["unresolved_users"] == first["unresolved_new"] == 1 and first["failed"] == 0
    listed = json.loads(
        (tmp_path / "runs" / "r1" / "targets-google_classroom" / "unresolved-users.json").read_text()
    )
    assert listed == {"first_seen_this_run": [email]}
    assert email not in json.dumps(first), "no address in the summary"
    checked = run(directory, tmp_path, config(), "r2")
    assert checked["drift_checked"] and checked["unresolved_users"] == 1, "the weekly check asks again"
    assert checked["unresolved_new"] == 0, "known already: not listed again"
    assert not (tmp_path / "runs" / "r2" / "targets-google_classroom" / "unresolved-users.json").exists()
    fake.reset_counters()
    quiet = run(directory, tmp_path, config(), "r3")
    assert quiet["unresolved_users"] == 1 and quiet["unresolved_new"] == 0 and quiet["failed"] == 0
    assert profile_reads(fake, email) == 0, "not looked up again: the directory says nothing new"
    fake.state.users[record["id"]] = record  # the account now exists ...
    assert run(directory, tmp_path, config(), "r3b")["unresolved_users"] == 1, "... but nobody said so"
    with directory.begin() as conn:  # the directory's record changes (e.g. the MIS corrected the name)
        conn.execute(update(User).where(User.id == user_id).values(first_name="Corrected"))
    fourth = run(directory, tmp_path, config(), "r4")
    assert fourth["unresolved_users"] == 0 and fourth["failed"] == 0 and fourth["writes"] > 0
    assert_converged(directory, fake)


def test_a_teacher_from_another_domain_is_invited_without_reading_the_profile(
    directory: Engine, fake: FakeClassroom, tmp_path: Path
) -> None:
    """Classroom refuses direct adds across domains, and the admin may not read the profile (the
    emulator answers 403): the invitation goes by email, once; once accepted it is no manual change."""
    with directory.begin() as conn:
        teacher_id = conn.execute(
            select(Membership.user_id).where(Membership.role == "teacher").limit(1)
        ).scalar_one()
        old = conn.execute(select(User.username).where(User.id == teacher_id)).scalar_one()
        conn.execute(update(User).where(User.id == teacher_id).values(username=f"{old}@partner.example"))
    guest_email = f"{old}@partner.example"
    guest = fake.add_user(guest_email, "Guest", "Teacher")
    summary = run(directory, tmp_path, config(), "r1")
    assert summary["failed"] == summary["unresolved_users"] == 0
    assert profile_reads(fake, guest_email) == 0, "invited by email, never looked up"
    invited = [i for i in fake.state.invitations.values() if i["userId"] == guest]
    assert invited and {i["role"] for i in invited} == {"TEACHER"}
    assert not any(guest in fake.state.teachers[cid] for cid in fake.state.courses), "invited, not added"
    assert run(directory, tmp_path, config(), "r2")["writes"] == 0
    again = run(directory, tmp_path, config(), "r3", force_drift_check=True)
    assert again["writes"] == 0 and again["drift"]["drift_missing"] == 0, "pending, not removed by hand"
    accepted = invited[0]
    fake.handle("POST", f"/v1/invitations/{accepted['id']}:accept")
    assert guest in fake.state.teachers[accepted["courseId"]]
    later = run(directory, tmp_path, config(), "r4", force_drift_check=True)
    assert later["drift"]["drift_extra"] == 0 and later["writes"] == 0, "the invitation named the id"
    assert guest in fake.state.teachers[accepted["courseId"]]


def test_a_suspended_pupil_is_pending_not_failed_and_joins_once_active(
    directory: Engine, fake: FakeClassroom, tmp_path: Path
) -> None:
    user_id, email = a_pupil(directory)
    with directory.begin() as conn:  # in three classes (a small primary has one class per pupil)
        mine = set(conn.execute(select(Membership.group_id).where(Membership.user_id == user_id)).scalars())
        courses = select(Group.id).where(
            Group.id.not_in(mine), Group.status == "active", Group.kind.in_(["registration", "teaching"])
        )
        others = conn.execute(courses.limit(2)).scalars().all()
        conn.execute(
            insert(Membership), [{"group_id": g, "user_id": user_id, "role": "member"} for g in others]
        )
    user = fake.state.user_by_email(email)
    assert user is not None
    user["suspended"] = True
    classes = sum(email in students for students, _ in expected(directory).values())
    assert classes > 1
    first = run(directory, tmp_path, config(), "r1")
    assert first["failed"] == 0 and first["pending"] == classes
    fake.reset_counters()
    second = run(directory, tmp_path, config(), "r2")
    assert second["failed"] == 0 and second["pending"] == classes
    tries = [p for m, p, s in fake.inner_requests if m == "POST" and p.endswith("/students")]
    assert len(tries) == 1, "one probe a night, not one call per class"
    user["suspended"] = False
    third = run(directory, tmp_path, config(), "r3")
    assert third["pending"] == 0 and third["failed"] == 0 and third["writes"] == classes
    assert_converged(directory, fake)
    assert run(directory, tmp_path, config(), "r4")["writes"] == 0


def failing_reads(fake: FakeClassroom, broken: str, *, times: int | None = None) -> list[Any]:
    """Make roster reads of course ``broken`` answer 503 (``times`` times, or always); returns the
    page tokens asked for, in order."""
    real = fake.classroom.handle
    asked: list[Any] = []
    left = [times]

    def handle(method: str, parts: list[str], query: Any, body: Any) -> Any:
        if method == "GET" and parts[:2] == ["courses", broken] and parts[2:] == ["students"]:
            token = (query.get("pageToken") or [None])[0]
            asked.append(token)
            if token is not None and (left[0] is None or left[0] > 0):
                left[0] = None if left[0] is None else left[0] - 1
                raise GoogleError(503, "UNAVAILABLE", "Injected fault 503.")
            if left[0] is None and times is None:
                raise GoogleError(503, "UNAVAILABLE", "Injected fault 503.")
        return real(method, parts, query, body)

    fake.classroom.handle = handle  # type: ignore[method-assign]
    return asked


def test_a_roster_that_will_not_read_skips_that_course_only(
    directory: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_fake_classroom(seed=5, page_size=4) as server:
        connect(monkeypatch, server, directory)
        run(directory, tmp_path, config(), "r1")
        full = [cid for cid in server.state.courses if len(server.state.students[cid]) > 8]
        broken, other = full[0], full[1]
        strangers = [server.add_user(f"stranger{i}@{DOMAIN}", "Test", "Stranger") for i in range(2)]
        server.state.students[broken].append(strangers[0])
        server.state.students[other].append(strangers[1])
        failing_reads(server, broken)
        summary = run(directory, tmp_path, config(), "r2", force_drift_check=True)
        assert summary["drift"]["drift_unread"] == 1 and summary["drift"]["drift_extra"] == 1
        assert strangers[1] not in server.state.students[other], "the other courses were checked"
        assert strangers[0] in server.state.students[broken], "the unread one was left as it was"


def test_a_failed_page_is_asked_for_again_not_page_one(
    directory: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_fake_classroom(seed=5, page_size=4) as server:
        connect(monkeypatch, server, directory)
        run(directory, tmp_path, config(), "r1")
        broken = next(cid for cid in server.state.courses if len(server.state.students[cid]) > 8)
        asked = failing_reads(server, broken, times=1)
        summary = run(directory, tmp_path, config(), "r2", force_drift_check=True)
        assert summary["drift"]["drift_unread"] == summary["drift"]["drift_extra"] == 0
        assert asked[0] is None and asked.count(None) == 1, "page 1 read once"
        assert asked[1] == asked[2] and len(asked) == len(set(asked)) + 1, "the failed page, again"
        assert summary["writes"] == 0


def test_first_sync_under_googles_quotas_has_no_call_refused(
    directory: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Google's moving-window quota on a virtual clock (scaled down so a small school meets it), the
    engine's pacing on the same clock: follow-up pages and course checks are paced too."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    quota = ClassroomQuota(per_user=200, per_project=400, clock=lambda: now[0])
    with running_fake_classroom(seed=7, page_size=4, quota=quota) as server:
        connect(monkeypatch, server, directory)
        aliases = list(expected(directory))
        server.add_course("Made earlier", f"it.admin@{DOMAIN}", alias=aliases[0])  # → a 409 and a look-up
        cfg = config(requests_per_minute=100)
        paced: list[int] = []
        real_pace = Engine._pace

        def pace(self: Engine, calls: int) -> None:
            paced.append(calls)
            real_pace(self, calls)

        monkeypatch.setattr(Engine, "_pace", pace)
        ctx = context(directory, tmp_path, cfg, "r1")
        first = run_target(ctx, TARGET, sleep=sleep, clock=lambda: now[0])
        checked = run_target(
            context(directory, tmp_path, cfg, "r2"), TARGET, sleep=sleep, clock=lambda: now[0],
            force_drift_check=True,
        )  # fmt: skip
        assert server.counters["quota_refusals"] == 0 and quota.user.peak <= 200
        assert first["failed"] == checked["failed"] == 0 and checked["drift"]["drift_extra"] == 0
        assert sum(paced) == server.counters["inner_requests"], "every call paced, follow-ups included"
        assert any(p == "/v1/courses/" + aliases[0] for m, p, s in server.inner_requests), "a checked 409"
        assert_converged(directory, server)
