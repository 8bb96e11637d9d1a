"""The OneRoster service on PostgreSQL, and ``misync apps`` / ``serve-oneroster`` on the command line."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from mis_sync.cli import build_parser, main
from mis_sync.directory.db import make_engine
from mis_sync.directory.schema import Membership, OneRosterApp, User
from mis_sync.oneroster.query import parse_filter
from mis_sync.oneroster.server import create_app
from tests.integration.oneroster_support import fill_directory, reference, register


@pytest.mark.postgres
def test_the_service_on_postgresql(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    fill_directory(engine)
    client = register(
        engine, TestClient(create_app(engine)), field_groups=["names", "username", "email", "contacts"]
    )
    users = client.crawl("/users", "users", limit=1000)
    with engine.connect() as c:
        assert {int(u["sourcedId"][4:]) for u in users} == {i for (i,) in c.execute(select(User.id))}
        stamped = c.execute(select(Membership.added_at).limit(1)).scalar_one()
    assert stamped is not None  # the database stamps memberships (enrollment dateLastModified)
    enrollments = client.crawl("/enrollments", "enrollments", limit=5000)
    assert all(e["dateLastModified"].endswith("Z") for e in enrollments)
    ids = [e["sourcedId"] for e in enrollments]
    assert ids == sorted(ids)  # zero-padded ids: text order is the database's key order
    for query in ("role='student' AND givenName~'a'", "familyName>='M' OR status!='active'"):
        for sort, descending in ((None, False), ("familyName", True)):
            params: dict[str, Any] = {"filter": query, "orderBy": "desc" if descending else "asc"}
            if sort:
                params["sort"] = sort
            got = [u["sourcedId"] for u in client.crawl("/users", "users", limit=1000, **params)]
            expected = reference(users, parse_filter(query), sort, descending)
            if (
                sort
            ):  # PostgreSQL sorts text by its collation; compare the sets and the tie-free order loosely
                assert sorted(got) == sorted(expected)
            else:
                assert got == expected
    assert client.get("/users", filter="dateLastModified>'not a date'").status_code == 400
    _read_only_role_serves(engine, postgres_url, len(users))
    engine.dispose()


def _read_only_role_serves(engine: Any, url: str, user_count: int) -> None:
    """Production runs the service as a role that may only SELECT: it must need nothing more."""
    import uuid

    role = f"oneroster_ro_{uuid.uuid4().hex[:8]}"
    with engine.begin() as c:
        c.execute(text(f"CREATE ROLE {role} LOGIN"))
        c.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"))
    read_only = make_engine(url.replace("postgres@", f"{role}@", 1))
    try:
        with read_only.begin() as c, pytest.raises(Exception, match="permission denied"):
            c.execute(text("DELETE FROM directory_users"))
        client = register(engine, TestClient(create_app(read_only)))
        assert len(client.crawl("/users", "users", limit=5000)) == user_count - _parents(engine)
        assert client.crawl("/enrollments", "enrollments", limit=5000)
    finally:
        read_only.dispose()
        with engine.begin() as c:
            c.execute(text(f"DROP OWNED BY {role}"))
            c.execute(text(f"DROP ROLE {role}"))


def _parents(engine: Any) -> int:
    with engine.connect() as c:
        return len(c.execute(select(User.id).where(User.role == "parent")).all())


def test_apps_commands(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["apps", "add", "Reading app", "--schools", "north-school", "--directory-url", sqlite_url]) == 0
    )
    out = capsys.readouterr().out
    assert "note: north-school has no synced data" in out  # an empty directory: a typo is visible
    client_id = out.split("client_id ")[1].split()[0]
    secret = out.split("client_secret ")[1].split()[0]
    engine = make_engine(sqlite_url)
    with engine.connect() as c:
        stored = c.execute(select(OneRosterApp.secret_hash)).scalar_one()
        dump = "\n".join(str(row) for row in c.execute(text("select * from directory_oneroster_apps")))
    assert stored.startswith("scrypt$") and secret not in dump
    assert main(["apps", "list", "--directory-url", sqlite_url]) == 0
    listing = capsys.readouterr().out
    assert client_id in listing and "north-school" in listing and secret not in listing
    assert "contacts" not in listing and "demographics" not in listing  # off by default
    assert (
        main(
            [
                "apps",
                "add",
                "Trust app",
                "--trust",
                "--grant",
                "contacts",
                "--deny",
                "email",
                "--scopes",
                "roster.readonly",
                "--directory-url",
                sqlite_url,
            ]
        )
        == 0
    )
    capsys.readouterr()
    main(["apps", "list", "--directory-url", sqlite_url])
    trust_line = next(line for line in capsys.readouterr().out.splitlines() if "Trust app" in line)
    assert "trust (all schools)" in trust_line and "contacts" in trust_line and "email" not in trust_line
    assert main(["apps", "revoke", client_id, "--directory-url", sqlite_url]) == 0
    assert main(["apps", "revoke", client_id, "--directory-url", sqlite_url]) == 1
    assert main(["apps", "add", "x", "--directory-url", sqlite_url]) == 2  # neither --trust nor --schools
    assert (
        main(["apps", "add", "x", "--trust", "--scopes", "gradebook.readonly", "--directory-url", sqlite_url])
        == 2
    )


def test_serve_oneroster_is_a_command() -> None:
    args = build_parser().parse_args(["serve-oneroster", "--directory-url", "sqlite://", "--port", "9999"])
    assert args.func.__name__ == "cmd_serve" and args.port == 9999


SPEC_PATHS = {
    # OneRoster 1.2 Rostering REST binding read endpoints this service offers (docs/oneroster-api.md
    # lists those it does not: demographics, agents, resources).
    *(f"/{c}" for c in ("academicSessions", "classes", "courses", "enrollments", "gradingPeriods", "orgs")),
    *(f"/{c}" for c in ("schools", "students", "teachers", "terms", "users")),
    *(
        f"/{c}/{{sourcedId}}"
        for c in ("academicSessions", "classes", "courses", "enrollments", "gradingPeriods")
    ),
    *(f"/{c}/{{sourcedId}}" for c in ("orgs", "schools", "students", "teachers", "terms", "users")),
    "/classes/{sourcedId}/students",
    "/classes/{sourcedId}/teachers",
    "/courses/{sourcedId}/classes",
    "/schools/{sourcedId}/classes",
    "/schools/{sourcedId}/courses",
    "/schools/{sourcedId}/enrollments",
    "/schools/{sourcedId}/students",
    "/schools/{sourcedId}/teachers",
    "/schools/{sourcedId}/terms",
    "/schools/{schoolSourcedId}/classes/{classSourcedId}/enrollments",
    "/schools/{schoolSourcedId}/classes/{classSourcedId}/students",
    "/schools/{schoolSourcedId}/classes/{classSourcedId}/teachers",
    "/students/{sourcedId}/classes",
    "/teachers/{sourcedId}/classes",
    "/terms/{sourcedId}/classes",
    "/terms/{sourcedId}/gradingPeriods",
    "/users/{sourcedId}/classes",
}


def test_openapi_document_lists_the_spec_paths_read_only() -> None:
    from mis_sync.oneroster import BASE_PATH

    document = create_app(make_engine("sqlite://")).openapi()
    paths = {
        p.removeprefix(BASE_PATH): ops for p, ops in document["paths"].items() if p.startswith(BASE_PATH)
    }
    assert set(paths) == SPEC_PATHS
    assert all(set(operations) == {"get"} for operations in paths.values())
    assert "/oauth/token" in document["paths"]


def test_oneroster_migration_goes_down_and_up(sqlite_url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from mis_sync.directory.db import alembic_config, migrate

    engine = make_engine(sqlite_url)
    migrate(engine)

    def shape() -> tuple[bool, bool]:
        inspector = inspect(engine)
        columns = {c["name"] for c in inspector.get_columns("directory_memberships")}
        return "directory_oneroster_apps" in inspector.get_table_names(), "added_at" in columns

    assert shape() == (True, True)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008")  # the revision before 0009_oneroster
    assert shape() == (False, False)
    migrate(engine)
    assert shape() == (True, True)
    assert {i["name"] for i in inspect(engine).get_indexes("directory_memberships")} == {
        "ix_memberships_user"
    }
