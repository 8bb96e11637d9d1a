"""Tests of the Admin SDK Directory half of the local fake Google server (mis_sync.fakes.classroom), driven
through the real google-api-python-client; shared helpers live in ``test_fake_classroom``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mis_sync.fakes.classroom import FakeClassroom, running_fake_classroom
from tests.unit.test_fake_classroom import OWNER, error_of, services


@pytest.fixture
def fake() -> Iterator[FakeClassroom]:
    with running_fake_classroom(seed=3) as server:
        server.add_user(OWNER, "Tara", "Owner")
        yield server


@pytest.fixture
def classroom(fake: FakeClassroom) -> Any:
    return services(fake)[0]


@pytest.fixture
def directory(fake: FakeClassroom) -> Any:
    return services(fake)[1]


# ---- users --------------------------------------------------------------------------------------------
def pupil_body(email: str, **extra: Any) -> dict[str, Any]:
    return {"primaryEmail": email, "name": {"givenName": "Siân", "familyName": "O’Brien-Jones"},
            "password": "correct horse", **extra}  # fmt: skip


def test_directory_insert_get_patch_delete(fake: FakeClassroom, directory: Any) -> None:
    users = directory.users()
    ext = [{"type": "organization", "value": "MIS-1001"}]
    created = users.insert(body=pupil_body("sobrien@school.example", externalIds=ext, isAdmin=True)).execute()
    uid = created["id"]
    assert created["name"]["fullName"] == "Siân O’Brien-Jones" and created["isAdmin"] is False  # read-only
    assert "password" not in created and created["orgUnitPath"] == "/"
    code, status, message = error_of(users.insert(body=pupil_body("SOBrien@school.example")))
    assert (code, status, message) == (409, "ALREADY_EXISTS", "Entity already exists.")
    assert users.get(userKey="sobrien@school.example").execute()["id"] == uid
    assert users.get(userKey=uid).execute()["externalIds"] == ext
    fake.add_org_unit("/Pupils/Leavers")
    patched = users.patch(userKey=uid, body={"suspended": True, "orgUnitPath": "/Pupils/Leavers"}).execute()
    assert patched["suspended"] is True and patched["suspensionReason"] == "ADMIN"
    updated = users.update(userKey=uid, body={"externalIds": None, "name": {"givenName": "Sian"}}).execute()
    assert "externalIds" not in updated and updated["name"]["fullName"] == "Sian O’Brien-Jones"
    assert updated["suspended"] is True  # update has patch semantics too
    assert error_of(users.patch(userKey=uid, body={"orgUnitPath": "/Nowhere"}))[:2] == (
        400,
        "INVALID_ARGUMENT",
    )
    renamed = users.patch(userKey=uid, body={"primaryEmail": "sian.obrien@school.example"}).execute()
    assert renamed["aliases"] == ["sobrien@school.example"]
    assert users.get(userKey="sobrien@school.example").execute()["id"] == uid  # old address is an alias
    assert users.delete(userKey=uid).execute() == ""  # 204 No Content, as the real API answers
    _, _, message = error_of(users.get(userKey=uid))
    assert message == "Resource Not Found: userKey"
    assert users.undelete(userKey=uid, body={}).execute() == ""
    assert users.get(userKey=uid).execute()["primaryEmail"] == "sian.obrien@school.example"


@pytest.mark.parametrize(
    "body",
    [
        pupil_body("a@school.example", nickname="x"),
        pupil_body("a@school.example", name={"givenName": "A" * 61, "familyName": "B"}),
        pupil_body("a@school.example", name={"givenName": "A", "familyName": "<script>"}),
        pupil_body("a@school.example", name={"givenName": "A"}),
        pupil_body("a@school.example", password=None),
        pupil_body("a@school.example", password="short"),
        pupil_body("not-an-email"),
        pupil_body("a@school.example", externalIds=[{"type": "custom", "value": "1"}]),
        pupil_body("a@school.example", suspended="yes"),
    ],
)
def test_directory_invalid_inserts(fake: FakeClassroom, directory: Any, body: dict) -> None:
    code, status, message = error_of(directory.users().insert(body=body))
    assert (code, status) == (400, "INVALID_ARGUMENT")
    assert "a@school.example" not in message and "script" not in message
    assert fake.state.user_by_email("a@school.example") is None


def test_directory_list_paging_and_query(fake: FakeClassroom, directory: Any) -> None:
    for i in range(5):
        directory.users().insert(
            body=pupil_body(f"u{i}@school.example", externalIds=[{"type": "organization", "value": f"M{i}"}])
        ).execute()
    fake.add_user("staff@other.example", "Staff", "Member")
    request = directory.users().list(customer="my_customer", maxResults=3, orderBy="email")
    emails = []
    while request is not None:
        response = request.execute()
        emails += [u["primaryEmail"] for u in response["users"]]
        request = directory.users().list_next(request, response)
    assert emails == sorted(emails) and len(emails) == 7
    in_domain = directory.users().list(domain="other.example").execute()["users"]
    assert [u["primaryEmail"] for u in in_domain] == ["staff@other.example"]
    found = directory.users().list(customer="my_customer", query="externalId=M3").execute()["users"]
    assert [u["primaryEmail"] for u in found] == ["u3@school.example"]
    assert directory.users().list(customer="my_customer", query="email:zz").execute() == {
        "kind": "admin#directory#users"
    }
    assert error_of(directory.users().list())[:2] == (400, "INVALID_ARGUMENT")
    assert error_of(directory.users().list(customer="my_customer", maxResults=501))[0] == 400


def test_directory_throttling_is_retried_by_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    for status in (429, 403):
        with running_fake_classroom(directory_throttle_status=status) as fake:
            _, directory = services(fake)
            fake.add_user(OWNER, "Tara", "Owner")
            fake.throttle_next = 1
            request = directory.users().get(userKey=OWNER)
            request._sleep = lambda _seconds: None  # googleapiclient backs off up to 2 s otherwise
            assert request.execute(num_retries=1)["primaryEmail"] == OWNER
            assert [s for _, _, s in fake.requests] == [status, 200]
            assert fake.counters["throttles"] == 1


def test_personal_data_never_in_error_messages(fake: FakeClassroom, classroom: Any, directory: Any) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: directory.users().get(userKey="jane.doe@school.example"),
        lambda: (
            classroom.courses()
            .students()
            .create(courseId="d:none", body={"userId": "jane.doe@school.example"})
        ),
        lambda: directory.users().insert(body=pupil_body(OWNER)),
    ]
    for make in calls:
        _, _, message = error_of(make())
        assert "jane" not in message.lower() and OWNER not in message
