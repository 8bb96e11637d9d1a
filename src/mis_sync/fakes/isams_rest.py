"""Local fake of the iSAMS REST API for one school — a LOCAL EMULATOR for tests and demos, never a
stand-in for validating behaviour against a real iSAMS instance.

Usage::

    with running_fake_isams_rest(extract) as fake:
        conn = ConnectionInfo(conn_id="isams", login=fake.client_id, password=fake.client_secret,
                              extra={"base_url": fake.base_url})
        IsamsRestConnector(conn, {}).extract()

Serves ``POST /auth/connect/token`` (form ``client_id``, ``client_secret``,
``grant_type=client_credentials``, ``scope=restapi`` → a one-hour Bearer token [S]; see
``fakes.oauth_tokens``) and, with ``Authorization: Bearer``: paged ``/api/students``,
``/api/humanresources/employees`` and ``/api/teaching/sets`` (``page`` / ``pageSize``, default
``page_size``; ``{count, page, pageSize, totalCount, totalPages, <key>}`` [S]); whole lists
``/api/school/yeargroups``, ``/api/school/forms``, ``/api/teaching/subjects``; per set
``/api/teaching/sets/{id}/setList`` and per pupil ``/api/students/{schoolId}/contacts``. Shapes:
``generator.shapes.isams_rest``. Faults (``fakes.http_fake.Faults``) are keyed by the last path segment
(``students``, ``employees``, ``sets``, ``setList``, ``contacts``…).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pandas as pd

from mis_sync.fakes.http_fake import FakeApiServer, Request, Response, running
from mis_sync.fakes.oauth_tokens import TokenEndpoint, TokenIssuer
from mis_sync.generator.shapes.isams_rest import render_isams_rest
from mis_sync.model import Extract

TOKEN_PATH = "/auth/connect/token"
PAGED = {
    "/api/students": "students",
    "/api/humanresources/employees": "employees",
    "/api/teaching/sets": "sets",
}
LISTS = {
    "/api/school/yeargroups": "yearGroups",
    "/api/school/forms": "forms",
    "/api/teaching/subjects": "subjects",
}


class FakeIsamsRest(TokenEndpoint, FakeApiServer):
    token_path = TOKEN_PATH
    thread_name = "fake-isams-rest"

    def __init__(
        self,
        extract: Extract | None = None,
        *,
        client_id: str = "mis-sync-isams",
        client_secret: str = "fake-isams-client-secret",
        page_size: int = 100,
        max_page_size: int = 1000,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.tokens = TokenIssuer(client_id, client_secret, scope="restapi")
        self.page_size, self.max_page_size = page_size, max_page_size
        self.data: dict[str, Any] = {}
        if extract is not None:
            self.publish(extract)

    def publish(self, extract: Extract, at: datetime | pd.Timestamp | None = None) -> None:
        when = pd.Timestamp(at if at is not None else extract.snapshot_at).tz_convert("UTC").to_pydatetime()
        with self._lock:
            self.data = render_isams_rest(extract)
            self.now = when.replace(microsecond=0)

    def route(self, request: Request) -> Response:
        if request.path == TOKEN_PATH:
            reply = self.tokens.issue(request, refuse=self.faults.unauthorized)
            if reply[0] != 200:
                self.counters["auth_failures"] += 1
            return reply
        if request.method != "GET" or not request.path.startswith("/api/"):
            raise LookupError(request.path)
        if self.faults.unauthorized or not self.tokens.bearer_ok(request):
            self.counters["auth_failures"] += 1
            return self.error(401, "Unauthorized")
        endpoint = self.endpoint_of(request)
        if endpoint in self.faults.forbidden:
            self.counters["forbidden"] += 1
            return self.error(403, "The client is not permitted to use this endpoint.")
        path = request.path.rstrip("/")
        if path in PAGED:
            return self._page(request, endpoint, PAGED[path], list(self.data[PAGED[path]].values()))
        if path in LISTS:
            rows = self.page_records(endpoint, 1, list(self.data[LISTS[path]].values()))
            return self.json_response({LISTS[path]: rows}, endpoint=endpoint, page=1)
        parts = path.split("/")
        if len(parts) == 6 and path.startswith("/api/teaching/sets/") and parts[-1] == "setList":
            if parts[4] not in self.data["setLists"]:
                raise LookupError(parts[4])
            rows = self.page_records(endpoint, 1, self.data["setLists"][parts[4]])
            return self.json_response({"students": rows}, endpoint=endpoint, page=1)
        if len(parts) == 5 and path.startswith("/api/students/") and parts[-1] == "contacts":
            if parts[3] not in self.data["students"]:
                raise LookupError(parts[3])
            rows = self.page_records(endpoint, 1, self.data["contacts"].get(parts[3], []))
            return self.json_response({"contacts": rows}, endpoint=endpoint, page=1)
        raise LookupError(path)

    def _page(self, request: Request, endpoint: str, key: str, rows: list[dict[str, Any]]) -> Response:
        page = int(request.query.get("page", 1))
        size = min(int(request.query.get("pageSize", self.page_size)), self.max_page_size)
        if page < 1 or size < 1:
            raise ValueError("page and pageSize must be positive")
        chunk = self.page_records(endpoint, page, rows[(page - 1) * size : page * size])
        body = {
            "count": len(chunk),
            "page": page,
            "pageSize": size,
            "totalCount": len(rows),
            "totalPages": max(1, -(-len(rows) // size)),
            key: chunk,
        }
        return self.json_response(body, endpoint=endpoint, page=page)


@contextlib.contextmanager
def running_fake_isams_rest(extract: Extract | None = None, **options: Any) -> Iterator[FakeIsamsRest]:
    """Start a :class:`FakeIsamsRest` serving ``extract`` on 127.0.0.1 with an ephemeral port."""
    with running(FakeIsamsRest(extract, **options)) as fake:
        yield fake
