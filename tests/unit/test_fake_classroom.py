"""Tests of the local fake Google Classroom + Directory server (mis_sync.fakes.classroom), driven through
the real google-api-python-client (static discovery, custom endpoint, bare httplib2 = no auth)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httplib2
import pytest
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from mis_sync.fakes.classroom import FakeClassroom, running_fake_classroom

OWNER = "t.owner@school.example"


@pytest.fixture
def fake() -> Iterator[FakeClassroom]:
    with running_fake_classroom(seed=1) as server:
        server.add_user("admin@school.example", "Site", "Admin", is_admin=True)
        server.add_user(OWNER, "Tara", "Owner")
        yield server


def services(fake: FakeClassroom) -> tuple[Any, Any]:
    opts = {"http": httplib2.Http(timeout=5), "static_discovery": True, "client_options": fake.client_options}
    return build("classroom", "v1", **opts), build("admin", "directory_v1", **opts)


@pytest.fixture
def classroom(fake: FakeClassroom) -> Any:
    return services(fake)[0]


@pytest.fixture
def directory(fake: FakeClassroom) -> Any:
    return services(fake)[1]


def error_of(call: Any) -> tuple[int, str, str]:
    """(HTTP status, Google status, message) of a call that must fail."""
    with pytest.raises(HttpError) as info:
        call.execute()
    err = json.loads(info.value.content)["error"]
    assert err["code"] == info.value.status_code
    return info.value.status_code, err["status"], err["message"]


def new_course(classroom: Any, alias: str, **extra: Any) -> dict[str, Any]:
    body = {"id": alias, "name": alias[2:], "ownerId": OWNER, **extra}
    return classroom.courses().create(body=body).execute()


def run_batch(fake: FakeClassroom, requests: list[tuple[str, Any]]) -> dict[str, tuple[Any, Any]]:
    results: dict[str, tuple[Any, Any]] = {}

    def callback(request_id: str, response: Any, exception: Any) -> None:
        results[request_id] = (response, exception)

    batch = BatchHttpRequest(callback=callback, batch_uri=fake.batch_uri)
    for request_id, request in requests:
        batch.add(request, request_id=request_id)
    batch.execute()
    return results


def seed_pupils(fake: FakeClassroom, n: int, prefix: str = "p") -> list[str]:
    return [fake.add_user(f"{prefix}{i}@school.example", "Pupil", f"Number{i}") for i in range(n)]


# ---- courses and aliases ---------------------------------------------------------------------------------
def test_alias_create_conflict_and_get_by_alias(fake: FakeClassroom, classroom: Any) -> None:
    course = new_course(classroom, "d:T1-6A", enrollmentCode="ignored", creationTime="2000-01-01T00:00:00Z")
    owner_id = fake.state.user_by_email(OWNER)["id"]
    assert course["ownerId"] == owner_id and course["courseState"] == "PROVISIONED"
    assert course["enrollmentCode"] != "ignored" and course["creationTime"] != "2000-01-01T00:00:00Z"
    assert fake.state.teachers[course["id"]] == [owner_id]
    assert error_of(classroom.courses().create(body={"id": "d:T1-6A", "name": "x", "ownerId": OWNER})) == (
        409, "ALREADY_EXISTS", "Requested entity already exists",
    )  # fmt: skip
    assert classroom.courses().get(id="d:T1-6A").execute()["id"] == course["id"]
    assert ("GET", "/v1/courses/d:T1-6A", 200) in fake.requests  # sent as d%3AT1-6A
    aliases = classroom.courses().aliases()
    assert aliases.create(courseId=course["id"], body={"alias": "p:6A"}).execute() == {"alias": "p:6A"}
    assert error_of(aliases.create(courseId="p:6A", body={"alias": "d:T1-6A"}))[:2] == (409, "ALREADY_EXISTS")
    assert error_of(aliases.create(courseId="p:6A", body={"alias": "6A"}))[:2] == (400, "INVALID_ARGUMENT")
    listed = aliases.list(courseId="p:6A").execute()["aliases"]
    assert [a["alias"] for a in listed] == ["d:T1-6A", "p:6A"]
    assert aliases.delete(courseId=course["id"], alias="p:6A").execute() == {}
    assert error_of(aliases.delete(courseId=course["id"], alias="p:6A"))[:2] == (404, "NOT_FOUND")
    assert error_of(classroom.courses().get(id="d:unknown"))[:2] == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "6A", "ownerId": OWNER, "colour": "blue"}, "INVALID_ARGUMENT"),
        ({"name": "6A"}, "INVALID_ARGUMENT"),
        ({"name": "", "ownerId": OWNER}, "INVALID_ARGUMENT"),
        ({"name": "x" * 751, "ownerId": OWNER}, "INVALID_ARGUMENT"),
        ({"name": "6A", "ownerId": OWNER, "id": "12345"}, "INVALID_ARGUMENT"),
        ({"name": "6A", "ownerId": OWNER, "courseState": "ARCHIVED"}, "INVALID_ARGUMENT"),
        ({"name": "6A", "ownerId": OWNER, "courseState": "OPEN"}, "INVALID_ARGUMENT"),
        ({"name": "See https://x.example", "ownerId": OWNER}, "FAILED_PRECONDITION"),
        ({"name": "6A", "ownerId": "nobody@school.example"}, "NOT_FOUND"),
    ],
)
def test_invalid_course_bodies_rejected(fake: FakeClassroom, classroom: Any, body: dict, status: str) -> None:
    code, got, message = error_of(classroom.courses().create(body=body))
    assert got == status and code in (400, 404)
    if "colour" in body:
        assert message == (
            "Invalid JSON payload received. Unknown name \"colour\" at 'course': Cannot find field."
        )
    assert "@school.example" not in message
    assert fake.state.courses == {}


def test_course_owner_me_and_suspended_owner(fake: FakeClassroom, classroom: Any) -> None:
    mine = classroom.courses().create(body={"name": "Mine", "ownerId": "me"}).execute()
    assert mine["ownerId"] == fake.state.me
    fake.add_user("gone@school.example", "Gone", "Away", suspended=True)
    code, status, message = error_of(
        classroom.courses().create(body={"name": "X", "ownerId": "gone@school.example"})
    )
    assert (code, status) == (400, "FAILED_PRECONDITION") and message.startswith("@InactiveCourseOwner ")


def test_patch_with_update_mask(fake: FakeClassroom, classroom: Any) -> None:
    cid = new_course(classroom, "d:T1-7B", section="Old", room="R1")["id"]
    courses = classroom.courses()
    patched = courses.patch(
        id="d:T1-7B", updateMask="name,section,courseState,room",
        body={"name": "7B 2026", "section": "New", "courseState": "ACTIVE"},
    ).execute()  # fmt: skip
    assert (patched["name"], patched["section"], patched["courseState"]) == ("7B 2026", "New", "ACTIVE")
    assert "room" not in patched  # in the mask but not in the body: cleared
    assert error_of(courses.patch(id=cid, body={"name": "x"}))[:2] == (400, "INVALID_ARGUMENT")
    assert error_of(courses.patch(id=cid, updateMask="enrollmentCode", body={}))[:2] == (
        400,
        "INVALID_ARGUMENT",
    )
    assert error_of(courses.patch(id=cid, updateMask="name", body={"name": "x", "extra": 1}))[0] == 400
    other = fake.add_user("other@school.example", "Other", "Teacher")
    _, status, message = error_of(courses.patch(id=cid, updateMask="ownerId", body={"ownerId": other}))
    assert status == "FAILED_PRECONDITION" and message.startswith("@IneligibleOwner ")
    classroom.courses().teachers().create(courseId=cid, body={"userId": other}).execute()
    assert courses.patch(id=cid, updateMask="owner_id", body={"ownerId": other}).execute()["ownerId"] == other
    courses.patch(id=cid, updateMask="courseState", body={"courseState": "ARCHIVED"}).execute()
    _, status, message = error_of(courses.patch(id=cid, updateMask="name", body={"name": "y"}))
    assert status == "FAILED_PRECONDITION" and message.startswith("@CourseNotModifiable ")
    unarchived = courses.patch(
        id=cid, updateMask="name,courseState", body={"name": "y", "courseState": "ACTIVE"}
    ).execute()
    assert unarchived["courseState"] == "ACTIVE"


def test_paging_with_list_next_and_state_filter(fake: FakeClassroom, classroom: Any) -> None:
    for i in range(5):
        new_course(classroom, f"d:C{i}", courseState="ACTIVE" if i % 2 else "PROVISIONED")
    request = classroom.courses().list(pageSize=2)
    seen, pages = [], 0
    while request is not None:
        response = request.execute()
        seen += [c["name"] for c in response["courses"]]
        request = classroom.courses().list_next(request, response)
        pages += 1
    assert (pages, seen) == (3, ["C4", "C3", "C2", "C1", "C0"])  # newest first
    active = classroom.courses().list(courseStates=["ACTIVE"]).execute()["courses"]
    assert [c["name"] for c in active] == ["C3", "C1"]
    assert classroom.courses().list(courseStates=["ARCHIVED"]).execute() == {}  # empty lists are omitted
    first = classroom.courses().list(pageSize=2).execute()
    mismatch = classroom.courses().list(pageSize=2, pageToken=first["nextPageToken"], courseStates=["ACTIVE"])
    assert error_of(mismatch)[:2] == (400, "INVALID_ARGUMENT")
    assert error_of(classroom.courses().list(teacherId="nobody@school.example"))[:2] == (404, "NOT_FOUND")


# ---- rosters ----------------------------------------------------------------------------------------------
def test_students_and_teachers_add_remove(fake: FakeClassroom, classroom: Any) -> None:
    cid = new_course(classroom, "d:T1-8C")["id"]
    pupil, teacher = seed_pupils(fake, 1)[0], fake.add_user("co@school.example", "Co", "Teacher")
    students, teachers = classroom.courses().students(), classroom.courses().teachers()
    added = students.create(courseId="d:T1-8C", body={"userId": "p0@school.example"}).execute()
    assert (added["courseId"], added["userId"], added["profile"]["emailAddress"]) == (
        cid, pupil, "p0@school.example",
    )  # fmt: skip
    assert error_of(students.create(courseId=cid, body={"userId": pupil}))[:2] == (409, "ALREADY_EXISTS")
    assert error_of(teachers.create(courseId=cid, body={"userId": pupil}))[:2] == (409, "ALREADY_EXISTS")
    teachers.create(courseId=cid, body={"userId": "co@school.example"}).execute()
    assert error_of(students.create(courseId=cid, body={"userId": teacher}))[:2] == (409, "ALREADY_EXISTS")
    assert error_of(students.create(courseId=cid, body={"userId": "x@school.example"}))[:2] == (
        404,
        "NOT_FOUND",
    )
    assert error_of(students.create(courseId=cid, body={"userId": pupil, "grade": 7}))[0] == 400
    owner = fake.state.courses[cid]["ownerId"]
    code, status, message = error_of(teachers.delete(courseId=cid, userId=owner))
    assert (code, status) == (400, "FAILED_PRECONDITION") and message.startswith("@CannotRemoveCourseOwner ")
    listed = teachers.list(courseId=cid).execute()["teachers"]
    assert [t["userId"] for t in listed] == [owner, teacher]
    assert students.get(courseId=cid, userId="p0@school.example").execute()["userId"] == pupil
    assert students.delete(courseId=cid, userId=pupil).execute() == {}
    assert error_of(students.delete(courseId=cid, userId=pupil))[:2] == (404, "NOT_FOUND")
    assert teachers.delete(courseId=cid, userId="co@school.example").execute() == {}
    assert fake.state.students[cid] == [] and fake.state.teachers[cid] == [owner]
    assert classroom.courses().list(studentId=pupil).execute() == {}
    fake.add_user("off@school.example", "Off", "Line", suspended=True)
    assert error_of(students.create(courseId=cid, body={"userId": "off@school.example"}))[1] == (
        "FAILED_PRECONDITION"
    )


def test_member_and_teacher_caps(fake: FakeClassroom, classroom: Any) -> None:
    cid = new_course(classroom, "d:BIG")["id"]
    fake.state.students[cid].extend(seed_pupils(fake, 998, prefix="bulk"))  # owner + 998 = 999 members
    last, extra = seed_pupils(fake, 2)
    classroom.courses().students().create(courseId=cid, body={"userId": last}).execute()
    code, status, message = error_of(
        classroom.courses().students().create(courseId=cid, body={"userId": extra})
    )
    assert (code, status) == (400, "FAILED_PRECONDITION")
    assert message.startswith("@CourseMemberLimitReached ")
    small = new_course(classroom, "d:SMALL")["id"]
    teachers = seed_pupils(fake, 20, prefix="t")
    for uid in teachers[:19]:  # the owner is the 20th
        classroom.courses().teachers().create(courseId=small, body={"userId": uid}).execute()
    _, _, message = error_of(
        classroom.courses().teachers().create(courseId=small, body={"userId": teachers[19]})
    )
    assert message.startswith("@CourseTeacherLimitReached ")
    page = classroom.courses().teachers().list(courseId=small).execute()
    assert len(page["teachers"]) == 20 and "nextPageToken" not in page
    page = classroom.courses().students().list(courseId=cid).execute()
    assert len(page["students"]) == 30 and "nextPageToken" in page  # documented default page size


def test_invitations(fake: FakeClassroom, classroom: Any) -> None:
    cid = new_course(classroom, "d:INV")["id"]
    uid = seed_pupils(fake, 1)[0]
    invitations = classroom.invitations()
    inv = invitations.create(body={"courseId": "d:INV", "userId": uid, "role": "STUDENT"}).execute()
    assert inv["courseId"] == cid and inv["userId"] == uid and inv["id"]
    again = invitations.create(body={"courseId": cid, "userId": "p0@school.example", "role": "TEACHER"})
    assert error_of(again)[:2] == (409, "ALREADY_EXISTS")
    assert error_of(invitations.list())[:2] == (400, "INVALID_ARGUMENT")
    assert [i["id"] for i in invitations.list(courseId=cid).execute()["invitations"]] == [inv["id"]]
    assert invitations.accept(id=inv["id"]).execute() == {}
    assert fake.state.students[cid] == [uid] and fake.state.invitations == {}
    owner = fake.state.courses[cid]["ownerId"]
    assert error_of(invitations.create(body={"courseId": cid, "userId": owner, "role": "TEACHER"}))[1] == (
        "FAILED_PRECONDITION"
    )
    inv = invitations.create(body={"courseId": cid, "userId": "admin@school.example", "role": "TEACHER"})
    iid = inv.execute()["id"]
    assert invitations.delete(id=iid).execute() == {}
    assert error_of(invitations.get(id=iid))[:2] == (404, "NOT_FOUND")


# ---- batches ----------------------------------------------------------------------------------------------
def test_batch_of_50_ok_and_51_rejected(fake: FakeClassroom, classroom: Any) -> None:
    cid = new_course(classroom, "d:BATCH")["id"]
    pupils = seed_pupils(fake, 51)
    add = classroom.courses().students().create
    results = run_batch(
        fake, [(f"stu-{i}", add(courseId="d:BATCH", body={"userId": u})) for i, u in enumerate(pupils[:50])]
    )
    assert all(exc is None for _, exc in results.values()) and len(results) == 50
    assert results["stu-7"][0]["userId"] == pupils[7]  # matched by Content-ID although shuffled
    assert sorted(fake.state.students[cid]) == sorted(pupils[:50])
    with pytest.raises(HttpError) as info:
        run_batch(fake, [(f"x{i}", classroom.courses().get(id=cid)) for i in range(51)])
    assert info.value.status_code == 400
    assert fake.counters["batches"] == 2 and fake.counters["inner_requests"] == 50
    assert ("POST", "/v1/courses/d:BATCH/students", 200) in fake.inner_requests


def test_inner_429_in_batch_with_other_parts_succeeding() -> None:
    with running_fake_classroom(seed=5, throttle_rate=0.3) as fake:
        fake.add_user(OWNER, "Tara", "Owner")
        classroom, _ = services(fake)
        fake.throttle_rate = 0.0
        cid = new_course(classroom, "d:THR")["id"]
        pupils = seed_pupils(fake, 20)
        fake.throttle_rate = 0.3
        add = classroom.courses().students().create
        results: dict[str, tuple[Any, Any]] | None = None
        while results is None and fake.counters["batches"] < 10:  # the outer request may be throttled too
            with contextlib.suppress(HttpError):
                results = run_batch(fake, [(u, add(courseId=cid, body={"userId": u})) for u in pupils])
        assert {s for _, path, s in fake.requests if path == "/batch"} <= {200, 429}
        assert results is not None
        throttled = [u for u, (_, exc) in results.items() if exc is not None]
        assert 0 < len(throttled) < 20
        for uid in throttled:
            exc = results[uid][1]
            assert exc.status_code == 429
            assert json.loads(exc.content)["error"]["status"] == "RESOURCE_EXHAUSTED"
        assert sorted(fake.state.students[cid]) == sorted(set(pupils) - set(throttled))


def test_batch_rejects_mixed_apis_and_plain_bodies(
    fake: FakeClassroom, classroom: Any, directory: Any
) -> None:
    with pytest.raises(HttpError) as info:
        run_batch(fake, [("a", classroom.courses().list()), ("b", directory.users().get(userKey=OWNER))])
    assert info.value.status_code == 400
    status, _, payload = fake.handle("POST", "/batch", b"{}", "application/json")
    assert status == 400 and json.loads(payload)["error"]["status"] == "INVALID_ARGUMENT"
    ok = run_batch(fake, [("only", directory.users().get(userKey=OWNER))])
    assert ok["only"][0]["primaryEmail"] == OWNER


# ---- faults -----------------------------------------------------------------------------------------------
def test_fail_after_writes(fake: FakeClassroom, classroom: Any) -> None:
    fake.fail_after_writes = 2
    statuses = []
    for i in range(4):
        try:
            new_course(classroom, f"d:W{i}")
            statuses.append(200)
        except HttpError as exc:
            statuses.append(exc.status_code)
    assert statuses == [200, 200, 503, 503]
    assert classroom.courses().list().execute()["courses"][0]["name"] == "W1"  # reads still work
    assert fake.counters["writes"] == 2 and fake.counters["faults"] == 2
    assert fake.counters["write_attempts"] == 2 and fake.counters["write_requests"] == 4
    fake.fail_after_writes = None
    fake.reset_counters()
    new_course(classroom, "d:W2")
    assert fake.counters == {**dict.fromkeys(fake.counters, 0), "requests": 1, "write_requests": 1,
                             "writes": 1, "write_attempts": 1}  # fmt: skip


def faulty_session(seed: int) -> tuple[list[tuple[str, str, int]], dict[str, int]]:
    with running_fake_classroom(seed=seed, throttle_rate=0.2, fault_rate=0.2) as fake:
        fake.add_user(OWNER, "Tara", "Owner")
        classroom, directory = services(fake)
        for i in range(15):
            for call in (
                classroom.courses().create(body={"id": f"d:F{i}", "name": f"F{i}", "ownerId": OWNER}),
                directory.users().get(userKey=OWNER),
            ):
                with contextlib.suppress(HttpError):
                    call.execute()
        return list(fake.requests), dict(fake.counters)


def test_fault_injection_is_deterministic_per_seed() -> None:
    first, second, other = faulty_session(7), faulty_session(7), faulty_session(8)
    assert first == second
    assert first[0] != other[0]
    statuses = {s for _, _, s in first[0]}
    assert {200, 429} <= statuses and statuses & {500, 503}
    assert first[1]["throttles"] > 0 and first[1]["faults"] > 0


def test_in_process_handle_without_socket() -> None:
    fake = FakeClassroom(seed=2)
    fake.add_user(OWNER, "Tara", "Owner")
    body = json.dumps({"id": "d:Q", "name": "Q", "ownerId": OWNER}).encode()
    status, headers, payload = fake.handle("POST", "/v1/courses?alt=json", body)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(payload)["name"] == "Q"
    assert fake.handle("GET", "/v2/unknown")[0] == 404
    assert fake.add_course("Seeded", OWNER, alias="d:S") in fake.state.courses
