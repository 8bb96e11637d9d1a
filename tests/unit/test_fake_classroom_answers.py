"""The emulator answers as Classroom's reference pages say (issue 22): 403 for a missing profile, 409
for the owner added as a teacher, FAILED_PRECONDITION for a suspended student, and Google's documented
per-user / per-project per-minute quotas on a moving window."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mis_sync.fakes.classroom import FakeClassroom, running_fake_classroom
from mis_sync.fakes.classroom_quota import ClassroomQuota, MovingWindow
from tests.unit.test_fake_classroom import OWNER, error_of, new_course, run_batch, services


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeClassroom]:
    with running_fake_classroom(seed=2) as server:
        server.add_user("admin@school.example", "Site", "Admin", is_admin=True)
        server.add_user(OWNER, "Tara", "Owner")
        yield server


def test_missing_or_foreign_profile_is_permission_denied(fake: FakeClassroom) -> None:
    classroom, _ = services(fake)
    fake.add_user("guest@partner.example", "Guest", "Teacher")
    profiles = classroom.userProfiles()
    assert profiles.get(userId=OWNER).execute()["emailAddress"] == OWNER
    for missing in ("nobody@school.example", "guest@partner.example", "123456"):
        status, google, message = error_of(profiles.get(userId=missing))
        assert (status, google) == (403, "PERMISSION_DENIED") and "@" not in message
    fake.classroom.foreign_profiles_visible = True
    assert profiles.get(userId="guest@partner.example").execute()["id"]


def test_owner_as_teacher_conflicts_and_suspended_student_is_a_precondition(fake: FakeClassroom) -> None:
    classroom, _ = services(fake)
    course = new_course(classroom, "d:7A")
    status, google, _ = error_of(
        classroom.courses().teachers().create(courseId="d:7A", body={"userId": OWNER})
    )
    assert (status, google) == (409, "ALREADY_EXISTS"), "courses.create made the owner a teacher already"
    fake.add_user("away@school.example", "Away", "Pupil", suspended=True)
    add = classroom.courses().students().create(courseId=course["id"], body={"userId": "away@school.example"})
    status, google, message = error_of(add)
    assert (status, google) == (400, "FAILED_PRECONDITION") and not message.startswith("@")


def test_per_user_quota_refuses_calls_over_the_limit_on_a_moving_window(fake: FakeClassroom) -> None:
    clock = Clock()
    fake.quota = ClassroomQuota(per_user=5, per_project=100, clock=clock)
    classroom, _ = services(fake)
    answers = run_batch(fake, [(str(i), classroom.userProfiles().get(userId=OWNER)) for i in range(8)])
    refused = [e for _, e in answers.values() if e is not None]
    assert len(refused) == 3, "every call inside a batch counts"
    status, google, message = error_of(classroom.userProfiles().get(userId=OWNER))
    assert (status, google) == (429, "RESOURCE_EXHAUSTED") and "per minute per user" in message
    assert fake.counters["quota_refusals"] == 4 and fake.quota.user.peak == 5
    clock.now += 30
    assert error_of(classroom.userProfiles().get(userId=OWNER))[0] == 429, "still the same minute"
    clock.now += 30.001
    assert classroom.userProfiles().get(userId=OWNER).execute()["id"], "a moving window, not a fixed one"
    fake.quota = None
    assert classroom.userProfiles().get(userId=OWNER).execute()["id"]


def test_quota_error_looks_like_googles() -> None:
    clock = Clock()
    quota = ClassroomQuota(per_user=1, per_project=10, clock=clock)
    assert quota.admit() is None
    error = quota.admit()
    assert error is not None
    body: dict[str, Any] = error.body()["error"]
    assert body["code"] == 429 and body["status"] == "RESOURCE_EXHAUSTED"
    assert body["errors"][0]["reason"] == "rateLimitExceeded"
    assert body["details"][0]["reason"] == "RATE_LIMIT_EXCEEDED"
    assert "classroom.googleapis.com" in body["message"]


def test_per_project_quota_is_shared_by_every_school_on_one_service_account() -> None:
    clock = Clock()
    project = MovingWindow(6)
    school_a = ClassroomQuota(per_user=5, project=project, clock=clock)
    school_b = ClassroomQuota(per_user=5, project=project, clock=clock)
    assert [school_a.admit() for _ in range(4)] == [None] * 4
    assert [school_b.admit() for _ in range(2)] == [None] * 2
    refused = school_b.admit()
    assert refused is not None and "'Queries per minute'" in refused.message, "the project's limit"
    assert school_b.user.used(clock.now) == 2, "a refused call uses no quota by default"
    harsh = ClassroomQuota(per_user=1, per_project=10, clock=clock, count_refused=True)
    harsh.admit()
    harsh.admit()
    assert harsh.user.used(clock.now) == 2, "count_refused: a refused call still counts"
