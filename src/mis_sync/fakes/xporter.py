"""Local fake of Groupcall Xporter on Demand for one school — a LOCAL EMULATOR for tests and demos.

Usage::

    with running_fake_xporter(extract) as fake:    # any canonical Extract, e.g. generate_school(...)
        conn = ConnectionInfo(conn_id="xod", login=fake.relying_party, password=fake.secret,
                              extra={"base_url": fake.base_url + "/api/v1", "token_url": fake.token_url,
                                     "estab": fake.estab})
        XporterConnector(conn, {}).extract()
        fake.publish(next_extract)                 # the school changed: changesets follow
        fake.token_uses = 3                        # a token then expires after three requests

Serves ``POST /idaas/sts/STS/GetToken`` (JSON ``estab``, ``relyingParty``, ``password``,
``thirdpartyid`` → ``token``, ``expires``) and ``GET /api/v1/School/{estab}/{Endpoint}`` with
``Authorization: Idaas {token}`` for ``Students``, ``Staff``, ``Contacts``, ``StudentContacts`` and
``Groups?type=YearGrp|RegGrp|TeachingGrp`` (result key ``Group``). ``options=``: Students returns
on-roll pupils unless ``includeLeavers`` / ``includePreAdmissions``; Staff current staff unless
``includePrevious`` / ``includeFuture``; Groups carry ``StudentIds`` / ``StaffIds`` only with
``includeMembersIds``. Paging: ``page`` / ``pageSize`` → ``__pagination__[{PageSize, PageNumber,
PageCount, RowCount, NextPage}]``. Changesets: ``changedRows=*`` (everything) or a token from
``__changedRows__[{SnapshotDate, NextChangedRows, …}]`` (rows changed since, plus
``{ResultTable}_deleted`` with the removed rows' key fields). Faults: ``fakes.http_fake.Faults``, keyed
by the endpoint name (``Students``, ``Groups``…).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from mis_sync.fakes.http_fake import FakeApiServer, Request, Response, VersionedStore, fingerprint, running
from mis_sync.generator.shapes.xporter import TABLES, render_xporter
from mis_sync.model import Extract

API = "/api/v1/School/"
TOKEN_PATH = "/idaas/sts/STS/GetToken"
STATUS_OPTIONS = {
    "Students": ("StudentStatus", {"Leaver": "includeLeavers", "PreAdmission": "includePreAdmissions"}),
    "Staff": ("StaffStatus", {"Previous": "includePrevious", "Future": "includeFuture"}),
}


class FakeXporter(FakeApiServer):
    thread_name = "fake-xporter"

    def __init__(
        self,
        extract: Extract | None = None,
        *,
        estab: str = "8814001",
        relying_party: str = "mis-sync-tests",
        secret: str = "fake-school-secret",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.estab, self.relying_party, self.secret = estab, relying_party, secret
        self.token_uses: int | None = None
        """A token stops working after this many API requests (None: never)."""
        self._tokens: dict[str, int] = {}
        self.store = VersionedStore()
        if extract is not None:
            self.publish(extract)

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH

    def publish(self, extract: Extract, at: datetime | pd.Timestamp | None = None) -> None:
        """Serve ``extract`` from now on (a cache refresh), as of ``at`` (default: its snapshot)."""
        when = pd.Timestamp(at if at is not None else extract.snapshot_at).tz_convert("UTC").to_pydatetime()
        with self._lock:
            self.store.publish(render_xporter(extract), when)
            self.now = when.replace(microsecond=0)

    def endpoint_of(self, request: Request) -> str:
        return request.path.rstrip("/").rsplit("/", 1)[-1]

    def route(self, request: Request) -> Response:
        if request.method == "POST" and request.path == TOKEN_PATH:
            return self._token(request)
        if request.method != "GET" or not request.path.startswith(API):
            raise LookupError(request.path)
        estab, _, endpoint = request.path[len(API) :].partition("/")
        header = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = header.partition(" ")
        if self.faults.unauthorized or scheme != "Idaas" or token not in self._tokens:
            self.counters["auth_failures"] += 1
            return self.error(401, "Authorization has been denied for this request.")
        self._tokens[token] += 1
        if self.token_uses is not None and self._tokens[token] > self.token_uses:
            del self._tokens[token]
            self.counters["auth_failures"] += 1
            return self.error(401, "Token expired.")
        if estab != self.estab:
            raise LookupError("estab")
        if endpoint in self.faults.forbidden:
            self.counters["forbidden"] += 1
            return self.error(403, "The school has not granted this scope.")
        q = request.query
        table, result = (f"Groups.{q.get('type')}", "Group") if endpoint == "Groups" else (endpoint, endpoint)
        if table not in TABLES:
            raise LookupError(table)
        return self._page(request, endpoint, table, result)

    def _token(self, request: Request) -> Response:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return self.error(400, "Body is not JSON.")
        wanted = {"estab": self.estab, "relyingParty": self.relying_party, "password": self.secret}
        if self.faults.unauthorized or any(body.get(k) != v for k, v in wanted.items()):
            self.counters["auth_failures"] += 1
            return self.error(401, "Invalid credentials.")
        token = secrets.token_hex(16)
        self._tokens[token] = 0
        expires = (self.now + timedelta(hours=1)).isoformat()
        return (
            200,
            {"Content-Type": "application/json"},
            json.dumps({"token": token, "expires": expires}).encode(),
        )

    def _page(self, request: Request, endpoint: str, table: str, result: str) -> Response:
        q = request.query
        options = {o.strip() for o in q.get("options", "").split(",") if o.strip()}
        changed = q.get("changedRows")
        deleted: list[dict[str, Any]] = []
        if changed and changed != "*":
            if (
                not changed.startswith("v")
                or not changed[1:].isdigit()
                or int(changed[1:]) > self.store.version
            ):
                raise ValueError("unknown changedRows token")
            rows, removed = self.store.changed_since_version(table, int(changed[1:]))
            deleted = [{f: r[f] for f in TABLES[table]} for r in removed]
        else:
            rows = self.store.records(table)
        if endpoint in STATUS_OPTIONS:
            field, needs = STATUS_OPTIONS[endpoint]
            rows = [r for r in rows if r[field] not in needs or needs[r[field]] in options]
        if endpoint == "Groups" and "includeMembersIds" not in options:
            rows = [{k: v for k, v in r.items() if k not in ("StudentIds", "StaffIds")} for r in rows]
        page, size = int(q.get("page", 1)), int(q.get("pageSize", 1000))
        if page < 1 or size < 1:
            raise ValueError("page and pageSize must be positive")
        count = -(-len(rows) // size)
        chunk = [
            {**r, "LastUpdated": self.now.isoformat(), "RowHash": fingerprint(r)[:16]}
            for r in rows[(page - 1) * size : page * size]
        ]
        payload: dict[str, Any] = {
            result: self.page_records(endpoint, page, chunk),
            "__pagination__": [
                {
                    "PageSize": size,
                    "PageNumber": page,
                    "PageCount": count,
                    "RowCount": len(rows),
                    "NextPage": page + 1 if page < count else None,
                }
            ],
        }
        if changed:
            payload["__changedRows__"] = [
                {
                    "SnapshotDate": self.now.isoformat(),
                    "SnapshotRP": self.relying_party,
                    "PreviousChangedRows": None if changed == "*" else changed,
                    "RequestedChangedRows": changed,
                    "NextChangedRows": f"v{self.store.version}",
                    "NextUrl": None,
                }
            ]
            payload[f"{result}_deleted"] = deleted
        return self.json_response(payload, endpoint=endpoint, page=page)


@contextlib.contextmanager
def running_fake_xporter(extract: Extract | None = None, **options: Any) -> Iterator[FakeXporter]:
    """Start a :class:`FakeXporter` serving ``extract`` on 127.0.0.1 with an ephemeral port."""
    with running(FakeXporter(extract, **options)) as fake:
        yield fake
