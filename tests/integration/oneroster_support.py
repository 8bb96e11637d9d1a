"""Shared by the OneRoster API tests: a directory filled from generated schools, a plain OAuth client
that follows ``Link`` headers, and a small reference implementation of filters and sorting."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from mis_sync.directory.db import make_engine
from mis_sync.generator import generate_school
from mis_sync.oneroster import BASE_PATH
from mis_sync.oneroster.apps import add_app
from mis_sync.oneroster.query import Filter, Predicate
from mis_sync.oneroster.server import create_app
from tests.helpers import demo_config, sync, with_table

AS_OF = dt.date(2026, 1, 12)
NORTH, SOUTH = "north-school", "south-school"


def fill_directory(engine: Engine) -> dict[str, Any]:
    """Two schools: a secondary with parent accounts, synced twice (a teaching group gone the second
    time, so its class is archived), and a small primary."""
    from mis_sync.directory.db import migrate

    migrate(engine)
    base = demo_config()
    north = base.model_copy(
        update={"id": NORTH, "accounts": base.accounts.model_copy(update={"invite_parents": True})}
    )
    south = base.model_copy(update={"id": SOUTH})
    north_extract = generate_school("secondary", 3, AS_OF, establishment_id=NORTH)
    sync(engine, north, north_extract, "run-1")
    sync(engine, south, generate_school("small-primary", 7, AS_OF, establishment_id=SOUTH), "run-1")
    groups = north_extract.tables["groups"]
    gone = groups[groups["kind"] == "teaching"]["mis_id"].iloc[0]
    memberships = north_extract.tables["memberships"]
    later = with_table(north_extract, "groups", groups[groups["mis_id"] != gone])
    later = with_table(later, "memberships", memberships[memberships["group_id"] != gone], hours_later=0)
    sync(engine, north, later, "run-2")
    return {"archived_group_mis_id": gone}


class Client:
    """A plain OAuth 2.0 client of the service: token by client credentials, then GETs."""

    def __init__(self, http: TestClient, client_id: str, secret: str, scope: str | None = None) -> None:
        self.http = http
        data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        if scope:
            data["scope"] = scope
        answer = http.post("/oauth/token", data=data)
        assert answer.status_code == 200, answer.text
        self.headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def get(self, path: str, **params: Any) -> Any:
        return self.http.get(BASE_PATH + path, params=params, headers=self.headers)

    def crawl(self, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
        """Every record of a collection, following ``rel="next"`` until there is none."""
        answer = self.get(path, **params)
        records: list[dict[str, Any]] = []
        while True:
            assert answer.status_code == 200, answer.text
            records += answer.json()[key]
            following = re.search(r'<([^>]+)>; rel="next"', answer.headers["Link"])
            if following is None:
                break
            answer = self.http.get(following.group(1), headers=self.headers)
        assert len(records) == int(answer.headers["X-Total-Count"])
        return records


def register(engine: Engine, http: TestClient, **kwargs: Any) -> Client:
    kwargs.setdefault("schools", None)
    kwargs.setdefault("scopes", ["roster.readonly"])
    app, secret = add_app(engine, "test app", **kwargs)
    return Client(http, app.client_id, secret)


# ----------------------------------------------------------------------------- reference implementation

USER_VALUES = {
    "sourcedId": lambda u: u["sourcedId"],
    "status": lambda u: u["status"],
    "dateLastModified": lambda u: u["dateLastModified"],
    "username": lambda u: u.get("username"),
    "givenName": lambda u: u.get("givenName"),
    "familyName": lambda u: u.get("familyName"),
    "email": lambda u: u.get("email"),
    "role": lambda u: u["roles"][0]["role"],
    "enabledUser": lambda u: u["enabledUser"],
}


def _matches(record: dict[str, Any], node: Filter) -> bool:
    if not isinstance(node, Predicate):
        results = [_matches(record, part) for part in node.parts]
        return all(results) if node.op == "AND" else any(results)
    value = USER_VALUES[node.field](record)
    wanted = node.value
    if node.field == "dateLastModified":
        value = pd.Timestamp(value)
        wanted = pd.Timestamp(wanted) if pd.Timestamp(wanted).tzinfo else pd.Timestamp(wanted, tz="UTC")
    if node.op == "=":
        return value is not None and value == wanted
    if node.op == "!=":
        return value is None or value != wanted
    if node.op == "~":
        return value is not None and wanted.lower() in value.lower()
    if value is None:
        return False
    return {">": value > wanted, ">=": value >= wanted, "<": value < wanted, "<=": value <= wanted}[node.op]


def reference(
    records: list[dict[str, Any]], node: Filter | None, sort: str | None, descending: bool
) -> list[str]:
    """The sourcedIds a filtered, sorted collection must return, computed in plain Python."""
    kept = [r for r in records if node is None or _matches(r, node)]
    field = sort or "sourcedId"

    def key(record: dict[str, Any]) -> tuple[Any, ...]:
        value = USER_VALUES[field](record)
        return (value is not None, value or "", record["sourcedId"])

    return [r["sourcedId"] for r in sorted(kept, key=key, reverse=descending)]


def pages(client: Client, path: str, key: str, limit: int, **params: Any) -> Iterator[list[dict[str, Any]]]:
    offset = 0
    while True:
        batch = client.get(path, limit=limit, offset=offset, **params).json()[key]
        yield batch
        if len(batch) < limit:
            return
        offset += limit


# ------------------------------------------------------------------- fixtures (imported by the test modules)


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, dict[str, Any]]:
    path = tmp_path_factory.mktemp("oneroster") / "directory.db"
    engine = make_engine(f"sqlite:///{path}")
    facts = fill_directory(engine)
    return engine, facts


@pytest.fixture(scope="module")
def http(directory: tuple[Engine, dict[str, Any]]) -> TestClient:
    return TestClient(create_app(directory[0]))


@pytest.fixture(scope="module")
def trust_app(directory: tuple[Engine, dict[str, Any]], http: TestClient) -> Client:
    return register(
        directory[0], http, field_groups=["names", "username", "email", "identifiers", "contacts"]
    )


@pytest.fixture(scope="module")
def all_users(trust_app: Client) -> list[dict[str, Any]]:
    return trust_app.crawl("/users", "users", limit=500)
