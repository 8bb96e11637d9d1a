"""The OneRoster 1.2 service over a directory filled from generated schools (SQLite; one PostgreSQL run).

Covers: a crawl of every collection reconciled with the directory, nested paths, tobedeleted and
change reads, paging and filters against the reference implementation (also property-based), the
spec's errors. Access control is in ``test_oneroster_access``.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from mis_sync.directory.schema import Group, Membership, User
from mis_sync.oneroster.query import parse_filter
from tests.integration import oneroster_support as support
from tests.integration.oneroster_support import NORTH, SOUTH, Client, pages, reference

# The module-scoped fixtures shared with the other OneRoster test module.
directory, http, trust_app, all_users = support.directory, support.http, support.trust_app, support.all_users

# ------------------------------------------------------------------------------------------ the crawl


def test_crawl_of_every_collection_reconciles_with_the_directory(
    directory: tuple[Engine, dict[str, Any]], trust_app: Client, all_users: list[dict[str, Any]]
) -> None:
    engine, _ = directory
    with engine.connect() as c:
        user_ids = {i for (i,) in c.execute(select(User.id))}
        group_ids = {
            i for (i,) in c.execute(select(Group.id).where(Group.kind.in_(["registration", "teaching"])))
        }
        memberships = set(
            c.execute(
                select(Membership.group_id, Membership.user_id, Membership.role).where(
                    Membership.group_id.in_(group_ids)
                )
            ).all()
        )
        parents = c.execute(select(User.id).where(User.role == "parent")).all()
    assert parents, "the fixture must hold parent accounts"
    assert {int(u["sourcedId"][4:]) for u in all_users} == user_ids
    classes = trust_app.crawl("/classes", "classes", limit=200)
    assert {int(x["sourcedId"][4:]) for x in classes} == group_ids
    enrollments = trust_app.crawl("/enrollments", "enrollments", limit=3000)
    seen = {
        (
            int(e["class"]["sourcedId"][4:]),
            int(e["user"]["sourcedId"][4:]),
            "teacher" if e["role"] == "teacher" else "member",
        )
        for e in enrollments
    }
    assert seen == memberships
    assert len({e["sourcedId"] for e in enrollments}) == len(enrollments)
    courses = {c["sourcedId"] for c in trust_app.crawl("/courses", "courses")}
    assert {x["course"]["sourcedId"] for x in classes} == courses
    terms = {t["sourcedId"] for t in trust_app.crawl("/terms", "academicSessions")}
    assert {t["sourcedId"] for x in classes for t in x["terms"]} == terms
    schools = trust_app.crawl("/schools", "orgs")
    assert sorted(s["sourcedId"] for s in schools) == [NORTH, SOUTH]
    for path, key in (
        ("/orgs", "orgs"),
        ("/academicSessions", "academicSessions"),
        ("/gradingPeriods", "academicSessions"),
    ):
        trust_app.crawl(path, key)


def test_users_map_roles_and_fields(all_users: list[dict[str, Any]]) -> None:
    roles = {u["roles"][0]["role"] for u in all_users}
    assert roles == {"student", "teacher", "aide", "guardian"}
    student = next(u for u in all_users if u["roles"][0]["role"] == "student" and u["status"] == "active")
    assert student["primaryOrg"]["type"] == "org"
    assert student["grades"] and student["userIds"][0]["type"] == "MIS"
    assert student["enabledUser"] in ("true", "false")
    assert student["dateLastModified"].endswith("Z")


def test_removed_records_are_tobedeleted_and_changes_can_be_read(
    directory: tuple[Engine, dict[str, Any]], trust_app: Client
) -> None:
    engine, facts = directory
    with engine.connect() as c:
        archived = c.execute(
            select(Group.id).where(Group.mis_id == facts["archived_group_mis_id"])
        ).scalar_one()
    one = trust_app.get(f"/classes/cls-{archived:010d}").json()["class"]
    assert one["status"] == "tobedeleted"
    changed = trust_app.crawl(
        "/classes", "classes", filter=f"dateLastModified>'{_before(one['dateLastModified'])}'"
    )
    assert f"cls-{archived:010d}" in {x["sourcedId"] for x in changed}
    assert len(changed) < int(trust_app.get("/classes", limit=1).headers["X-Total-Count"])
    enrollments = trust_app.crawl(
        "/enrollments", "enrollments", filter=f"class.sourcedId='cls-{archived:010d}'"
    )
    assert enrollments == []  # the second sync removed its memberships


def _before(stamp: str) -> str:
    import datetime as dt

    value = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")) - dt.timedelta(milliseconds=1)
    return value.isoformat().replace("+00:00", "Z")


def test_nested_collections(trust_app: Client) -> None:
    klass = next(
        x
        for x in trust_app.crawl("/classes", "classes", limit=1000)
        if x["classType"] == "scheduled" and x["status"] == "active"
    )
    class_id, school = klass["sourcedId"], klass["school"]["sourcedId"]
    enrollments = trust_app.crawl(f"/schools/{school}/classes/{class_id}/enrollments", "enrollments")
    students = {e["user"]["sourcedId"] for e in enrollments if e["role"] == "student"}
    teachers = {e["user"]["sourcedId"] for e in enrollments if e["role"] == "teacher"}
    assert students and teachers
    assert {u["sourcedId"] for u in trust_app.crawl(f"/classes/{class_id}/students", "users")} == students
    assert {u["sourcedId"] for u in trust_app.crawl(f"/classes/{class_id}/teachers", "users")} == teachers
    assert {
        u["sourcedId"] for u in trust_app.crawl(f"/schools/{school}/classes/{class_id}/students", "users")
    } == students
    student = sorted(students)[0]
    assert class_id in {x["sourcedId"] for x in trust_app.crawl(f"/students/{student}/classes", "classes")}
    teacher = sorted(teachers)[0]
    assert class_id in {x["sourcedId"] for x in trust_app.crawl(f"/teachers/{teacher}/classes", "classes")}
    assert class_id in {x["sourcedId"] for x in trust_app.crawl(f"/users/{teacher}/classes", "classes")}
    course = klass["course"]["sourcedId"]
    assert class_id in {x["sourcedId"] for x in trust_app.crawl(f"/courses/{course}/classes", "classes")}
    term = klass["terms"][0]["sourcedId"]
    assert class_id in {x["sourcedId"] for x in trust_app.crawl(f"/terms/{term}/classes", "classes")}
    assert trust_app.crawl(f"/terms/{term}/gradingPeriods", "academicSessions") == []
    school_terms = trust_app.crawl(f"/schools/{school}/terms", "academicSessions")
    assert [t["sourcedId"] for t in school_terms] == [term]
    for path, key in (("classes", "classes"), ("courses", "courses"), ("enrollments", "enrollments")):
        assert all(r["sourcedId"] for r in trust_app.crawl(f"/schools/{school}/{path}", key, limit=5000))
    school_students = trust_app.crawl(f"/schools/{school}/students", "users", limit=5000)
    assert {u["roles"][0]["role"] for u in school_students} == {"student"}
    assert {u["primaryOrg"]["sourcedId"] for u in school_students} == {school}
    school_teachers = trust_app.crawl(f"/schools/{school}/teachers", "users", limit=5000)
    assert {u["roles"][0]["role"] for u in school_teachers} == {"teacher"}
    # single objects, by the sourcedIds the collections gave
    assert trust_app.get(f"/students/{student}").json()["user"]["sourcedId"] == student
    assert trust_app.get(f"/teachers/{student}").status_code == 404
    assert trust_app.get(f"/schools/{school}").json()["org"]["sourcedId"] == school
    assert trust_app.get(f"/courses/{course}").json()["course"]["sourcedId"] == course
    assert trust_app.get(f"/terms/{term}").json()["academicSession"]["type"] == "term"
    enrollment = enrollments[0]["sourcedId"]
    assert trust_app.get(f"/enrollments/{enrollment}").json()["enrollment"]["sourcedId"] == enrollment


# ------------------------------------------------------------------------------- paging and filters


def test_pages_join_up_to_the_whole_collection(trust_app: Client, all_users: list[dict[str, Any]]) -> None:
    ids = [u["sourcedId"] for u in all_users]
    assert ids == sorted(ids)
    paged = [u["sourcedId"] for batch in pages(trust_app, "/users", "users", 137) for u in batch]
    assert paged == ids
    answer = trust_app.get("/users", limit=100, offset=200)
    assert answer.headers["X-Total-Count"] == str(len(ids))
    links = answer.headers["Link"]
    assert 'offset=300>; rel="next"' in links and 'offset=100>; rel="prev"' in links
    assert f'offset={(len(ids) - 1) // 100 * 100}>; rel="last"' in links


@pytest.mark.parametrize("descending", [False, True])
def test_deep_pages_at_any_offset_match_the_reference(
    trust_app: Client, all_users: list[dict[str, Any]], descending: bool
) -> None:
    """Deep pages start from remembered anchors (every 1,000th key): they must be exactly the rows an
    offset would give, whatever the offset, in either order, with a filter too."""
    from mis_sync.oneroster.sqlquery import ANCHOR_EVERY

    order = "desc" if descending else "asc"
    ids = reference(all_users, None, None, descending)
    students = reference(all_users, parse_filter("role='student'"), None, descending)
    assert len(ids) > 2 * ANCHOR_EVERY + 100
    for offset in (
        ANCHOR_EVERY - 1,
        ANCHOR_EVERY,
        ANCHOR_EVERY + 1,
        1537,
        2 * ANCHOR_EVERY,
        len(ids) - 3,
        len(ids) + 5,
    ):
        got = [
            u["sourcedId"]
            for u in trust_app.get("/users", limit=50, offset=offset, orderBy=order).json()["users"]
        ]
        assert got == ids[offset : offset + 50], offset
        got = trust_app.get("/users", limit=50, offset=offset, orderBy=order, filter="role='student'").json()[
            "users"
        ]
        assert [u["sourcedId"] for u in got] == students[offset : offset + 50], offset


FILTERS = [
    "status='active'",
    "role='teacher'",
    "role='student' AND enabledUser='false'",
    "givenName~'an' OR familyName~'SON'",
    "role='aide' OR role='guardian' AND status='active'",
    "familyName>='M' AND familyName<'P'",
    "email!='x' AND username~'a'",
    "sourcedId<='usr-0000000100'",
    "dateLastModified>'2000-01-01T00:00:00Z'",
    "dateLastModified<'2000-01-01'",
]


@pytest.mark.parametrize("text", FILTERS)
@pytest.mark.parametrize(("sort", "descending"), [(None, False), ("familyName", False), ("username", True)])
def test_filters_and_sorts_match_the_reference(
    trust_app: Client, all_users: list[dict[str, Any]], text: str, sort: str | None, descending: bool
) -> None:
    params = {"filter": text, "orderBy": "desc" if descending else "asc"}
    if sort:
        params["sort"] = sort
    got = [u["sourcedId"] for u in trust_app.crawl("/users", "users", limit=700, **params)]
    assert got == reference(all_users, parse_filter(text), sort, descending)


_field = st.sampled_from(["status", "givenName", "familyName", "role", "username", "enabledUser"])
_op = st.sampled_from(["=", "!=", "~", ">", "<", ">=", "<="])
_value = st.sampled_from(["active", "student", "teacher", "a", "an", "M", "true", "", "O'Neill", "zz"])


@given(st.lists(st.tuples(_field, _op, _value), min_size=1, max_size=3), st.sampled_from([" AND ", " OR "]))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_generated_filters_match_the_reference(
    trust_app: Client, all_users: list[dict[str, Any]], parts: list[tuple[str, str, str]], join: str
) -> None:
    text = join.join(f"{f}{op}'" + v.replace("'", "''") + "'" for f, op, v in parts)
    got = [u["sourcedId"] for u in trust_app.crawl("/users", "users", limit=5000, filter=text)]
    assert got == reference(all_users, parse_filter(text), None, False)


COLLECTION_PATHS = [
    ("/orgs", "orgs"),
    ("/schools", "orgs"),
    ("/academicSessions", "academicSessions"),
    ("/terms", "academicSessions"),
    ("/gradingPeriods", "academicSessions"),
    ("/courses", "courses"),
    ("/classes", "classes"),
    ("/users", "users"),
    ("/students", "users"),
    ("/teachers", "users"),
    ("/enrollments", "enrollments"),
    (f"/schools/{NORTH}/classes", "classes"),
    (f"/schools/{NORTH}/enrollments", "enrollments"),
    (f"/schools/{SOUTH}/students", "users"),
    (f"/schools/{SOUTH}/terms", "academicSessions"),
]
_names = st.sampled_from(
    [
        "sourcedId",
        "status",
        "dateLastModified",
        "title",
        "role",
        "givenName",
        "type",
        "name",
        "grades",
        "x",
        "",
    ]
)
_params = st.fixed_dictionaries(
    {},
    optional={
        "filter": st.one_of(
            st.text(max_size=40), st.builds(lambda f, v: f"{f}>='{v}'", _names, st.text(max_size=8))
        ),
        "sort": _names,
        "orderBy": st.sampled_from(["asc", "desc", "sideways"]),
        "fields": st.lists(_names, max_size=3).map(",".join),
        "limit": st.sampled_from(["1", "7", "0", "-1", "abc", "5001"]),
        "offset": st.sampled_from(["0", "3", "-2", "99999999", "x"]),
    },
)


@given(st.sampled_from(COLLECTION_PATHS), _params)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_parameters_on_any_collection_give_an_answer_or_the_specs_400(
    trust_app: Client, endpoint: tuple[str, str], params: dict[str, str]
) -> None:
    path, key = endpoint
    answer = trust_app.get(path, **params)
    assert answer.status_code in (200, 400), answer.text
    body = answer.json()
    if answer.status_code == 400:
        assert body["imsx_codeMajor"] == "failure" and body["imsx_CodeMinor"]["imsx_codeMinorField"]
    else:
        assert isinstance(body[key], list) and int(answer.headers["X-Total-Count"]) >= len(body[key])


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/users", {"filter": "nosuch='x'"}, 400, "invalid_filter_field"),
        ("/users", {"filter": "givenName='x"}, 400, "invalid_filter_field"),
        ("/users", {"filter": "dateLastModified>'yesterday'"}, 400, "invaliddata"),
        ("/users", {"filter": "dateLastModified~'2026'"}, 400, "invalid_filter_field"),
        ("/users", {"sort": "nosuch"}, 400, "invalid_sort_field"),
        ("/users", {"fields": "sourcedId,nosuch"}, 400, "invalid_selection_field"),
        ("/users", {"limit": "-3"}, 400, "invaliddata"),
        ("/users/usr-9999999999", {}, 404, "unknownobject"),
        ("/users/not-an-id", {}, 404, "unknownobject"),
        ("/classes/cls-0000000001/students", {}, 404, "unknownobject"),
        ("/schools/nowhere/classes", {}, 404, "unknownobject"),
        ("/nosuchcollection", {}, 404, "unknownobject"),
    ],
)
def test_errors_use_the_specs_payload(
    trust_app: Client, path: str, params: dict, status: int, code: str
) -> None:
    answer = trust_app.get(path, **params)
    assert answer.status_code == status
    body = answer.json()
    assert body["imsx_codeMajor"] == "failure" and body["imsx_severity"] == "error"
    assert body["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"] == code


def test_fields_selects_what_is_returned(trust_app: Client) -> None:
    users = trust_app.get("/users", fields="sourcedId,status", limit=3).json()["users"]
    assert [sorted(u) for u in users] == [["sourcedId", "status"]] * 3


def test_enrollments_written_directly_equal_the_encoded_objects(
    directory: tuple[Engine, dict[str, Any]],
) -> None:
    import datetime as dt
    from types import SimpleNamespace

    import orjson

    from mis_sync.oneroster import collections as c
    from mis_sync.oneroster import mapping as m

    with directory[0].connect() as connection:
        rows = connection.execute(c.enrollments(c.Access(None, frozenset())).limit(300)).all()
    odd = SimpleNamespace(
        **{
            "sourcedId": "enr-0000000001-0000000002-t",
            "status": "tobedeleted",
            "dateLastModified": dt.datetime(2026, 1, 2, 3, 4, 5, 678901),
            "user": "usr-0000000002",
            "class": "cls-0000000001",
            "school": 'a "quoted" \\ school/é',
            "role": "teacher",
            "primary": "false",
        }
    )
    for base in ("http://testserver/ims/oneroster/rostering/v1p2", 'http://h/"x"'):
        refs = m.Refs(base)
        expected = orjson.dumps({"enrollments": [m.enrollment(row, refs) for row in [*rows, odd]]})
        assert orjson.loads(m.encode_enrollments([*rows, odd], refs)) == orjson.loads(expected)


@pytest.mark.parametrize(
    "groups",
    [frozenset(), frozenset({"names", "username", "email", "identifiers", "contacts"}), frozenset({"email"})],
)
def test_users_written_directly_equal_the_encoded_objects(
    directory: tuple[Engine, dict[str, Any]], groups: frozenset[str]
) -> None:
    import datetime as dt
    from types import SimpleNamespace

    import orjson

    from mis_sync.oneroster import collections as c
    from mis_sync.oneroster import mapping as m

    with directory[0].connect() as connection:
        rows = connection.execute(c.users(c.Access(None, groups))).all()
    odd = SimpleNamespace(
        sourcedId="usr-0000000009",
        status="tobedeleted",
        dateLastModified=dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC),
        username=None,
        enabledUser="false",
        givenName='Zoë "Z" \\ O\'Neill\n',
        familyName=None,
        email=None,
        role="student",
        identifier="P/1",
        school='a"b',
        grade=None,
    )
    refs = m.Refs("http://testserver/ims/oneroster/rostering/v1p2")
    expected = orjson.dumps({"users": [m.user(row, refs, groups) for row in [*rows, odd]]})
    assert orjson.loads(m.encode_users([*rows, odd], refs, groups)) == orjson.loads(expected)
