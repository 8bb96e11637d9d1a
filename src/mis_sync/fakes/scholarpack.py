"""Local fake of ScholarPack's REST API for one school — a LOCAL EMULATOR for tests and demos, never a
stand-in for validating behaviour against the real service.

Usage::

    with running_fake_scholarpack(extract) as fake:
        conn = ConnectionInfo(conn_id="sp", login=fake.client_id, password=fake.client_secret,
                              extra={"base_url": fake.base_url + "/api/v1", "token_url": fake.token_url,
                                     "refresh_token": fake.refresh_token})
        ScholarPackConnector(conn, {}).extract()

Serves ``POST /oauth/token`` (``grant_type=refresh_token``: the refresh token the school's
authorisation-code grant produced, with the client id and secret; see ``fakes.oauth_tokens``) and
``GET /api/v1/{resource}/`` with ``Authorization: Bearer`` for the resources of
``generator.shapes.scholarpack.RESOURCES`` (mis-sources §3.5): ``page`` / ``per_page`` (default 50, at
most ``max_per_page``) and the documented envelope ``{has_next, has_prev, next_num, page, pages,
per_page, prev_num, next_uri, prev_uri, data}`` [V]. A resource whose scope is not in ``scopes``
answers 403, as do ``faults.forbidden`` ones (keyed by the resource's last path segment: ``students``,
``contacts``, ``year-groups``…).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pandas as pd

from mis_sync.fakes.http_fake import FakeApiServer, Request, Response, VersionedStore, running
from mis_sync.fakes.oauth_tokens import TokenEndpoint, TokenIssuer
from mis_sync.generator.shapes.scholarpack import RESOURCES, SCOPES, render_scholarpack
from mis_sync.model import Extract

API = "/api/v1/"
TOKEN_PATH = "/oauth/token"


class FakeScholarPack(TokenEndpoint, FakeApiServer):
    token_path = TOKEN_PATH
    thread_name = "fake-scholarpack"

    def __init__(
        self,
        extract: Extract | None = None,
        *,
        client_id: str = "mis-sync-client",
        client_secret: str = "fake-scholarpack-secret",
        refresh_token: str = "fake-scholarpack-refresh-token",
        per_page: int = 50,
        max_per_page: int = 500,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.tokens = TokenIssuer(client_id, client_secret, refresh_token=refresh_token)
        self.per_page, self.max_per_page = per_page, max_per_page
        self.scopes = set(SCOPES.values()) | {"contacts:first-party"}
        self.store = VersionedStore()
        if extract is not None:
            self.publish(extract)

    @property
    def refresh_token(self) -> str:
        return self.tokens.refresh_token or ""

    def publish(self, extract: Extract, at: datetime | pd.Timestamp | None = None) -> None:
        when = pd.Timestamp(at if at is not None else extract.snapshot_at).tz_convert("UTC").to_pydatetime()
        with self._lock:
            self.store.publish(render_scholarpack(extract), when)
            self.now = when.replace(microsecond=0)

    def endpoint_of(self, request: Request) -> str:
        return request.path.rstrip("/").rsplit("/", 1)[-1]

    def route(self, request: Request) -> Response:
        if request.path == TOKEN_PATH:
            reply = self.tokens.issue(request, refuse=self.faults.unauthorized)
            if reply[0] != 200:
                self.counters["auth_failures"] += 1
            return reply
        if request.method != "GET" or not request.path.startswith(API):
            raise LookupError(request.path)
        if self.faults.unauthorized or not self.tokens.bearer_ok(request):
            self.counters["auth_failures"] += 1
            return self.error(401, "Invalid or expired token.")
        resource = request.path[len(API) :]
        if resource not in RESOURCES:
            raise LookupError(resource)
        endpoint = self.endpoint_of(request)
        if endpoint in self.faults.forbidden or SCOPES[resource] not in self.scopes:
            self.counters["forbidden"] += 1
            return self.error(403, "The token lacks the scope this resource needs.")
        q = request.query
        page, size = int(q.get("page", 1)), min(int(q.get("per_page", self.per_page)), self.max_per_page)
        if page < 1 or size < 1:
            raise ValueError("page and per_page must be positive")
        rows = self.store.records(resource)
        pages = max(1, -(-len(rows) // size))

        def uri(number: int) -> str:
            return f"{self.base_url}{request.path}?{urlencode({**q, 'page': number})}"

        body = {
            "has_next": page < pages,
            "has_prev": page > 1,
            "next_num": page + 1 if page < pages else None,
            "prev_num": page - 1 if page > 1 else None,
            "next_uri": uri(page + 1) if page < pages else None,
            "prev_uri": uri(page - 1) if page > 1 else None,
            "page": page,
            "pages": pages,
            "per_page": size,
            "data": self.page_records(endpoint, page, rows[(page - 1) * size : page * size]),
        }
        return self.json_response(body, endpoint=endpoint, page=page)


@contextlib.contextmanager
def running_fake_scholarpack(extract: Extract | None = None, **options: Any) -> Iterator[FakeScholarPack]:
    """Start a :class:`FakeScholarPack` serving ``extract`` on 127.0.0.1 with an ephemeral port."""
    with running(FakeScholarPack(extract, **options)) as fake:
        yield fake
