"""Local fake of Bromcom's Partner REST API for one school — a LOCAL EMULATOR for tests and demos, never a
stand-in for validating behaviour against the real service.

Usage::

    with running_fake_bromcom(extract, page_size=500) as fake:
        conn = ConnectionInfo(conn_id="bromcom", login=fake.application_id, password=fake.secret,
                              extra={"base_url": fake.base_url + "/v2", "school_id": fake.school_id})
        BromcomConnector(conn, {"page_size": 500}).extract()

Serves ``GET /v2/{Entity}?schoolId=…&entityFilter=<filter>{page:N}`` (mis-sources §3.2 and the .NET
client [S]) for the entities of ``generator.shapes.bromcom.ENTITIES``: headers ``ApplicationId`` /
``ApplicationSecret`` (else 401), ``{"Success": true, "Data": [...]}``, pages of ``page_size`` rows
(100,000 in Bromcom [S]) numbered from 0 by the ``{page:N}`` suffix of ``entityFilter``. The filter
is evaluated: ``A or B``, ``A and B``, parentheses, ``isnull(Field,'')=''`` and ``Field <op> 'value'``
(``= <> < <= > >=``, compared as text, field names case-insensitive). ``faults.forbidden`` entities
answer 403 (an entity the school has not granted [S]); ``success_false`` ones ``Success: false``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pandas as pd

from mis_sync.fakes.http_fake import FakeApiServer, Request, Response, VersionedStore, running
from mis_sync.generator.shapes.bromcom import ENTITIES, render_bromcom
from mis_sync.model import Extract

ROOT = "/v2/"
PAGE = re.compile(r"\{page:(\d+)\}$")
TOKEN = re.compile(
    r"\s*(\(|\)|isnull\(\s*(\w+)\s*,\s*''\s*\)\s*=\s*''|(\w+)\s*(<>|<=|>=|=|<|>)\s*'([^']*)'|or\b|and\b)",
    re.I,
)
Row = dict[str, Any]


def parse_filter(text: str) -> Callable[[Row], bool]:
    """The fake's reading of an ``entityFilter`` (a small subset of Bromcom's SQL-like syntax)."""
    text = text.strip()
    tokens, pos = [], 0
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if not match:
            raise ValueError("entityFilter not understood")
        tokens.append(match)
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    index = 0

    def peek() -> str:
        return tokens[index].group(1).lower() if index < len(tokens) else ""

    def atom() -> Callable[[Row], bool]:
        nonlocal index
        token = tokens[index]
        index += 1
        if token.group(1) == "(":
            inner = expr()
            index += 1  # ")"
            return inner
        if token.group(2):
            field = token.group(2).lower()
            return lambda row: not row.get(field)
        field, op, value = token.group(3).lower(), token.group(4), token.group(5)
        compare = {
            "=": str.__eq__,
            "<>": str.__ne__,
            "<": str.__lt__,
            "<=": str.__le__,
            ">": str.__gt__,
            ">=": str.__ge__,
        }[op]
        return lambda row: row.get(field) is not None and compare(str(row[field]), value)

    def term() -> Callable[[Row], bool]:
        nonlocal index
        parts = [atom()]
        while peek() == "and":
            index += 1
            parts.append(atom())
        return lambda row: all(p(row) for p in parts)

    def expr() -> Callable[[Row], bool]:
        nonlocal index
        parts = [term()]
        while peek() == "or":
            index += 1
            parts.append(term())
        return lambda row: any(p(row) for p in parts)

    return expr() if tokens else (lambda row: True)


class FakeBromcom(FakeApiServer):
    thread_name = "fake-bromcom"

    def __init__(
        self,
        extract: Extract | None = None,
        *,
        school_id: str = "10042",
        application_id: str = "mis-sync-partner-app",
        secret: str = "fake-bromcom-secret",
        page_size: int = 100_000,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.school_id, self.application_id, self.secret = school_id, application_id, secret
        self.page_size = page_size
        self.success_false: set[str] = set()
        self._cache: dict[tuple[int, str, str], list[Row]] = {}
        self.store = VersionedStore()
        if extract is not None:
            self.publish(extract)

    def publish(self, extract: Extract, at: datetime | pd.Timestamp | None = None) -> None:
        when = pd.Timestamp(at if at is not None else extract.snapshot_at).tz_convert("UTC").to_pydatetime()
        with self._lock:
            self.store.publish(render_bromcom(extract), when)
            self.now = when.replace(microsecond=0)

    def route(self, request: Request) -> Response:
        if request.method != "GET" or not request.path.startswith(ROOT):
            raise LookupError(request.path)
        headers = {k.lower(): v for k, v in request.headers.items()}
        if self.faults.unauthorized or (headers.get("applicationid"), headers.get("applicationsecret")) != (
            self.application_id,
            self.secret,
        ):
            self.counters["auth_failures"] += 1
            return self.error(401, "Invalid application credentials.")
        entity = request.path[len(ROOT) :].strip("/")
        if entity not in ENTITIES:
            raise LookupError(entity)
        if request.query.get("schoolId") != self.school_id:
            self.counters["forbidden"] += 1
            return self.error(403, "The application is not authorised for this school.")
        if entity in self.faults.forbidden:
            self.counters["forbidden"] += 1
            return self.error(403, "The application has no access to this entity.")
        text = request.query.get("entityFilter", "")
        page_match = PAGE.search(text)
        page = int(page_match.group(1)) if page_match else 0
        key = (self.store.version, entity, PAGE.sub("", text))
        if key not in self._cache:  # the pages of one read share one filtered list
            keep = parse_filter(key[2])
            self._cache = {k: v for k, v in self._cache.items() if k[0] == self.store.version}
            self._cache[key] = [
                r for r in self.store.records(entity) if keep({k.lower(): v for k, v in r.items()})
            ]
        rows = self._cache[key]
        chunk = rows[page * self.page_size : (page + 1) * self.page_size]
        data = self.page_records(entity, page + 1, chunk)
        body = {"Success": entity not in self.success_false, "Data": data}
        return self.json_response(body, endpoint=entity, page=page + 1)


@contextlib.contextmanager
def running_fake_bromcom(extract: Extract | None = None, **options: Any) -> Iterator[FakeBromcom]:
    """Start a :class:`FakeBromcom` serving ``extract`` on 127.0.0.1 with an ephemeral port."""
    with running(FakeBromcom(extract, **options)) as fake:
        yield fake
