"""Local fake of a OneRoster 1.1 REST provider for one school — a LOCAL EMULATOR for tests and demos,
never a stand-in for validating behaviour against a real provider.

Usage::

    with running_fake_oneroster(extract) as fake:
        conn = ConnectionInfo(conn_id="or", login=fake.client_id, password=fake.client_secret,
                              extra={"base_url": fake.base_url + "/ims/oneroster/v1p1",
                                     "token_url": fake.token_url})
        OneRosterRestConnector(conn, {}).extract()
        fake.publish(next_extract)                 # changed records get a new dateLastModified

Serves ``POST /oauth/token`` (client credentials; see ``fakes.oauth_tokens``) and, with ``Authorization:
Bearer`` (an issued token, or ``static_token``), ``GET /ims/oneroster/v1p1/{collection}`` for the
collections of ``generator.shapes.oneroster_rest.COLLECTIONS`` (mis-sources §4.3): ``limit`` (default
100, at most ``max_limit``) / ``offset`` with ``X-Total-Count`` and a ``Link`` header (``rel="next"``,
``rel="last"``) [S], and ``filter`` (``field op 'value'`` joined by ``AND`` / ``OR``, compared as
text) [V]. Every record carries ``status`` and ``dateLastModified``: records that changed in a
``publish`` are stamped with its time minus ``sync_lag`` (the provider synced them from the MIS
before the read); records removed since are served as ``status: "tobedeleted"`` with their
deletion time [S], so ``filter=status='active'`` is the full roster and
``filter=dateLastModified>'…'`` the changes. ``GET …/{collection}/{sourcedId}`` answers one record
(``{"user": {...}}``). Faults are keyed by the collection name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pandas as pd

from mis_sync.fakes.bromcom import parse_filter
from mis_sync.fakes.http_fake import FakeApiServer, Request, Response, VersionedStore, running
from mis_sync.fakes.oauth_tokens import TokenEndpoint, TokenIssuer
from mis_sync.generator.shapes.oneroster_rest import COLLECTIONS, render_oneroster
from mis_sync.model import Extract

API = "/ims/oneroster/v1p1/"
TOKEN_PATH = "/oauth/token"
SINGULAR = {
    "academicSessions": "academicSession",
    "users": "user",
    "demographics": "demographics",
    "classes": "class",
    "enrollments": "enrollment",
}


def stamp(when: datetime) -> str:
    return f"{when:%Y-%m-%dT%H:%M:%S}.000Z"


class FakeOneRoster(TokenEndpoint, FakeApiServer):
    token_path = TOKEN_PATH
    thread_name = "fake-oneroster"

    def __init__(
        self,
        extract: Extract | None = None,
        *,
        client_id: str = "mis-sync-oneroster",
        client_secret: str = "fake-oneroster-secret",
        static_token: str | None = None,
        limit: int = 100,
        max_limit: int = 1000,
        sync_lag: timedelta = timedelta(hours=1),
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.tokens = TokenIssuer(client_id, client_secret)
        self.static_token, self.limit, self.max_limit, self.sync_lag = (
            static_token,
            limit,
            max_limit,
            sync_lag,
        )
        self.store = VersionedStore()
        self._cache: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
        if extract is not None:
            self.publish(extract)

    def publish(self, extract: Extract, at: datetime | pd.Timestamp | None = None) -> None:
        when = pd.Timestamp(at if at is not None else extract.snapshot_at).tz_convert("UTC").to_pydatetime()
        with self._lock:
            self.store.publish(render_oneroster(extract), when - self.sync_lag)
            self.now = when.replace(microsecond=0)

    def _authorised(self, request: Request) -> bool:
        header = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
        if self.static_token and header == f"Bearer {self.static_token}":
            return True
        return self.tokens.bearer_ok(request)

    def route(self, request: Request) -> Response:
        if request.path == TOKEN_PATH:
            reply = self.tokens.issue(request, refuse=self.faults.unauthorized)
            if reply[0] != 200:
                self.counters["auth_failures"] += 1
            return reply
        if request.method != "GET" or not request.path.startswith(API):
            raise LookupError(request.path)
        if self.faults.unauthorized or not self._authorised(request):
            self.counters["auth_failures"] += 1
            return self.error(401, "Unauthorized")
        collection, _, item = request.path[len(API) :].strip("/").partition("/")
        if collection not in COLLECTIONS:
            raise LookupError(collection)
        if collection in self.faults.forbidden:
            self.counters["forbidden"] += 1
            return self.error(403, "Forbidden")
        if item:  # getUser and friends: {"user": {...}}
            found = [r for r in self._filtered(collection, "") if r["sourcedId"] == item]
            if not found:
                raise LookupError(item)
            return self.json_response({SINGULAR[collection]: found[-1]}, endpoint=collection, page=1)
        rows = self._filtered(collection, request.query.get("filter", ""))
        q = request.query
        limit, offset = min(int(q.get("limit", self.limit)), self.max_limit), int(q.get("offset", 0))
        if limit < 1 or offset < 0:
            raise ValueError("limit must be positive and offset not negative")
        page = offset // limit + 1
        chunk = self.page_records(collection, page, rows[offset : offset + limit])

        def link(at: int) -> str:
            return f"<{self.base_url}{request.path}?{urlencode({**q, 'offset': at, 'limit': limit})}>"

        last = max(0, (len(rows) - 1) // limit * limit)
        links = [f'{link(offset + limit)}; rel="next"'] if offset + limit < len(rows) else []
        status, headers, body = self.json_response({collection: chunk}, endpoint=collection, page=page)
        headers = {
            **headers,
            "X-Total-Count": str(len(rows)),
            "Link": ", ".join([*links, f'{link(last)}; rel="last"']),
        }
        return status, headers, body

    def _filtered(self, collection: str, text: str) -> list[dict[str, Any]]:
        """The collection's records passing ``filter``, cached per version (pages share one list)."""
        key = (self.store.version, collection, text)
        if key not in self._cache:
            keep = parse_filter(text)
            self._cache = {k: v for k, v in self._cache.items() if k[0] == self.store.version}
            self._cache[key] = [
                r for r in self._records(collection) if keep({k.lower(): v for k, v in r.items()})
            ]
        return self._cache[key]

    def _records(self, collection: str) -> list[dict[str, Any]]:
        current = self.store.versions[-1].get(collection, {}) if self.store.versions else {}
        times = self.store.changed_at.get(collection, {})
        rows = [
            {**r, "status": "active", "dateLastModified": stamp(times[k])} for k, (_, r) in current.items()
        ]
        for kind, key, when, last in self.store.deletions:
            if kind == collection and key not in current:
                rows.append({**last, "status": "tobedeleted", "dateLastModified": stamp(when)})
        return rows


@contextlib.contextmanager
def running_fake_oneroster(extract: Extract | None = None, **options: Any) -> Iterator[FakeOneRoster]:
    """Start a :class:`FakeOneRoster` serving ``extract`` on 127.0.0.1 with an ephemeral port."""
    with running(FakeOneRoster(extract, **options)) as fake:
        yield fake
